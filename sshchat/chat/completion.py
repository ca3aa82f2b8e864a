"""Tab completion: commands, then people (most recently active first), rooms.

Pure: given what is typed before the cursor, returns where the word being
completed starts and the full replacements to cycle through.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sshchat.chat.commands import COMMANDS

if TYPE_CHECKING:
    from sshchat.chat.hub import Hub
    from sshchat.chat.member import Member

_ROOM_ARG_RE = re.compile(  # the commands whose first parameter is a #ROOM (the table says so), by any name
    r"/(" + "|".join(sorted(n for n, c in COMMANDS.items() if c.params.lstrip("[").startswith("#ROOM")))
    + r")\s+(\S*)$",
    re.IGNORECASE,
)


def complete(hub: Hub, member: Member, before: str) -> tuple[int, list[str]]:
    """(start of the word, candidates) for the text before the cursor."""
    start = max(before.rfind(" "), before.rfind("\t")) + 1
    word = before[start:].casefold()
    if start == 0 and word.startswith("/"):
        is_op = hub.is_op(member)
        names = sorted(
            {f"/{c.name} " for c in COMMANDS.values() if is_op or not c.op_only}
        )
        return 0, [n for n in names if n.startswith(word)]
    m = _ROOM_ARG_RE.match(before)
    if m:
        rooms = sorted(r.name for r in hub.rooms.values())
        return start, [r for r in rooms if r.casefold().startswith(word)]
    if not word:
        return start, []
    people = sorted(
        (p for p in hub.members.values() if p is not member and p.key.startswith(word)),
        key=lambda p: -p.last_active,
    )
    suffix = ": " if start == 0 else " "
    return start, [p.name + suffix for p in people]
