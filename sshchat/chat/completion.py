"""Tab completion: commands, then people (most recently active first), rooms.

Given what is typed before the cursor, returns where the word being
completed starts and the full replacements to cycle through.

Why an index: Tab is one byte, and a client may send thousands a second.
Scanning every person online and sorting every room on each press made a
Tab cost ~0.5 ms with 1000 rooms, so a stream of them froze the chat for
everyone (issue 14). Names and rooms are kept sorted, per hub, and a
prefix is found by bisection: a press costs O(log n + matches looked at).
The index is rebuilt when a join, leave or rename changed who is online
(seen at once, in O(1): the count, or the last key of the members dict,
which a join or a rename appends; also for rooms), and at the latest every
``REFRESH`` seconds (a change that left both as they were, e.g. two renames
in a row ending on the same last name): the rebuild is shared by every
session, so its cost does not grow with the number of presses. What it finds
is checked against who is online now.

People are offered most recently active first: the MAX_CANDIDATES most
recent of those matching (heapq), not the first MAX_CANDIDATES by name then
sorted. At most MAX_SCAN matches are looked at, so one Tab stays bounded
with any number of people online.
"""

from __future__ import annotations

import heapq
import re
import time
from bisect import bisect_left
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from sshchat.chat.commands import COMMANDS

if TYPE_CHECKING:
    from sshchat.chat.hub import Hub
    from sshchat.chat.member import Member

_ROOM_ARG_RE = re.compile(  # the commands whose first parameter is a #ROOM (the table says so), by any name
    r"/(" + "|".join(sorted(n for n, c in COMMANDS.items() if c.params.lstrip("[").startswith("#ROOM")))
    + r")\s+(\S*)$",
    re.IGNORECASE,
)
REFRESH = 1.0  # seconds an index may be kept while the counts are unchanged
MAX_CANDIDATES = 50  # cycled through by Tab; more is not a completion anyone reads
MAX_SCAN = 1000  # people matching a prefix looked at for the most recent (in name order)
_END = "\U0010ffff"  # sorts after every character a key may hold


class _Index:
    """The hub's people (by name key) and rooms (by folded name), sorted."""

    def __init__(self, hub: Hub) -> None:
        self.people = sorted({**hub.remote.by_key, **hub.members})  # in a cluster, other nodes' people too
        rooms = sorted((r.name.casefold(), r.name) for r in hub.rooms.values())
        self.room_keys = [k for k, _ in rooms]
        self.room_names = [n for _, n in rooms]
        self.shape = _shape(hub)
        self.built = time.monotonic()

    def fresh(self, hub: Hub) -> bool:
        return self.shape == _shape(hub) and time.monotonic() - self.built < REFRESH


def _shape(hub: Hub) -> tuple[int, str | None, int, str | None, int]:
    """What a join, leave or rename changes, in O(1): how many people and
    rooms, and the newest key of each (a rename re-inserts its person);
    and the other nodes' people's version."""
    members, rooms = hub.members, hub.rooms
    return (
        len(members), next(reversed(members), None) if members else None,
        len(rooms), next(reversed(rooms), None) if rooms else None, hub.remote.version,
    )


_indexes: WeakKeyDictionary[Hub, _Index] = WeakKeyDictionary()


def _index(hub: Hub) -> _Index:
    index = _indexes.get(hub)
    if index is None or not index.fresh(hub):
        index = _indexes[hub] = _Index(hub)
    return index


def _prefixed(keys: list[str], word: str, limit: int = MAX_CANDIDATES) -> range:
    """Indexes in sorted ``keys`` of those starting with ``word``, at most ``limit``."""
    lo = bisect_left(keys, word)
    hi = bisect_left(keys, word + _END, lo)
    return range(lo, min(hi, lo + limit))


def complete(hub: Hub, member: Member, before: str) -> tuple[int, list[str]]:
    """(start of the word, candidates) for the text before the cursor."""
    start = max(before.rfind(" "), before.rfind("\t")) + 1
    word = before[start:].casefold()
    if start == 0 and word.startswith("/"):
        table = hub.commands  # the hub's own: its plugins' commands too
        names = table.all_names if hub.is_op(member) else table.user_names
        return 0, [n for n in names if n.startswith(word)]
    m = _ROOM_ARG_RE.match(before)
    if m:
        index = _index(hub)
        return start, [index.room_names[i] for i in _prefixed(index.room_keys, word)]
    if not word:
        return start, []
    index = _index(hub)
    online, remote = hub.members, hub.remote.by_key
    people = [p for k in (index.people[i] for i in _prefixed(index.people, word, MAX_SCAN))
              if (p := online.get(k) or remote.get(k)) is not None]
    people = [p for p in people if p is not member and p.key.startswith(word)]
    people = heapq.nsmallest(MAX_CANDIDATES, people, key=lambda p: -p.last_active)  # most recent first
    suffix = ": " if start == 0 else " "
    return start, [p.name + suffix for p in people]
