"""A session's pending output, turned into what its reader is shown.

The chat session queues messages and notices as they come and, once per
event-loop turn, hands the whole batch here. These functions take nothing
but the batch and the facts about the reader that change what they see, and
return text: no channel, no editor, no session. What the screen shows can
therefore be tested by calling them (and reading the rows back with a
terminal emulator), and the session is left with the writing.

Each message goes through ``render_rows``, cached per message, look and
width, so readers who see a line the same way share the work.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from sshchat.chat.mentions import mentions
from sshchat.chat.message import Kind, Message
from sshchat.term.render import PLAIN, Look, Style, plain, render, render_notice, render_rows
from sshchat.term.wrap import wrap

BELL = "\x07"

# With the bell set to "all", what rings: lines people say to the room or to you.
_RINGS_ALL = frozenset({Kind.CHAT, Kind.EMOTE, Kind.PRIVATE})
_NOTICE_INDENT = 3  # continuation rows of a notice start under its text, after "-> "


class Elsewhere(NamedTuple):
    """A message from a room the person is not looking at.

    The room sends it only because it names them, so it always counts as a
    mention: highlighted, and it rings unless their bell is off.
    """

    msg: Message


# One queued item: a message of the room in view, a line for this person only
# (a notice: replies, errors, welcome), or a message from elsewhere.
Pending = Message | str | Elsewhere


def screen_rows(
    items: list[Pending], look: Look, width: int, name: str, key: str, bell: str
) -> tuple[list[str], bool]:
    """The rows a terminal shows for ``items`` and whether to ring its bell.

    The reader: ``look`` (style, timestamps, zone), ``width`` in cells (rows
    never exceed it), ``name`` as shown (their own lines never highlight or
    ring: a plain string compare per line) and ``key``, their name key (what
    a mention names), and ``bell``: "off" (never), "mention" (lines that
    name them and private messages) or "all" (anything someone else says).
    Rows carry no line ends; the caller joins them for its terminal.
    """
    rows: list[str] = []
    ring = False
    for item in items:
        if item.__class__ is Message:
            msg: Message = item
            elsewhere = False
        elif isinstance(item, str):
            rows.extend(wrap(render_notice(item, look.style), _NOTICE_INDENT, width))
            continue
        else:
            msg, elsewhere = item.msg, True  # type: ignore[union-attr]
        mine = msg.sender == name
        mention = not mine and (elsewhere or mentions(msg, key))
        rows.extend(render_rows(msg, look, elsewhere, mention, width))
        if not mine and (mention or msg.kind is Kind.PRIVATE or (bell == "all" and msg.kind in _RINGS_ALL)):
            ring = True
    return rows, ring and bell != "off"


@lru_cache(maxsize=4096)
def script_line(item: Pending) -> bytes:
    """One item as a script reads it (no PTY): no colour, no wrapping, one
    line, UTF-8; a line from another room says which. Cached, so every such reader shares one encoding (a Message
    hashes by identity; equal notices share a line)."""
    if isinstance(item, str):
        text = render_notice(item, Style.MONO)
    elif isinstance(item, Elsewhere):  # says which room, as on a screen
        text = render(item.msg, PLAIN, elsewhere=True)[0]
    else:
        text = plain(item)
    return (text + "\n").encode("utf-8", "replace")


def script_text(items: list[Pending]) -> bytes:
    """A batch as a script reads it, ready to send."""
    if len(items) == 1:
        return script_line(items[0])
    return b"".join([script_line(item) for item in items])
