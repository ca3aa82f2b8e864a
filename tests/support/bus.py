"""Stand-ins for the bus tests: a store that numbers each room's messages
1, 2, 3... as the cluster's store does (cluster.md), and a node's receiver
that records what it was given."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from sshchat.chat.bus import Event, Private, RoomLine
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
