"""Room: who is in it, what was said recently, and delivery in order.

Delivery is a plain loop over the online members' outlets, each of which
only queues: no member can slow the loop down, and every member sees the
room's messages in exactly the order the room accepted them.

A member belongs to several rooms but looks at one. What is said in a room
they are not looking at is counted as unread, except lines that name them
(the rule in mentions.py), which reach them wherever they are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

from sshchat.chat.member import Member
from sshchat.chat.mentions import mentions
from sshchat.chat.message import SPOKEN, Kind, Message
from sshchat.chat.names import name_key

_COMINGS_AND_GOINGS = frozenset({Kind.JOIN, Kind.LEAVE})


@dataclass
class RoomInfo:
    """What is kept about a room: its name, topic and creator."""

    name: str
    topic: str = ""
    creator: str = ""  # the creator's name when they made it
    creator_fp: str | None = None  # their key: only a keyed creator has rights
    created: float = 0.0
    # Where it was made from, as every per-address rule counts it (chat/addresses.py:
    # the address or IPv6 /64, and the /48 around it): kept with the room, so
    # the rooms-per-address caps hold across a restart. "" if not known.
    made_from: str = ""
    made_from_site: str | None = None

    @property
    def key(self) -> str:
        return name_key(self.name)


class Room:
    """A named conversation with the people in it and what was said recently."""

    def __init__(self, info: RoomInfo, history_size: int) -> None:
        """``history_size``: messages kept for joins without a disk read
        (the ``history_in_memory`` setting)."""
        self.info = info
        self.members: dict[str, Member] = {}  # online members, by name key
        self.listeners: list[Member] = []  # bots following the room (tail --follow), not members
        self.recent_notices: deque[float] = deque()  # times of recent joins/leaves
        self.pending_notices: dict[Kind, list[str]] = {}  # names waiting for a summary
        self.last_summary = float("-inf")  # when the last summary went out
        self.history: deque[Message] = deque(maxlen=history_size)
        # Its name never changes (a topic changes in place), so its key is
        # worked out once: publish reads it for every message, and name_key
        # (NFKC, casefold) cost ~1 us a time, as much as delivering to one member.
        self.key = info.key
        # Being removed: the store has been asked to drop it, and nothing more
        # may be kept for it meanwhile (a message kept after the drop would
        # come back with a room made again under its name).
        self.closing = False

    @property
    def name(self) -> str:
        return self.info.name

    def add(self, member: Member) -> None:
        self.members[member.key] = member

    def remove(self, member: Member) -> None:
        if self.members.get(member.key) is member:
            del self.members[member.key]

    def rekey(self, old_key: str, member: Member) -> None:
        """Keep a renamed member under their new name. Moved to the end, as
        the hub's own map does: nothing reads the order of a room's members
        but to sort them, and keeping their place cost a copy of the whole
        room per /nick (~3 ms in a room of 10,000)."""
        if self.members.get(old_key) is member:
            del self.members[old_key]
            self.members[member.key] = member

    def publish(self, msg: Message, keep: bool = True, sender: str | None = None) -> None:
        """Queue ``msg`` for the members looking at this room, in order.

        ``sender``: the person who said it (Member.person), for /ignore;
        None for lines from nobody in particular.

        Members looking elsewhere get spoken lines that name them, and a
        count of the rest; notices stay in the room they concern.
        """
        if keep:
            self.history.append(msg)
        for listener in self.listeners:
            listener.outlet.deliver(msg)
        key = self.key
        spoken = msg.kind in SPOKEN
        noise = msg.kind in _COMINGS_AND_GOINGS
        for member in self.members.values():
            prefs = member.prefs
            # ``in prefs.ignored``, not ``prefs.ignoring()``: a call per member per message
            # cost ~120 ns of the ~290 ns a delivery took here
            if (sender is not None and sender in prefs.ignored) or (noise and prefs.quiet):
                continue
            if member.room == key:
                member.outlet.deliver(msg)
            elif spoken:
                member.unread[key] += 1
                if mentions(msg, member.key):
                    member.outlet.deliver(msg, elsewhere=True)

    def recent(self, count: int) -> list[Message]:
        """The last ``count`` messages, oldest first."""
        if count <= 0:
            return []
        newest_first = list(islice(reversed(self.history), count))  # not a copy of all history per join
        newest_first.reverse()
        return newest_first
