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
hub drops that node's people (``Mirror.drop_node``), and its name claims
expire on their own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from sshchat.chat.addresses import address_keys
from sshchat.chat.bus import Arrived
from sshchat.chat.member import NOWHERE, Member
from sshchat.chat.names import name_key
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
        longer than a claim lasts): whoever holds it here must give it up."""


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
        self.version = 0  # changes whenever someone comes, goes or is renamed (Tab's index)
        # People by where they came from (chat/addresses.py's keys): the
        # connections an address holds on the other nodes (ssh/limits.py).
        self.by_address: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._by_session)

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._by_session.values()))

    def find(self, name: str) -> Member | None:
        return self.by_key.get(name_key(name))

    def nodes(self) -> set[str]:
        return {node for node, _ in self._by_session}

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
        elif found.name != event.name:
            if self.by_key.get(found.key) is found:
                del self.by_key[found.key]
            found.rename(event.name)
            self.version += 1
        self._leave_rooms(found)
        found.room, found.rooms, found.away = event.room, list(event.rooms), event.away
        found.last_active = event.last_active
        for key in found.rooms:
            self._in_room.setdefault(key, {})[(event.node, event.session)] = found
        self.by_key[found.key] = found
        return found

    def remove(self, node: str, session: int) -> Member | None:
        found = self._by_session.pop((node, session), None)
        if found is not None:
            self._leave_rooms(found)
            if self.by_key.get(found.key) is found:
                del self.by_key[found.key]
            self.version += 1
            self._count(found.address, -1)
        return found

    def _count(self, address: str, step: int) -> None:
        for key in address_keys(address):
            if key is not None:
                self.by_address[key] += step
                if self.by_address[key] <= 0:
                    del self.by_address[key]

    def drop_node(self, node: str) -> list[Member]:
        """Everyone of ``node`` gone at once (it stopped, or stopped answering)."""
        gone = [m for (n, _), m in self._by_session.items() if n == node]
        for member in gone:
            self.remove(node, member.session)
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
