"""Who is online on the other nodes of a cluster, and who may take a name.

Two things a single process gets for free and a cluster does not:

* a name is unique across nodes: before a login joins (and before /nick
  takes a new name) the ``Roster`` claims the name for this node. In one
  process the claim is the hub's own check, so ``LocalRoster`` answers at
  once, on the caller's stack, at no cost; the cluster's roster
  (sshchat/bus/roster.py) claims it atomically in Redis and answers later,
  on the event loop. The chat core only sees the callback.
* everyone sees everyone: each node publishes its people on the bus
  (Arrived, Departed; chat/bus.py) and every other node keeps a ``Mirror``
  of them. A remote person is a ``Member`` whose ``node`` is set and whose
  outlet reaches nobody here: /names, /whois, /msg, /kick, Tab completion
  find them like anyone else, and what must happen to them (a kick, a
  private message) travels on the bus to their node, which does it.

A node that dies stops renewing its heartbeat; the roster notices and the
hub drops that node's people (``Mirror.drop_node``); its name claims are
valid only while its heartbeat lives, so they are free at once.

Each node also keeps its people where every node can read them (in Redis),
with a count of its presence changes (``seq`` of Arrived and Departed); a
node whose mirror of another is behind that count reads them from there
(``Mirror.replace``): an event it missed leaves no ghost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from sshchat.chat.addresses import address_keys
from sshchat.chat.bus import Arrived, Departed
from sshchat.chat.member import NOWHERE, Member
from sshchat.chat.names import name_key, skeleton
from sshchat.chat.ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim. ``taken``: someone on another node holds the
    name; ``error``: the claim could not be made (why, in a few words);
    ``displaced``: the node whose session of the same key gives way."""

    taken: bool = False
    error: str | None = None
    displaced: str | None = None

    @property
    def refused(self) -> bool:
        return self.taken or self.error is not None


CLAIMED = Claim()

# A node tells the others a person's last activity again once it moved on by
# this much (at most one Arrived per person per IDLE_STEP, not one per line):
# /whois on another node shows an idle time at most this much too long.
IDLE_STEP = 30.0

ClaimThen = Callable[[Claim], None]


class RosterListener(Protocol):
    """What the roster asks of, and tells, the hub."""

    def held_names(self) -> list[tuple[str, str | None]]:
        """The (name, fingerprint) of everyone here: their names stay claimed."""
        ...

    def mirrored_nodes(self) -> Iterable[str]:
        """The other nodes whose people are mirrored here (their heartbeats are watched)."""
        ...

    def node_gone(self, node: str) -> None:
        """``node`` stopped answering: its people must go."""

    def node_forgotten(self) -> None:
        """The other nodes may have taken this one for gone: tell them its people again."""

    def name_lost(self, name: str, fingerprint: str | None) -> None:
        """Someone on another node holds ``name`` now (this node was cut off
        longer than its heartbeat lasts): whoever holds it here must give it up."""

    def people(self) -> tuple[int, list[Arrived]]:
        """This node's presence count and everyone here, as Arrived (the
        roster writes them again where Redis lost them)."""
        ...

    def mirror_seq(self, node: str) -> int:
        """The last presence count of ``node`` applied to the mirror (0: none)."""
        ...

    def reconcile(self, node: str, people: list[Arrived], seq: int) -> None:
        """``node``'s people are these, as of its count ``seq`` (read from
        Redis because the mirror was behind): the mirror becomes them."""


class Roster(Protocol):
    """Names across nodes, and which nodes are alive (the hub's side of it)."""

    node: str  # this node's id in the cluster ("" for a single process)
    cluster: bool  # False: nothing to claim or publish beyond this process

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        """Claim ``name`` for this node's person with ``fingerprint``; ``then``
        hears the answer (at once for a single process). ``take_over``: a
        holder on another node with the same key gives way (a login, not a
        rename)."""

    def release(self, name: str, fingerprint: str | None) -> None:
        """``name`` is no longer held here by ``fingerprint`` (never raises, never waits)."""

    def attach(self, listener: RosterListener) -> None:
        """The hub to ask and to tell (see RosterListener)."""

    def record(self, event: Arrived | Departed) -> None:
        """Keep what this node just published about one of its people where
        the other nodes can check their mirrors against it (never waits)."""


class LocalRoster:
    """One process: the hub's own checks are the whole claim."""

    node = ""
    cluster = False

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        then(CLAIMED)

    def release(self, name: str, fingerprint: str | None) -> None:
        """Nothing is held outside the hub."""

    def attach(self, listener: RosterListener) -> None:
        """Nothing to renew, no other node to watch."""

    def record(self, event: Arrived | Departed) -> None:
        """No other node reads it."""


_NO_RATE = TokenBucket(1, 1.0, lambda: 0.0)  # a remote person's rate is their node's to keep


class Mirror:
    """The people online on the other nodes, as their nodes last said.

    Each person is one ``Member`` (``node`` set) kept for as long as they
    stay, changed in place: /reply holds on to it and compares by identity.
    """

    def __init__(self) -> None:
        self._by_session: dict[tuple[str, int], Member] = {}
        self.by_key: dict[str, Member] = {}  # name key -> remote person
        # room key -> its remote people (a dict keeps their order): a join's
        # "(N here)" and /names of one room cost that room, not everyone.
        self._in_room: dict[str, dict[tuple[str, int], Member]] = {}
        # skeleton -> remote person: a login's look-alike check is one lookup
        # here, not a walk of everyone on the other nodes (chat/presence.py).
        self.shapes: dict[str, Member] = {}
        self.seqs: dict[str, int] = {}  # node -> its last presence count applied here
        self.gaps: set[str] = set()  # nodes whose counts skipped one: an event was missed
        self.version = 0  # changes whenever someone comes, goes or is renamed (Tab's index)
        # People by where they came from (chat/addresses.py's keys): the
        # connections an address holds on the other nodes (ssh/limits.py).
        self.by_address: Counter[str] = Counter()
        # node -> how many of its people are here: the roster's every beat
        # asks which nodes are mirrored, at the cost of the nodes, not the people.
        self._per_node: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._by_session)

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._by_session.values()))

    def find(self, name: str) -> Member | None:
        return self.by_key.get(name_key(name))

    def nodes(self) -> set[str]:
        return set(self._per_node)

    def stale(self, node: str, seq: int) -> bool:
        """Is an event of ``node`` with count ``seq`` older than what the
        mirror has (read from Redis meanwhile)? Else the count is noted, and
        a count that skips one (an event missed: the stream was trimmed
        while this node was away, Redis restarted empty) marks ``node`` for
        reading again (``behind``). A count of 0 is an older version's
        event: always applied."""
        if not seq:
            return False
        last = self.seqs.get(node, 0)
        if seq <= last:
            return True
        if seq != last + 1:
            self.gaps.add(node)
        self.seqs[node] = seq
        return False

    def behind(self, node: str) -> int:
        """The count of ``node`` up to which the mirror is whole (0 after a
        gap: anything newer in Redis is worth reading)."""
        return 0 if node in self.gaps else self.seqs.get(node, 0)

    def update(self, event: Arrived) -> Member:
        """Someone on another node is here, in this state (new, renamed, moved)."""
        found = self._by_session.get((event.node, event.session))
        if found is None:
            found = Member(event.name, event.fingerprint, NOWHERE, _NO_RATE, event.address,
                           connected_at=event.connected_at, session=event.session)
            found.node = event.node
            self._by_session[(event.node, event.session)] = found
            self.version += 1
            self._count(found.address, 1)
            self._per_node[event.node] += 1
        elif found.name != event.name:
            self._unindex(found)
            found.rename(event.name)
            self.version += 1
        self._leave_rooms(found)
        found.room, found.rooms, found.away = event.room, list(event.rooms), event.away
        found.last_active = event.last_active
        for key in found.rooms:
            self._in_room.setdefault(key, {})[(event.node, event.session)] = found
        self.by_key[found.key] = found
        self.shapes[skeleton(found.name)] = found
        return found

    def _unindex(self, member: Member) -> None:
        if self.by_key.get(member.key) is member:
            del self.by_key[member.key]
        shape = skeleton(member.name)
        if self.shapes.get(shape) is member:
            del self.shapes[shape]

    def remove(self, node: str, session: int) -> Member | None:
        found = self._by_session.pop((node, session), None)
        if found is not None:
            self._leave_rooms(found)
            self._unindex(found)
            self.version += 1
            self._count(found.address, -1)
            self._per_node[node] -= 1
            if self._per_node[node] <= 0:
                del self._per_node[node]
        return found

    def _count(self, address: str, step: int) -> None:
        for key in address_keys(address):
            if key is not None:
                self.by_address[key] += step
                if self.by_address[key] <= 0:
                    del self.by_address[key]

    def replace(self, node: str, people: list[Arrived], seq: int) -> list[Member]:
        """``node``'s people are exactly ``people`` (as of its count ``seq``):
        those the mirror has and ``people`` lacks are removed and returned.
        Older than what the mirror has (events came while Redis was read):
        nothing changes, and the next look reads it again."""
        if seq < self.seqs.get(node, 0):
            return []
        here = {event.session for event in people}
        gone = [m for (n, s), m in list(self._by_session.items()) if n == node and s not in here]
        for member in gone:
            self.remove(node, member.session)
        for event in people:
            self.update(event)
        self.seqs[node] = seq
        self.gaps.discard(node)
        return gone

    def drop_node(self, node: str) -> list[Member]:
        """Everyone of ``node`` gone at once (it stopped, or stopped answering)."""
        gone = [m for (n, _), m in self._by_session.items() if n == node]
        for member in gone:
            self.remove(node, member.session)
        self.seqs.pop(node, None)
        self.gaps.discard(node)
        return gone

    def in_room(self, room_key: str) -> list[Member]:
        return list(self._in_room.get(room_key, {}).values())

    def count_in(self, room_key: str) -> int:
        """How many people of the other nodes are in the room."""
        return len(self._in_room.get(room_key, ()))

    def room_counts(self) -> dict[str, int]:
        return {key: len(people) for key, people in self._in_room.items()}

    def _leave_rooms(self, member: Member) -> None:
        """Take ``member`` out of the room index (before their rooms change)."""
        for key in member.rooms:
            people = self._in_room.get(key)
            if people is not None:
                people.pop((member.node, member.session), None)
                if not people:
                    del self._in_room[key]
