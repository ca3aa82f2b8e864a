"""Where characters fall in a line of terminal cells.

The editor lays its line out on every key, so the measuring lives here, in
pure functions over text (or the editor's buffer and cursor position): one
place that calls wcwidth, behind a bounded cache. Everything that measures a
character goes through this module's ``char_width``, looked up as a module
attribute, so the editor's cost tests can count every call by replacing it.
"""

from __future__ import annotations

from bisect import bisect_right

from wcwidth import wcwidth

from sshchat.chat.sanitize import MAX_COMBINING

_WIDTHS: dict[str, int] = {}


def char_width(ch: str) -> int:
    """Terminal cells taken by one character (0 for combining marks).
    Remembered: every key measures a row or two, and wcwidth is slow."""
    w = _WIDTHS.get(ch)
    if w is None:
        w = max(wcwidth(ch), 0)
        if len(_WIDTHS) < 65536:  # bounded: a client may send every code point there is
            _WIDTHS[ch] = w
    return w


def extend_starts(text: str, first: int, width: int, starts: list[int]) -> int:
    """Lay ``text`` out from index ``first`` (the start of a row, already the
    last of ``starts``), appending where each further row starts; returns the
    column after the last character. A character too wide for what is left
    of a row starts the next one (as terminals do)."""
    col = 0
    for k in range(first, len(text)):
        w = char_width(text[k])
        if w and col + w > width:
            starts.append(k)
            col = 0
        col += w
    return col


def row_starts(text: str, width: int) -> tuple[list[int], int]:
    """Where each row of ``text`` starts when it is wrapped at ``width``
    cells, and the column after its last character."""
    starts = [0]
    return starts, extend_starts(text, 0, width, starts)


def rewrapped(line: str, width: int, at: int | None = None) -> tuple[int, int]:
    """How a terminal that rewraps lines lays ``line`` out at ``width``:
    the rows it takes, and the row of character ``at`` in it. A cursor at
    or past the end stays on the last row (as tmux keeps it)."""
    starts, _ = row_starts(line, width)
    if at is None or at >= len(line):
        return len(starts), len(starts) - 1
    return len(starts), bisect_right(starts, at) - 1


def cells_of(piece: str) -> int:
    """Cells taken by ``piece`` (plain ASCII by its length, no measuring)."""
    return len(piece) if piece.isascii() else sum(char_width(ch) for ch in piece)


def marks_around(buf: list[str], pos: int) -> int:
    """Zero-width characters next to ``pos`` (MAX_COMBINING + 1 at most are
    looked at; on no character to sit on, as many as the cap)."""
    run = 0
    k = pos - 1
    while k >= 0 and run <= MAX_COMBINING and char_width(buf[k]) == 0:
        run, k = run + 1, k - 1
    if k < 0:
        return MAX_COMBINING
    k = pos
    while k < len(buf) and run <= MAX_COMBINING and char_width(buf[k]) == 0:
        run, k = run + 1, k + 1
    return run


def prev_boundary(buf: list[str], pos: int) -> int:
    """One character left, stepping over combining marks as one."""
    pos = max(pos - 1, 0)
    while pos > 0 and char_width(buf[pos]) == 0:
        pos -= 1
    return pos


def next_boundary(buf: list[str], pos: int) -> int:
    """One character right, stepping over combining marks as one."""
    n = len(buf)
    pos = min(pos + 1, n)
    while pos < n and char_width(buf[pos]) == 0:
        pos += 1
    return pos


def word_start(buf: list[str], pos: int) -> int:
    """Start of the word before ``pos`` (spaces before it skipped). With
    str methods: a word may be the whole line, and a Python loop over
    it cost ~0.5 ms a key."""
    before = "".join(buf[:pos]).rstrip()
    if not before:
        return 0
    return len(before) - len(before.rsplit(None, 1)[-1])


def word_end(buf: list[str], pos: int) -> int:
    """End of the word after ``pos`` (spaces before it skipped)."""
    after = "".join(buf[pos:])
    rest = after.lstrip()
    if not rest:
        return len(buf)
    return pos + (len(after) - len(rest)) + len(rest.split(None, 1)[0])


def rewrapped_row(rows: list[str], row: int, at: int, width: int) -> int:
    """The row the cursor is on once a terminal rewraps ``rows`` (each a line
    of its own) at ``width``, with the cursor at character ``at`` of ``rows[row]``."""
    return sum(rewrapped(r, width)[0] for r in rows[:row]) + rewrapped(rows[row], width, at)[1]
