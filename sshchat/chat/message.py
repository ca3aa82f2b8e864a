"""Message: what a room accepted, immutable once made.

``eq=False`` keeps hashing by identity, so renderers can cache the text they
made for one message cheaply, however long the message is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """What sort of line a message is; renderers style each kind differently."""

    CHAT = "chat"  # alice: hello
    EMOTE = "emote"  # * alice waves
    JOIN = "join"  # alice joined (3 online)
    LEAVE = "leave"  # alice left
    SYSTEM = "system"  # room-wide notices such as renames and shutdown
    PRIVATE = "private"  # /msg: seen by sender and recipient only

    # Enum's own __hash__ is Python code, run for every `kind in {...}` of
    # every delivery; a str's hash is C, and agrees with str equality.
    __hash__ = str.__hash__


# Lines people say: what mentions, unread counts and history are about.
SPOKEN = frozenset({Kind.CHAT, Kind.EMOTE})


@dataclass(frozen=True, slots=True, eq=False)
class Message:
    """One line of a room's conversation (or a private one)."""

    id: int
    room: str
    kind: Kind
    sender: str
    text: str
    time: float
    recipient: str | None = None
