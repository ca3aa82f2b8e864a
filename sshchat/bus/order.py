"""Every room's messages in id order, once each, whatever the bus did to them.

In a cluster the store numbers each room's messages 1, 2, 3... and commits
them in that order (cluster.md); the bus may bring them late, out of order,
twice (a publish retried after a lost reply) or not at all (a node that died
between its commit and its publish, a Redis that restarted empty, a reader
away for longer than the stream's cap). So each node keeps, per room, the
last id it delivered:

* the next id is delivered at once, with whatever it unblocks;
* a later id waits;
* an id at or below the last one delivered is a duplicate, dropped;
* a gap not filled within ``gap_wait`` is read from the store, which has
  everything committed: since a room's ids commit in order, every id below
  one that arrived is committed, so what the store does not return was
  removed (a dropped room) and is skipped;
* a message nothing arrives after (its publisher died before the bus got
  it, and the room fell silent) is found by ``sweep``: the node asks the
  store for every room's last id every few seconds, and a room still behind
  an id it was already behind at the previous sweep is read from the store.
  Waiting one sweep leaves a message on its way through the bus to the bus.
  A sweep may list only the rooms changed since the previous one (the
  PostgreSQL store reads no more: a cluster keeps every room ever made);
  a room this node was behind is checked again at each sweep until it
  has caught up, listed or not.

Events without an id (notices that are never kept, state changes) have no
place in any order and pass straight through.

Pure: no redis, no sockets. Timers come from ``call_later`` (the event
loop's by default), so tests can fire them by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sshchat.chat.bus import Event, Private, Receive, RoomLine
from sshchat.chat.store import Said

FILL_LIMIT = 500  # messages per read of a gap from the store; a longer gap takes several


class Backfill(Protocol):
    """What the buffer needs from the store (``Store.after``)."""

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        """Messages of ``room`` with ids above ``after_id``, oldest first, at most
        ``limit``, each with who said it, to ``done`` on the event loop ("" is
        the private messages)."""

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        """Per room, the highest id committed, to ``done`` on the event loop;
        a room whose highest id has not changed since the previous call may
        be left out."""


class Timer(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Timer]


@dataclass
class _Room:
    delivered: int  # the last id delivered here (or known to be gone)
    waiting: dict[int, Event] = field(default_factory=dict)  # later ids, until the gap before them is filled
    timer: Timer | None = None  # running while something waits
    filling: bool = False  # a read from the store is under way
    known: int = 0  # the highest id the store was seen to have (by a sweep)
    behind: int = 0  # at the last sweep: the store's last id, if this node was behind it


@dataclass
class Counts:
    """What the buffer did, for metrics and tests."""

    delivered: int = 0
    duplicates: int = 0
    gaps: int = 0  # gaps read from the store
    filled: int = 0  # messages delivered from the store


def _event_of(said: Said) -> Event:
    """An event for a message read back from the store, with who said it as
    the store kept it (so /ignore hides a filled-in line as it hides one the
    bus brought). A private message's recipient is meant by name: the name
    did not change hands between its commit and this read, or the bus would
    have brought it long before."""
    msg = said.msg
    return Private(msg, said.person) if msg.recipient is not None else RoomLine(msg, True, said.person)


def _room_and_id(event: Event) -> tuple[str, int]:
    if isinstance(event, (RoomLine, Private)):
        return event.msg.room, event.msg.id
    return "", 0


class ReorderBuffer:
    """Per room: the next expected id; later ids wait; gaps filled from the store."""

    def __init__(
        self,
        receive: Receive,
        backfill: Backfill,
        gap_wait: float,
        last_ids: Mapping[str, int] | None = None,
        call_later: CallLater | None = None,
    ) -> None:
        """``last_ids``: per room, the last id this node has already (from
        the store at start); a room not in it has no messages yet, so its
        first id is 1."""
        self._receive = receive
        self._backfill = backfill
        self._gap_wait = gap_wait
        self._rooms: dict[str, _Room] = {room: _Room(last) for room, last in (last_ids or {}).items()}
        self._call_later = call_later
        self._behind: set[str] = set()  # rooms behind the store at the last sweep (``_Room.behind``)
        self.counts = Counts()

    def push(self, event: Event) -> None:
        """Take ``event`` from the bus (or from this node's own publish)."""
        room, msg_id = _room_and_id(event)
        if msg_id <= 0:
            self._deliver(event)
            return
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _Room(0)
        if msg_id <= state.delivered or msg_id in state.waiting:
            self.counts.duplicates += 1
            return
        if msg_id == state.delivered + 1:
            state.delivered = msg_id
            self._deliver(event)
            self._release(room, state)
            return
        state.waiting[msg_id] = event
        self._wait(room, state)

    def last_delivered(self, room: str) -> int:
        state = self._rooms.get(room)
        return state.delivered if state is not None else 0

    def waiting(self) -> int:
        """Events held back behind a gap, in all rooms."""
        return sum(len(state.waiting) for state in self._rooms.values())

    def sweep(self, last_ids: Mapping[str, int], at_once: bool = False) -> None:
        """Catch up with the store's last id of each room (``Store.last_ids``).

        A room behind an id it was already behind at the previous sweep is
        read from the store now: that message was committed a sweep ago and
        the bus has not brought it. ``at_once``: every room behind is read
        now (the reader is back from a lost connection: what the stream no
        longer holds will not come).

        A room left out of ``last_ids`` has not changed since the previous
        sweep: if this node was behind it then, its last id is the one seen.
        """
        rooms, behind = self._rooms, self._behind
        if behind:
            last_ids = {**{room: rooms[room].behind for room in behind}, **last_ids}
        for room, last in last_ids.items():
            state = rooms.get(room)
            if state is None:
                state = rooms[room] = _Room(0)
            if last <= state.delivered:
                state.behind = 0
                behind.discard(room)
                continue
            if at_once or state.delivered < state.behind:
                state.known = max(state.known, last if at_once else state.behind)
                if state.timer is None:
                    self._fill(room)
            state.behind = last
            behind.add(room)

    def close(self) -> None:
        for state in self._rooms.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None

    # ------------------------------------------------------------ inside

    def _deliver(self, event: Event) -> None:
        self.counts.delivered += 1
        self._receive(event)

    def _release(self, room: str, state: _Room) -> None:
        """Deliver what waited for the ids just delivered; the timer follows the gap."""
        waiting = state.waiting
        while waiting:
            event = waiting.pop(state.delivered + 1, None)
            if event is None:
                break
            state.delivered += 1
            self._deliver(event)
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if waiting:
            self._wait(room, state)

    def _wait(self, room: str, state: _Room) -> None:
        if state.timer is None and not state.filling:
            later = self._call_later or _loop_call_later
            state.timer = later(self._gap_wait, lambda: self._fill(room))

    def _fill(self, room: str) -> None:
        """The gap before the first waiting id lasted ``gap_wait``: read it from the store."""
        state = self._rooms[room]
        state.timer = None
        if state.filling:
            return
        first = min(state.waiting) if state.waiting else state.known + 1
        if first <= state.delivered + 1:
            return  # nothing missing
        state.filling = True
        self.counts.gaps += 1
        limit = min(first - state.delivered - 1, FILL_LIMIT)
        self._backfill.after(room, state.delivered, limit, lambda found: self._filled(room, first, limit, found))

    def _filled(self, room: str, first: int, limit: int, found: list[Said]) -> None:
        state = self._rooms[room]
        state.filling = False
        for said in sorted(found, key=lambda s: s.msg.id):
            msg_id = said.msg.id
            if msg_id <= state.delivered:
                continue  # arrived by the bus meanwhile
            event = state.waiting.pop(msg_id, None)
            state.delivered = msg_id
            if event is None:
                self.counts.filled += 1
                event = _event_of(said)
            self._deliver(event)
        if len(found) < limit:
            # All the store has below ``first``: the rest was removed, not lost.
            state.delivered = max(state.delivered, first - 1)
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        if len(found) >= limit and state.delivered < first - 1:
            self._fill_now(room, state)  # a long gap: the next part at once
            return
        self._release(room, state)
        if state.timer is None and not state.waiting and state.delivered < state.known:
            self._fill_now(room, state)  # a sweep found more than this read

    def _fill_now(self, room: str, state: _Room) -> None:
        later = self._call_later or _loop_call_later
        state.timer = later(0.0, lambda: self._fill(room))


def _loop_call_later(delay: float, callback: Callable[[], Any]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)
