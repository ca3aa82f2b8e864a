"""Bus events as JSON, for a bus that crosses processes (Redis).

One table, ``CODECS``: each event class with its tag, its encoder and its
decoder. A new kind of event is one entry here; a test checks that every
member of ``sshchat.chat.bus.Event`` (and of the store's ``Change``, which
``StateChanged`` carries) survives the round trip.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any, get_args

from sshchat.chat.bus import (
    Arrived,
    Blocked,
    Charged,
    Departed,
    Event,
    Hello,
    Kick,
    Offended,
    Private,
    Registered,
    RoomLine,
    StateChanged,
)
from sshchat.chat.message import Kind, Message
from sshchat.chat.store import Change, SetMemberships


class CodecError(ValueError):
    """An entry this version cannot read (another version's, or damaged)."""


def _message(m: Message) -> list[Any]:
    return [m.id, m.room, m.kind.value, m.sender, m.text, m.time, m.recipient]


# Kind by its value: a dict lookup, where calling the Enum took longer than the rest of a message's fields.
_KINDS: dict[str, Kind] = {kind.value: kind for kind in Kind}


def _unmessage(data: list[Any]) -> Message:
    msg_id, room, kind, sender, text, time, recipient = data
    return Message(int(msg_id), room, _KINDS[kind], sender, text, float(time), recipient)


_CHANGES: dict[str, type[Any]] = {cls.__name__: cls for cls in get_args(Change)}


def _change(c: Change) -> dict[str, Any]:
    return {"type": type(c).__name__, **dataclasses.asdict(c)}


def _unchange(data: dict[str, Any]) -> Change:
    fields = dict(data)
    cls = _CHANGES.get(fields.pop("type", ""))
    if cls is None:
        raise CodecError(f"unknown change {data.get('type')!r}")
    if cls is SetMemberships:  # JSON has no tuples
        fields["rooms"] = tuple((room, bool(current)) for room, current in fields["rooms"])
    change: Change = cls(**fields)
    return change


Encoder = Callable[[Any], dict[str, Any]]
Decoder = Callable[[dict[str, Any]], Event]

CODECS: dict[type[Any], tuple[str, Encoder, Decoder]] = {
    RoomLine: (
        "line",
        lambda e: {"m": _message(e.msg), "keep": e.keep, "s": e.sender},
        lambda d: RoomLine(_unmessage(d["m"]), bool(d["keep"]), d["s"]),
    ),
    Private: (
        "pm",
        lambda e: {"m": _message(e.msg), "s": e.sender, "r": e.recipient},
        lambda d: Private(_unmessage(d["m"]), d["s"], d["r"]),
    ),
    StateChanged: (
        "state",
        lambda e: {"c": _change(e.change)},
        lambda d: StateChanged(_unchange(d["c"])),
    ),
    Blocked: (
        "blocked",
        lambda e: {"a": e.key, "u": e.until},
        lambda d: Blocked(str(d["a"]), float(d["u"])),
    ),
    Offended: (
        "offence",
        lambda e: {"a": e.address},
        lambda d: Offended(str(d["a"])),
    ),
    Charged: (
        "charged",
        lambda e: {"w": e.who},
        lambda d: Charged(str(d["w"])),
    ),
    Registered: (
        "registered",
        lambda e: {"a": e.address},
        lambda d: Registered(str(d["a"])),
    ),
    Arrived: (
        "here",
        lambda e: {"a": [e.node, e.session, e.name, e.fingerprint, e.address, e.room, e.rooms, e.away,
                         e.connected_at, e.last_active, e.seq]},
        lambda d: Arrived(*d["a"]),
    ),
    Departed: (
        "gone",
        lambda e: {"node": e.node, "s": e.session, "q": e.seq},
        lambda d: Departed(d["node"], d["s"], int(d.get("q", 0))),
    ),
    Kick: (
        "kick",
        lambda e: {"a": [e.node, e.key, e.person, e.reason, e.goodbye]},
        lambda d: Kick(*d["a"]),
    ),
    Hello: (
        "hello",
        lambda e: {"node": e.node},
        lambda d: Hello(d["node"]),
    ),
}
_DECODERS: dict[str, Decoder] = {tag: decode for tag, _, decode in CODECS.values()}
# One decoder, called on text: json.loads would, for every entry, sniff the bytes' encoding and build its call.
_JSON = json.JSONDecoder()


def encode(event: Event) -> bytes:
    """``event`` as compact JSON (UTF-8)."""
    tag, encoder, _ = CODECS[type(event)]
    return json.dumps({"k": tag, **encoder(event)}, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes | str) -> Event:
    """The event ``encode`` made; CodecError for anything else."""
    try:
        fields = _JSON.decode(data.decode() if isinstance(data, bytes) else data)
        decoder = _DECODERS[fields["k"]]
        return decoder(fields)
    except CodecError:
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # (nested too deep: not one of ours)
        raise CodecError(f"unreadable bus entry: {e!r}") from None
