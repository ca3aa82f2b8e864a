"""A room's history as JSON lines: what ``export`` writes and ``import`` reads.

The same fields as the bots' ``tail --json`` (chat/bots.py ``message_json``):
id, room, time (ISO 8601, UTC), sender, kind, text. An import file may come
from anywhere, so each line is checked as people's words are: types,
lengths, a valid room name, and every text cleaned by the one cleaning of
the chat (chat/sanitize.py), so no escape sequence reaches anyone's
terminal through history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sshchat.chat.message import Kind
from sshchat.chat.names import InvalidName, check_room
from sshchat.chat.sanitize import clean
from sshchat.chat.store import Draft

MAX_SENDER = 64  # characters of a sender, cleaned (names are 16; system lines may say more)
MAX_LINE = 64 * 1024  # bytes of one input line, read at most: a line without an end costs no more
# What a room's history keeps: private messages are never exported, and the
# server never stores a join or a leave (Draft.keep), so an import must not
# put into history lines a server would never have written there.
KINDS = {k.value: k for k in Kind if k not in (Kind.PRIVATE, Kind.JOIN, Kind.LEAVE)}


class Refused(ValueError):
    """A line that cannot be imported; ``str()`` says why."""


def parse(line: str, max_text: int) -> Draft:
    """The message one exported line describes, ready to append to its room."""
    try:
        item: Any = json.loads(line)
    except json.JSONDecodeError as e:
        raise Refused(f"not JSON ({e.msg}, column {e.colno})") from None
    except (ValueError, RecursionError):  # a number too long to convert, nesting too deep
        raise Refused("not JSON this tool reads") from None
    if not isinstance(item, dict):
        raise Refused("not a JSON object")
    room = _field(item, "room", str)
    try:
        room = check_room(room)
    except InvalidName:
        raise Refused(f"not a room name: {json.dumps(clean(room)[:40])}") from None
    kind = KINDS.get(_field(item, "kind", str))
    if kind is None:
        raise Refused(f"kind must be one of {', '.join(sorted(KINDS))}")
    sender = clean(_field(item, "sender", str))
    if len(sender) > MAX_SENDER:
        raise Refused(f"sender too long (at most {MAX_SENDER} characters)")
    raw = _field(item, "text", str)
    if len(raw) > max_text * 4:  # as chat/pipeline.py: far over, not worth cleaning
        raise Refused(f"text too long (at most {max_text} characters)")
    text = clean(raw)
    if len(text) > max_text:
        raise Refused(f"text too long ({len(text)} characters, at most {max_text})")
    if not text and kind in (Kind.CHAT, Kind.EMOTE):
        raise Refused("empty text")
    return Draft(room, kind, sender, text, _time(item.get("time")))


def _field(item: dict[str, Any], name: str, kind: type) -> Any:
    value = item.get(name)
    if not isinstance(value, kind):
        raise Refused(f"{name} missing or not a {'string' if kind is str else kind.__name__}")
    return value


def _time(value: Any) -> float:
    """Seconds since the epoch from the ISO 8601 time export writes (or a number of seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        when = float(value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Refused("time is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise Refused("time has no zone (export writes UTC, ending in Z)")
        when = moment.timestamp()
    else:
        raise Refused("time missing or not a string")
    if not 0 <= when < 2**33:  # 1970 to 2242: a sane time, and one every database keeps
        raise Refused("time out of range")
    return when
