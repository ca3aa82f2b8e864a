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


def row_end(widths: bytes | bytearray, start: int, stop: int, width: int, guess: int = 0) -> tuple[int, int]:
    """The row that starts at ``start``: the index after its last character
    and the cells it takes, from the characters' widths (``stop``: the end
    of the text). A character too wide for what is left of the row starts
    the next one; a zero-width one never does. So the row is the longest
    run from ``start`` whose widths add up to at most ``width``.

    Found by counting widths of 0 and 2 over a guessed run (C-level scans
    of a row's worth of bytes; ``guess``: how many characters the row
    before held, right for most text), a guess or two, then a step or two
    by hand:
    a Python loop over characters cost ~0.2 us each, and every edit lays
    out the rows below it that are on the screen. The editor calls it as
    ``cells.row_end``, so a test can count the characters laid out."""
    count = widths.count
    n = stop - start
    k = min(guess or width, n)  # characters taken, and the cells they take:
    c = k + count(2, start, start + k) - count(0, start, start + k)
    while c < width - 2 and k < n:  # take more, as many characters a cell as so far (marks take none)
        k = min(k + max((width - c) * k // max(c, 1), 1), n)
        c = k + count(2, start, start + k) - count(0, start, start + k)
    while c > width:  # wide characters (or marks) took too many: give back about the excess
        k -= max((c - width) * k // c, 1)
        c = k + count(2, start, start + k) - count(0, start, start + k)
    while k < n and c + widths[start + k] <= width:  # what still fits (marks of the last letter)
        c += widths[start + k]
        k += 1
    return start + k, c


def back_within(widths: bytes | bytearray, end: int, budget: int) -> int:
    """The first index of the longest run of characters ending before
    ``end`` whose widths add up to at most ``budget`` cells (0 if the whole
    start does). To scroll back a row or a screen, never the line: counted
    as ``row_end`` counts, backwards."""
    count = widths.count
    k = min(budget, end)  # characters taken back from ``end``, and their cells:
    c = k + count(2, end - k, end) - count(0, end - k, end)
    while c < budget - 2 and k < end:
        k = min(k + max((budget - c) * k // max(c, 1), 1), end)
        c = k + count(2, end - k, end) - count(0, end - k, end)
    while c > budget:
        k -= max((c - budget) * k // c, 1)
        c = k + count(2, end - k, end) - count(0, end - k, end)
    while k < end and c + widths[end - k - 1] <= budget:
        c += widths[end - k - 1]
        k += 1
    return end - k


def marks_around(widths: bytes | bytearray, at: int, floor: int) -> int:
    """Zero-width characters next to index ``at`` (MAX_COMBINING + 1 at most
    are looked at); on no character to sit on (nothing from ``floor`` up to
    ``at`` but marks), as many as the cap."""
    run = 0
    k = at - 1
    while k >= floor and run <= MAX_COMBINING and widths[k] == 0:
        run, k = run + 1, k - 1
    if k < floor:
        return MAX_COMBINING
    return run + marks_after(widths, at, MAX_COMBINING + 1 - run)


def marks_after(widths: bytes | bytearray, at: int, most: int = MAX_COMBINING + 1) -> int:
    """Zero-width characters from index ``at`` on (``most`` at most are counted)."""
    run = 0
    while at < len(widths) and run < most and widths[at] == 0:
        run, at = run + 1, at + 1
    return run


def prev_boundary(widths: bytes | bytearray, at: int, floor: int) -> int:
    """One character left of ``at`` (not before ``floor``), stepping over
    combining marks as one."""
    at = max(at - 1, floor)
    while at > floor and widths[at] == 0:
        at -= 1
    return at


def next_boundary(widths: bytes | bytearray, at: int) -> int:
    """One character right of ``at``, stepping over combining marks as one."""
    n = len(widths)
    at = min(at + 1, n)
    while at < n and widths[at] == 0:
        at += 1
    return at


def word_start(text: str, pos: int) -> int:
    """Start of the word before ``pos`` (spaces before it skipped). With
    str methods (C loops): a word may be the whole line, and a Python loop
    over it cost ~0.5 ms a key."""
    before = text[:pos].rstrip()
    if not before:
        return 0
    return len(before) - len(before.rsplit(None, 1)[-1])


def word_end(text: str, pos: int) -> int:
    """End of the word after ``pos`` (spaces before it skipped)."""
    after = text[pos:]
    rest = after.lstrip()
    if not rest:
        return len(text)
    return pos + (len(after) - len(rest)) + len(rest.split(None, 1)[0])


def rewrapped_row(rows: list[str], row: int, at: int, width: int) -> int:
    """The row the cursor is on once a terminal rewraps ``rows`` (each a line
    of its own) at ``width``, with the cursor at character ``at`` of ``rows[row]``."""
    return sum(rewrapped(r, width)[0] for r in rows[:row]) + rewrapped(rows[row], width, at)[1]
