"""Bus events as JSON (sshchat/bus/codec.py): every kind of event, and every
kind of state change an event can carry, comes back as it went."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import pytest

from sshchat.bus.codec import CODECS, CodecError, decode, encode
from sshchat.chat.bus import Blocked, Charged, Event, Offended, Private, Registered, RoomLine, StateChanged
from sshchat.chat.message import Kind, Message
from sshchat.chat.store import Change, SetMemberships

SAMPLES: dict[type[Any], Any] = {str: "x\u00e9\x1b\u2028", float: 1.5, int: 3, bool: True}


def sample(cls: type[Any]) -> Any:
    """An instance of a Change class with a value of the right type in every field."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kind = str(f.type)
        if cls is SetMemberships and f.name == "rooms":
            values[f.name] = (("#a", True), ("#b", False))
        elif "float" in kind:
            values[f.name] = SAMPLES[float]
        elif "int" in kind:
            values[f.name] = SAMPLES[int]
        else:
            values[f.name] = SAMPLES[str] + f.name
    return cls(**values)


def test_every_kind_of_event_has_a_codec() -> None:
    assert set(CODECS) == set(get_args(Event))


@pytest.mark.parametrize("cls", get_args(Change), ids=lambda c: c.__name__)
def test_every_state_change_survives_the_round_trip(cls: type[Any]) -> None:
    change = sample(cls)
    back = decode(encode(StateChanged(change)))
    assert isinstance(back, StateChanged) and back.change == change and type(back.change) is cls


def test_messages_survive_the_round_trip() -> None:
    msg = Message(7, "#Room", Kind.EMOTE, "alice", "waves \U0001f44b \u200b", 1.25, None)
    for event in (RoomLine(msg, True, "session:3"), RoomLine(msg, False, None), Private(msg, "a", "b")):
        back = decode(encode(event))
        assert type(back) is type(event)
        assert dataclasses.astuple(back.msg) == dataclasses.astuple(msg)  # type: ignore[union-attr]
        assert [getattr(back, f.name) for f in dataclasses.fields(event)][1:] == [
            getattr(event, f.name) for f in dataclasses.fields(event)][1:]


@pytest.mark.parametrize("data", [b"", b"{}", b'{"k":"nope"}', b'{"k":"line","m":[1]}', b"\xff",
                                  b'{"k":"state","c":{"type":"Nope"}}',
                                  b"[" * 100_000])  # nested past the decoder's depth: RecursionError escaped the reader
def test_an_unreadable_entry_is_one_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data)


def test_a_block_survives_the_round_trip() -> None:
    event = Blocked("2001:db8:1:2::/64", 1_700_000_000.25)
    assert decode(encode(event)) == event


def test_the_counts_nodes_share_survive_the_round_trip() -> None:
    for event in (Offended("2001:db8::1"), Charged("fingerprint:SHA256:x"), Registered("198.51.100.7")):
        assert decode(encode(event)) == event
