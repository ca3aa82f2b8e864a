"""State changes that hold on every node of a cluster.

Bans, mutes, operators, names, rooms, topics... live in each node's memory
(loaded from the store at start) and every change is saved through
``Store.save``. In a cluster, a change one node makes must hold on all of
them at once: a ban made on node A ends the banned person's session on
node B and turns them away at B's door.

Two halves, both pure (no redis here):

* ``SharingStore`` wraps the store of a node on a bus that crosses
  processes: once the store says a change is durable, it is published as
  ``StateChanged``. One place sees every change, so none can be forgotten,
  and a change the store could not keep is never published. On the
  in-process bus the hub does not wrap the store: one process pays nothing.
* ``StateApplier`` applies another node's change to this node's memory, and
  does what follows from it here (the ban's sessions end, the person muted or
  made operator is told, a removed room's people go to the lobby). It never
  saves the change again (the node that made it did), so nothing echoes, and
  applying a change twice does nothing twice.

Changes arrive in the order their node saved them (one stream); changes of
two nodes to the same thing race as two operators' do on one node: the
last to arrive wins in memory, the last to commit in the store.
"""

from __future__ import annotations

from collections.abc import Callable

from sshchat.chat.bus import Receive, StateChanged
from sshchat.chat.message import Message
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.operations import Operations
from sshchat.chat.presence import Presence
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import RoomInfo
from sshchat.chat.rooms import Rooms
from sshchat.chat.store import (
    AuditEntry,
    Ban,
    Binding,
    Change,
    Committed,
    Deop,
    Draft,
    DropRoom,
    Mute,
    Op,
    Said,
    Saved,
    SetMemberships,
    SetPrefs,
    Snapshot,
    Store,
    Unbind,
    Unmute,
)

# Kept, but nothing any node holds in memory: the audit log is read from the store.
NOT_SHARED: frozenset[type] = frozenset({AuditEntry})


class SharingStore:
    """A Store that publishes every change it has made durable (see the module)."""

    def __init__(self, store: Store, publish: Receive) -> None:
        self._store = store
        self._publish = publish

    def save(self, change: Change, done: Saved | None = None) -> None:
        if type(change) in NOT_SHARED:
            self._store.save(change, done)
            return
        publish = self._publish

        def saved(error: Exception | None) -> None:
            if error is None:
                publish(StateChanged(change))  # only once durable: what others apply, a restart keeps
            if done is not None:
                done(error)

        self._store.save(change, saved)

    def load(self, recent_per_room: int) -> Snapshot:
        return self._store.load(recent_per_room)

    def append(self, drafts: list[Draft], done: Committed) -> None:
        self._store.append(drafts, done)

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        self._store.history(room, before_id, limit, done)

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        self._store.after(room, after_id, limit, done)

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        self._store.last_ids(done)

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        self._store.audit_log(limit, done)

    def outside_serial(self, done: Callable[[int | None], None]) -> None:
        self._store.outside_serial(done)

    def bans(self, done: Callable[[list[Ban] | None], None]) -> None:
        self._store.bans(done)

    def close(self) -> None:
        self._store.close()


class StateApplier:
    """Applies another node's saved changes here (see the module)."""

    def __init__(
        self,
        clock: Callable[[], float],
        moderation: Moderation,
        names: NameRegistry,
        rooms: Rooms,
        presence: Presence,
        operations: Operations,
    ) -> None:
        self._clock = clock
        self._moderation = moderation
        self._names = names
        self._rooms = rooms
        self._presence = presence
        self._operations = operations

    def apply(self, change: Change) -> None:
        if isinstance(change, Binding):
            self._names.adopt(change)
        elif isinstance(change, Unbind):
            self._names.forget(change.name_key)
        elif isinstance(change, RoomInfo):
            self._rooms.adopt(change)
        elif isinstance(change, DropRoom):
            self._rooms.drop_here(change)
        elif isinstance(change, SetMemberships):
            self._rooms.remember_elsewhere(change.identity, change.rooms)
        elif isinstance(change, SetPrefs):
            self._presence.adopt_prefs(change.fingerprint, change.data)
        elif self._moderation.adopt(change):
            self._follow(change)

    def _follow(self, change: Change) -> None:
        """What a moderation change does to people online here, once it is new here."""
        if isinstance(change, Ban):
            self._operations.enforce(change, change.by)
        elif isinstance(change, Mute):
            for member in self._presence.sessions_of(change.target):
                member.muted_reminded = self._clock()
                member.outlet.notice(
                    f"you were muted by {change.by}{until_text(change.until)}: nobody else sees your messages"
                )
        elif isinstance(change, Unmute):
            for member in self._presence.sessions_of(change.target):
                member.outlet.notice("you were unmuted")
        elif isinstance(change, Op) and change.fingerprint not in self._moderation.admins:
            for member in self._presence.sessions_of(f"fingerprint:{change.fingerprint}"):
                member.outlet.notice(f"{change.by} made you an operator; /help lists your new commands")
        elif isinstance(change, Deop) and change.fingerprint not in self._moderation.admins:
            for member in self._presence.sessions_of(f"fingerprint:{change.fingerprint}"):
                member.outlet.notice("your operator status was removed")
