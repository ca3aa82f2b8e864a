"""Tab completion: commands, then people (most recently active first), rooms.

Given what is typed before the cursor, returns where the word being
completed starts and the full replacements to cycle through.

Why an index: Tab is one byte, and a client may send thousands a second.
Scanning every person online and sorting every room on each press made a
Tab cost ~0.5 ms with 1000 rooms, so a stream of them froze the chat for
everyone (issue 14). Names and rooms are kept sorted, per hub, and a
prefix is found by bisection: a press costs O(log n + candidates shown).
The index is rebuilt when the number of people or rooms changed, and at
most once every ``REFRESH`` seconds otherwise (a rename keeps the count):
the rebuild is shared by every session, so its cost does not grow with the
number of presses. What it finds is checked against who is online now.
"""

from __future__ import annotations

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
_ALL_COMMANDS = sorted({f"/{c.name} " for c in COMMANDS.values()})
_USER_COMMANDS = sorted({f"/{c.name} " for c in COMMANDS.values() if not c.op_only})
_END = "\U0010ffff"  # sorts after every character a key may hold


class _Index:
    """The hub's people (by name key) and rooms (by folded name), sorted."""

    def __init__(self, hub: Hub) -> None:
        self.people = sorted(hub.members)
        rooms = sorted((r.name.casefold(), r.name) for r in hub.rooms.values())
        self.room_keys = [k for k, _ in rooms]
        self.room_names = [n for _, n in rooms]
        self.counts = (len(hub.members), len(hub.rooms))
        self.built = time.monotonic()

    def fresh(self, hub: Hub) -> bool:
        return self.counts == (len(hub.members), len(hub.rooms)) and time.monotonic() - self.built < REFRESH


_indexes: WeakKeyDictionary[Hub, _Index] = WeakKeyDictionary()


def _index(hub: Hub) -> _Index:
    index = _indexes.get(hub)
    if index is None or not index.fresh(hub):
        index = _indexes[hub] = _Index(hub)
    return index


def _prefixed(keys: list[str], word: str) -> range:
    """Indexes in sorted ``keys`` of those starting with ``word``, at most MAX_CANDIDATES."""
    lo = bisect_left(keys, word)
    hi = bisect_left(keys, word + _END, lo)
    return range(lo, min(hi, lo + MAX_CANDIDATES))


def complete(hub: Hub, member: Member, before: str) -> tuple[int, list[str]]:
    """(start of the word, candidates) for the text before the cursor."""
    start = max(before.rfind(" "), before.rfind("\t")) + 1
    word = before[start:].casefold()
    if start == 0 and word.startswith("/"):
        names = _ALL_COMMANDS if hub.is_op(member) else _USER_COMMANDS
        return 0, [n for n in names if n.startswith(word)]
    m = _ROOM_ARG_RE.match(before)
    if m:
        index = _index(hub)
        return start, [index.room_names[i] for i in _prefixed(index.room_keys, word)]
    if not word:
        return start, []
    index = _index(hub)
    online = hub.members
    people = [online[k] for k in (index.people[i] for i in _prefixed(index.people, word)) if k in online]
    people = [p for p in people if p is not member and p.key.startswith(word)]
    people.sort(key=lambda p: -p.last_active)
    suffix = ": " if start == 0 else " "
    return start, [p.name + suffix for p in people]
