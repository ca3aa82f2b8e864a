"""Bus events as JSON (sshchat/bus/codec.py): every kind of event, and every
kind of state change an event can carry, comes back as it went."""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

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
        elif kind == "bool":
            values[f.name] = SAMPLES[bool]
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


LINE = {"k": "line", "m": [7, "#lobby", "chat", "alice", "hi", 1.5, None], "keep": True, "s": "session:1"}


def entry(base: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**base, **changes}).encode()


@pytest.mark.parametrize("data", [
    entry(LINE, m=[7, "#lobby", "chat", "alice", ["not", "text"], 1.5, None]),  # a text that is a list
    entry(LINE, m=[7, 12, "chat", "alice", "hi", 1.5, None]),  # a room that is a number
    entry(LINE, m=[7, "#lobby", "chat", {"a": 1}, "hi", 1.5, None]),  # a sender that is a mapping
    entry(LINE, s=["session:1"]),
    entry({"k": "pm", "m": LINE["m"], "s": None, "r": 5}),
    entry({"k": "here", "a": ["n1", "3", "alice", None, "10.0.0.1", "#lobby", ["#lobby"], None, 1.5, 2.5]}),
    entry({"k": "here", "a": ["n1", 3, "alice", None, "10.0.0.1", "#lobby", [1, 2], None, 1.5, 2.5]}),
    entry({"k": "here", "a": ["n1", 3, "alice", None, "10.0.0.1", "#lobby", "#lobby", None, 1.5, 2.5]}),
    entry({"k": "gone", "node": "n1", "s": True}),
    entry({"k": "kick", "a": ["n1", "alice", "session:3", None, 0]}),
    entry({"k": "state", "c": {"type": "Ban", "kind": "name", "value": "x", "until": "forever", "reason": "",
                               "by": "op", "time": 1.5}}),
    entry({"k": "state", "c": {"type": "DropRoom", "name_key": "#a", "name": "#a", "expired": "yes"}}),
    entry({"k": "state", "c": {"type": "SetMemberships", "identity": "x", "rooms": [[1, True]]}}),
])
def test_an_entry_whose_fields_are_not_of_their_types_is_one_error(data: bytes) -> None:
    """What comes off Redis is not trusted to be what this version wrote:
    a field of another type is refused whole, not acted on half-way."""
    with pytest.raises(CodecError, match="is not of its type"):
        decode(data)


def example(hint: Any) -> Any:
    """A value of type ``hint`` as the chat would make one (the first of a union)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union or origin is types.UnionType:
        return example(args[0])
    if origin is list:
        return [example(args[0]), example(args[0])]
    if origin is tuple:
        return (example(args[0]),) if args[-1] is Ellipsis else tuple(example(a) for a in args)
    if hint is Message:
        return Message(7, "#Room", Kind.EMOTE, "alice", "waves", 1.25, "bob")
    if hint is Kind:
        return Kind.CHAT
    if dataclasses.is_dataclass(hint):
        hints = get_type_hints(hint)
        return hint(**{f.name: example(hints[f.name]) for f in dataclasses.fields(hint)})
    return SAMPLES[hint]


@pytest.mark.parametrize("cls", get_args(Event), ids=lambda c: c.__name__)
def test_every_kind_of_event_survives_the_round_trip(cls: type[Any]) -> None:
    """As the module says: a new kind of event that the codec cannot carry
    (or whose fields its type check refuses) fails here, not in a cluster."""
    event = example(cls)
    back = decode(encode(event))
    assert type(back) is cls
    if cls in (RoomLine, Private):  # Message compares by identity (eq=False): by its fields
        assert dataclasses.astuple(back.msg) == dataclasses.astuple(event.msg)
        assert [getattr(back, f.name) for f in dataclasses.fields(cls)][1:] == [
            getattr(event, f.name) for f in dataclasses.fields(cls)][1:]
    else:
        assert back == event
