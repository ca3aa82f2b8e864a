"""Bus events as JSON, for a bus that crosses processes (Redis).

One table, ``CODECS``: each event class with its tag, its encoder and its
decoder. A new kind of event is one entry here; a test checks that every
member of ``sshchat.chat.bus.Event`` (and of the store's ``Change``, which
``StateChanged`` carries) survives the round trip.

What comes off the bus is checked against the types its fields declare
before anyone acts on it: an entry of another version, damaged, or written
into Redis by someone else is one ``CodecError`` (the reader skips it with
one line), never a half-applied event, a traceback per entry, or a text
that is not text kept in a room's history for every later join to trip on.
"""

from __future__ import annotations

import dataclasses
import json
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

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


Check = Callable[[Any], bool]


def _check(hint: Any) -> Check:
    """A test of a decoded value against a field's declared type: the types
    JSON brings (text, numbers, true/false, null, lists) and the records
    and enums built from them."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return lambda v: True
    if (origin is Union or origin is types.UnionType) and len(args) == 2 and type(None) in args:
        given = _check(args[0] if args[1] is type(None) else args[1])
        return lambda v: v is None or given(v)
    if origin is Union or origin is types.UnionType:
        either = [_check(a) for a in args]
        return lambda v: any([c(v) for c in either])
    if origin is list:
        item = _check(args[0])
        return lambda v: type(v) is list and all(map(item, v))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        each = _check(args[0])
        return lambda v: type(v) is tuple and all(map(each, v))
    if origin is dict:
        key, value = (_check(a) for a in args)
        return lambda v: type(v) is dict and all(key(k) and value(x) for k, x in v.items())
    if origin is tuple:
        items = [_check(a) for a in args]
        return lambda v: type(v) is tuple and len(v) == len(items) and all(c(x) for c, x in zip(items, v, strict=True))
    if hint is float:
        return lambda v: type(v) is float or type(v) is int
    if dataclasses.is_dataclass(hint):
        return lambda v: type(v) is hint and _wrong_field(v) is None
    if hint is type(None):
        return lambda v: v is None
    if origin is not None:  # another generic: its container's type at least
        return lambda v: isinstance(v, origin)
    return lambda v: type(v) is hint  # str, int (never a bool), bool, an enum


_FIELD_CHECKS: dict[type[Any], list[tuple[str, Check]]] = {}


def _wrong_field(record: Any) -> str | None:
    """The name of ``record``'s first field whose value is not of its type, if any."""
    cls = type(record)
    checks = _FIELD_CHECKS.get(cls)
    if checks is None:
        hints = get_type_hints(cls)
        checks = _FIELD_CHECKS[cls] = [(f.name, _check(hints[f.name])) for f in dataclasses.fields(cls)]
    for name, check in checks:
        if not check(getattr(record, name)):
            return f"{cls.__name__}.{name}"
    return None


def encode(event: Event) -> bytes:
    """``event`` as compact JSON (UTF-8)."""
    tag, encoder, _ = CODECS[type(event)]
    return json.dumps({"k": tag, **encoder(event)}, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes | str) -> Event:
    """The event ``encode`` made; CodecError for anything else."""
    try:
        fields = _JSON.decode(data.decode() if isinstance(data, bytes) else data)
        decoder = _DECODERS[fields["k"]]
        event = decoder(fields)
    except CodecError:
        raise
    except (ValueError, KeyError, TypeError, RecursionError) as e:  # (nested too deep: not one of ours)
        raise CodecError(f"unreadable bus entry: {e!r}") from None
    wrong = _wrong_field(event)
    if wrong is not None:
        raise CodecError(f"unreadable bus entry: {wrong} is not of its type")
    return event
