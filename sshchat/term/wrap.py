"""Word-wrap rendered lines at the terminal width, with a hanging indent.

Continuation rows start under the text, not under the name, so a long
message reads as a block. Widths come from wcwidth (CJK and emoji take two
cells); colour codes take none. Each row is at most ``width`` cells and is
ended by us, so no terminal's own wrapping rules ever come into play.
"""

from __future__ import annotations

import re
from functools import lru_cache

from sshchat.term.cells import char_width

_SGR_RE = re.compile(r"\x1b\[[0-9;]*m")
_MIN_TEXT = 16  # a hanging indent is dropped if it would leave less than this


def _tokens(line: str) -> list[tuple[str, int]]:
    """(piece, cells) pairs: colour codes as one zero-width piece each."""
    out: list[tuple[str, int]] = []
    pos = 0
    for m in _SGR_RE.finditer(line):
        out.extend((ch, char_width(ch)) for ch in line[pos : m.start()])
        out.append((m.group(), 0))
        pos = m.end()
    out.extend((ch, char_width(ch)) for ch in line[pos:])
    return out


@lru_cache(maxsize=1024)
def wrap(line: str, indent: int, width: int) -> tuple[str, ...]:
    """``line`` as rows of at most ``width`` cells; rows after the first indented."""
    if width < 2:
        return (line,)
    if len(line) < width and line.isascii():  # the common short line: nothing to do
        return (line,)
    if width - indent < _MIN_TEXT:
        indent = 0
    rows: list[str] = []
    row: list[tuple[str, int]] = []
    col = 0
    space = -1  # index in ``row`` of the last space we may break at
    start = 0  # index in ``row`` where breakable text starts (after the indent)
    for piece, cells in _tokens(line):
        if cells and col + cells > width:
            if space > start:
                rest = row[space + 1 :]
                row = row[:space]
            else:
                rest = []
            rows.append("".join(p for p, _ in row))
            row = [(" " * indent, indent), *rest]
            col = indent + sum(c for _, c in rest)
            space, start = -1, 1
        if piece == " ":
            space = len(row)
        row.append((piece, cells))
        col += cells
    rows.append("".join(p for p, _ in row))
    return tuple(rows)
