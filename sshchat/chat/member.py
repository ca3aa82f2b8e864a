"""A person in the chat, and what the chat needs from their connection.

The chat core keeps the facts about a person (``Member``); the transport
gives it an ``Outlet`` to reach them. Keeping the two apart is what lets the
core be tested without sockets: tests pass an outlet that records.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from sshchat.chat.message import Message
from sshchat.chat.names import name_key
from sshchat.chat.prefs import Prefs
from sshchat.chat.ratelimit import TokenBucket


class Outlet(Protocol):
    """The chat's way to reach one connected person. Must never block."""

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        """Queue a room or private message for this person.

        ``elsewhere``: from a room they are not looking at (it names them).
        """

    def notice(self, text: str) -> None:
        """Queue a line meant for this person only (replies, errors)."""

    def prompt_changed(self) -> None:
        """The person's name or current room changed (their prompt shows both)."""

    def close(self, reason: str) -> None:
        """Tell the person ``reason`` and end their session."""


class Nowhere:
    """The outlet that reaches nobody: a person on another node of a
    cluster (their node delivers what the bus brings it; chat/roster.py),
    or a benchmark's crowd, whose deliveries are not what it measures."""

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def prompt_changed(self) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


NOWHERE = Nowhere()


# Session numbers start at random: a keyless person is "session:N"
# (Member.person), which must not be someone else's N on another node of a
# cluster, nor a session of an earlier run that an ignore list still names.
_sessions = itertools.count(secrets.randbits(40) + 1)


@dataclass(eq=False)
class Member:
    """One logged-in person: identity and activity, no transport state."""

    name: str
    fingerprint: str | None  # SHA256 fingerprint of their key, None if keyless
    outlet: Outlet
    bucket: TokenBucket  # their message rate limit, shared by their identity's connections
    address: str = ""
    connected_at: float = 0.0
    last_active: float = 0.0
    muted_reminded: float = float("-inf")  # when a muted person was last told
    room: str = "#lobby"  # key of the current room: where what they type goes
    rooms: list[str] = field(default_factory=list)  # keys of rooms they belong to
    unread: Counter[str] = field(default_factory=Counter)  # room key -> messages missed
    last_pm_from: Member | None = None  # for /reply: the person (session), not a name
    throttled: bool = False  # over the limit, and already told so
    away: str | None = None  # why they are away ("idle" when the server decided)
    prefs: Prefs = field(default_factory=Prefs)
    session: int = field(default_factory=lambda: next(_sessions))  # unique in this server's run (and cluster)
    node: str = ""  # "": online here; else the cluster node they are on (chat/roster.py)
    # While their /nick is being claimed and saved: the lines they typed after
    # it, kept in order and handled once it is settled (a pasted "/nick x" and
    # "hi" says hi as x). None: nothing pending.
    held: list[str] | None = None

    key: str = field(init=False, default="")  # the name as compared; see rename()

    def __post_init__(self) -> None:
        self.key = name_key(self.name)

    def rename(self, name: str) -> None:
        """Change the name, and the key it is compared (and mentioned) by."""
        self.name = name
        self.key = name_key(name)

    @property
    def person(self) -> str:
        """Who this is, for what must follow the person and not a name someone
        else can take next (mutes, /ignore): their key, or for keyless people
        this session ("session:N"), which nobody else can ever be."""
        return f"fingerprint:{self.fingerprint}" if self.fingerprint else f"session:{self.session}"

    @property
    def identity(self) -> str:
        """What remembers this person: their key, or for keyless people their name."""
        return identity(self.fingerprint, self.key)


def identity(fingerprint: str | None, key: str) -> str:
    """"fingerprint:SHA256:..." for a key, "name:alice" otherwise."""
    return f"fingerprint:{fingerprint}" if fingerprint else f"name:{key}"
