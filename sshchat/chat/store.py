"""What the chat core needs from durable storage, and the records it keeps.

The core never imports a database. It talks to an object with this shape;
``sshchat.store`` provides SQLite (the default) and an in-memory twin.

Two kinds of traffic:

* messages go through ``append``: the store gives them their ids and calls
  back once they are committed, and only then does anyone see them. So a
  message anyone has seen is on disk; and since the callbacks come in
  commit order, a room's delivery order is its id order;
* small state (names, operators, bans, mutes, the MOTD, the audit log) lives
  in memory in the core, loaded once at start with ``load``; changes are
  written behind with ``save``, in order, never blocking the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, TypeAlias

from sshchat.chat.message import Kind, Message
from sshchat.chat.room import RoomInfo


class OutcomeUnknown(ConnectionError):
    """The database lost touch as it committed, and whether the write was
    kept could not be learned: its sender must not be told it was lost (if
    it was kept, everyone sees it once a node reads it back)."""


@dataclass(frozen=True)
class Draft:
    """A message the room has accepted but the store has not yet numbered.

    ``keep`` is False for notices (joins, leaves) that are never stored but
    must keep their place in the room's order.
    """

    room: str
    kind: Kind
    sender: str
    text: str
    time: float
    recipient: str | None = None
    sender_fp: str | None = None
    keep: bool = True
    # The sender's session (Member.session): with ``sender_fp``, who said it
    # (``speaker``), kept so a line read back from the store still carries
    # what /ignore matches (a keyless person is ignored by session).
    sender_session: int | None = None

    def message(self, msg_id: int) -> Message:
        """The message this draft becomes once numbered (0: not stored)."""
        return Message(msg_id, self.room, self.kind, self.sender, self.text, self.time, self.recipient)


def speaker(fingerprint: str | None, session: int | None) -> str | None:
    """Who said a stored line, as ``Member.person`` names them: their key,
    or a keyless person's session; None if not known (kept by an older
    version, or said by nobody in particular)."""
    if fingerprint:
        return f"fingerprint:{fingerprint}"
    return f"session:{session}" if session else None


class Said(NamedTuple):
    """A message read back from the store with who said it (``speaker``):
    what a cluster node fills a gap with (sshchat/bus/order.py), so that
    /ignore hides it as it hides the same line brought by the bus."""

    msg: Message
    person: str | None


@dataclass(frozen=True)
class Binding:
    """A name owned by a key (trust on first use)."""

    name: str
    fingerprint: str
    time: float


@dataclass(frozen=True)
class Ban:
    """A key or an address range turned away at login.

    ``kind`` is "fingerprint" or "ip"; ``until`` None means until lifted.
    """

    kind: str
    value: str
    until: float | None
    reason: str
    by: str
    time: float


@dataclass(frozen=True)
class Mute:
    """Someone whose messages reach only themselves.

    ``target`` is "fingerprint:SHA256:..." for a key, "name:alice" otherwise.
    """

    target: str
    until: float | None
    reason: str
    by: str
    time: float


@dataclass(frozen=True)
class AuditEntry:
    """One moderation action, kept for good."""

    time: float
    actor: str
    actor_fp: str | None
    action: str
    target: str
    detail: str = ""


@dataclass
class Snapshot:
    """Everything the core keeps in memory, as loaded at start."""

    recent: dict[str, list[Message]] = field(default_factory=dict)  # room -> oldest first
    bindings: dict[str, Binding] = field(default_factory=dict)  # by name key
    operators: dict[str, str] = field(default_factory=dict)  # fingerprint -> granted by
    bans: list[Ban] = field(default_factory=list)
    mutes: list[Mute] = field(default_factory=list)
    allowed: set[str] = field(default_factory=set)  # fingerprints added at runtime
    motd: str | None = None
    rooms: list[RoomInfo] = field(default_factory=list)
    # identity -> [(room key, is current)], in the order they joined
    memberships: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    prefs: dict[str, str] = field(default_factory=dict)  # fingerprint -> Prefs as JSON
    # room -> the highest message id kept ("" : private messages): where a
    # cluster bus starts each room's order (a room not here has none yet)
    last_ids: dict[str, int] = field(default_factory=dict)
    # the count of ChangedOutside kept: where the poll of chat/outside.py starts
    outside_serial: int = 0


# ------------------------------------------------------------ state changes
#
# Each kind of change is its own type, so the store dispatches on the class
# (a table keyed by type) and mypy refuses, at the call site, anything that is
# not a change. A string tag let a typo through to the store thread at run time.
# The records above double as "add or replace" changes: a Binding, Ban, Mute,
# AuditEntry or RoomInfo saved is written as it is.


@dataclass(frozen=True)
class Unbind:
    """A name no longer owned by any key (``name_key``: its comparison form)."""

    name_key: str


@dataclass(frozen=True)
class Op:
    """A key made operator, and by whom."""

    fingerprint: str
    by: str


@dataclass(frozen=True)
class Deop:
    """A key no longer operator."""

    fingerprint: str


@dataclass(frozen=True)
class Unban:
    """A ban lifted (``kind`` and ``value`` as in Ban)."""

    kind: str
    value: str


@dataclass(frozen=True)
class Unmute:
    """A mute lifted (``target`` as in Mute)."""

    target: str


@dataclass(frozen=True)
class Allow:
    """A key added to the allowlist at run time, and by whom."""

    fingerprint: str
    by: str


@dataclass(frozen=True)
class Disallow:
    """A key taken off the run-time allowlist."""

    fingerprint: str


@dataclass(frozen=True)
class SetMotd:
    """The message of the day; None removes it."""

    text: str | None


@dataclass(frozen=True)
class SetMemberships:
    """All the rooms of ``identity``, in the order joined, with the one they look at."""

    identity: str
    rooms: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class DropRoom:
    """A room removed (by an operator's /rmroom, or expired): the room, everyone's
    membership of it, and its messages (``name`` as the messages were kept).

    ``expired``: removed because nobody was in it, as seen by one node; a
    node that has people in it keeps it (chat/state.py)."""

    name_key: str
    name: str
    expired: bool = False


@dataclass(frozen=True)
class ChangedOutside:
    """The kept state was changed from outside the running servers
    (``sshchat admin unban``): a counter every server polls goes up by one,
    and a server that sees it move reads the bans again (chat/outside.py).
    Saved after the changes it covers, so once it is seen they are kept."""

    time: float


@dataclass(frozen=True)
class SetPrefs:
    """The view settings of a key, as Prefs JSON."""

    fingerprint: str
    data: str


# Every state change the store knows how to keep. A store has one writer per
# member of this union; tests check that none is missing.
Change: TypeAlias = (
    Binding | Unbind | Op | Deop | Ban | Unban | Mute | Unmute | Allow | Disallow
    | SetMotd | AuditEntry | RoomInfo | DropRoom | SetMemberships | SetPrefs | ChangedOutside
)

# A state change's outcome: None once it is durable, or the error that kept it out.
Saved = Callable[[Exception | None], None]


# A batch's outcome: the committed messages, or the error that stopped them.
Committed = Callable[[list[Message] | Exception], None]


class Store(Protocol):
    """Durable storage as the core sees it. No method blocks on I/O."""

    def load(self, recent_per_room: int) -> Snapshot:
        """Everything kept, for start-up (the only call that may block)."""

    def append(self, drafts: list[Draft], done: Committed) -> None:
        """Commit ``drafts`` (in order) and call ``done`` on the event loop."""

    def save(self, change: Change, done: Saved | None = None) -> None:
        """Write a state change behind, in order with everything else.

        ``done`` (on the event loop) hears None once the change is durable, or
        the error that kept it out; a change that fails never takes others
        down with it.
        """

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        """Room messages older than ``before_id`` (newest ``limit``), oldest first."""

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        """Messages of ``room`` with ids above ``after_id`` (oldest first, at
        most ``limit``), each with who said it; room "" gives the private
        messages. A cluster node reads what the bus lost here
        (sshchat/bus/order.py)."""

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        """Per room, the highest message id committed ("" : the private
        messages), to ``done`` on the event loop. One cheap query that a
        cluster node asks every few seconds: a message whose publisher died
        before the bus got it is found here, not only when the room's next
        message arrives (sshchat/bus/order.py). A room whose highest id has
        not changed since the previous call may be left out (the PostgreSQL
        store reads only the rooms changed: a cluster keeps every room ever
        made)."""

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        """The newest ``limit`` audit entries, oldest first."""

    def outside_serial(self, done: Callable[[int | None], None]) -> None:
        """How many ``ChangedOutside`` were kept (None: the read failed), to
        ``done`` on the event loop: one primary-key read that every server
        asks every second or so (chat/outside.py)."""

    def bans(self, done: Callable[[list[Ban] | None], None]) -> None:
        """Every ban kept, to ``done`` on the event loop; None if the read
        failed (never an empty list then: that would lift every ban)."""

    def close(self) -> None:
        """Commit everything accepted so far, then release the database."""
