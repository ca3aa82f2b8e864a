"""Stand-ins for the bus tests: a store that numbers each room's messages
1, 2, 3... as the cluster's store does (cluster.md), and a node's receiver
that records what it was given; a cluster's bus that loses events on cue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from sshchat.bus.codec import decode, encode
from sshchat.chat.bus import APPLIED_HERE, Event, Private, Receive, RoomLine
from sshchat.chat.message import Kind, Message
from sshchat.chat.store import Said


class SequencedStore:
    """Commits messages with per-room contiguous ids; reads them back with ``after``."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[Message]] = defaultdict(list)
        self.reads: list[tuple[str, int, int]] = []  # every after() asked: (room, after_id, limit)
        self.sweeps = 0  # last_ids() asked

    def commit(self, room: str, text: str, sender: str = "alice", recipient: str | None = None) -> Message:
        kept = self.rooms[room]
        msg = Message(len(kept) + 1, room, Kind.PRIVATE if recipient else Kind.CHAT, sender, text, 0.0, recipient)
        kept.append(msg)
        return msg

    def line(self, room: str, text: str) -> RoomLine:
        return RoomLine(self.commit(room, text), True, "fingerprint:SHA256:x")

    def private(self, text: str, sender: str = "alice", recipient: str = "bob") -> Private:
        return Private(self.commit("", text, sender, recipient), None, None)

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        self.reads.append((room, after_id, limit))
        done([Said(m, None) for m in self.rooms.get(room, []) if m.id > after_id][:limit])


    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        self.sweeps += 1
        done({room: len(kept) for room, kept in self.rooms.items() if kept})


class Received:
    """A node's receive: every event, in the order delivered."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def ids(self, room: str) -> list[int]:
        return [e.msg.id for e in self.events if isinstance(e, (RoomLine, Private)) and e.msg.room == room]

    def texts(self, room: str) -> list[str]:
        return [e.msg.text for e in self.events if isinstance(e, (RoomLine, Private)) and e.msg.room == room]


class LossyNet:
    """An in-process cluster bus that every node's hub is attached to, which
    a test can make lose events on their way to one node (a trimmed stream,
    a reconnect gap): ``lose[receive] = predicate``. Events are encoded and
    decoded on the way, as the Redis bus carries them."""

    def __init__(self) -> None:
        self.hubs: list[Receive] = []
        self.lose: dict[Receive, Callable[[Event], bool]] = {}

    def bus(self) -> LossyPort:
        return LossyPort(self)


class LossyPort:
    """One node's end of a ``LossyNet`` (the Bus protocol)."""

    crosses_processes = True

    def __init__(self, net: LossyNet) -> None:
        self.net = net
        self.receive: Receive | None = None

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        self.receive = receive
        self.net.hubs.append(receive)

    def publish(self, event: Event) -> None:
        for receive in list(self.net.hubs):
            if receive is self.receive and type(event) in APPLIED_HERE:
                continue  # applied here already: as the Redis bus, never handed back
            lose = self.net.lose.get(receive)
            if lose is not None and lose(event):
                continue
            receive(decode(encode(event)))

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
