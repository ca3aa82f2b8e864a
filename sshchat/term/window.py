"""Which rows of the input line are on the screen, and where they break.

The input line may be longer than the terminal is tall (a chat line holds
2048 characters: 52 rows of CJK at 80 columns). Laying out and drawing it
all on every key made an edit at its start cost the whole line (issue 14),
and a drawing taller than the screen scrolled the chat away. So only a
window of rows is laid out and drawn: at most ``height`` rows, wrapped from
the window's first character (``top``) and kept around the cursor. An edit
lays out again from the row before it to the window's last row; a cursor
move that leaves the window scrolls it. Either way the work is a screen's
worth at most, whatever the line's length.

While the whole line fits, ``top`` stays 0 and the rows are exactly those
of the whole line wrapped from its start. A longer line is wrapped from
``top``, which may differ from how it would wrap from its start; only the
rows on the screen are ever seen, so nothing can tell.

The window knows only the characters' widths (cells), not the text: a
``bytearray`` the editor owns and edits in place, one byte per character
of prompt + text.
"""

from __future__ import annotations

from bisect import bisect_right

from sshchat.term import cells

Row = tuple[int, int, int]  # first index, index after the last, cells taken
MAX_HEIGHT = 200  # rows of input shown at most, whatever height a client claims


_LAST = 1 << 62  # sorts after any index: (i, _LAST) after every row that starts at i


class Window:
    """The laid out rows on the screen, from ``top`` down."""

    def __init__(self, widths: bytearray, width: int, height: int) -> None:
        self.widths = widths  # shared with the editor, edited in place
        self.width = width
        self.height = min(max(height, 1), MAX_HEIGHT)
        self.top = 0
        self.rows: list[Row] = []  # laid out: up to ``height``, or to the end of the text
        self._complete = False  # ``rows`` are laid out as far as they go (else: lay_out() extends them)
        self.changed_from: int | None = 0  # first row whose drawing may be stale (None: none)

    # ------------------------------------------------------------ laying out

    def _row(self, start: int, guess: int = 0) -> Row:
        end, taken = cells.row_end(self.widths, start, len(self.widths), self.width, guess)
        return start, end, taken

    def _follows(self, row: Row) -> bool:
        """Another row follows ``row``: more text, or the cursor's empty
        row after a full last one."""
        start, end, taken = row
        return end < len(self.widths) or (taken >= self.width and start < end)

    def _extend(self, rows: list[Row], top: int, count: int) -> None:
        """Lay ``rows`` (wrapped from ``top``) out to ``count`` rows or the end."""
        if not rows:
            rows.append(self._row(top))
        widths, width, row_end = self.widths, self.width, cells.row_end
        n = len(widths)
        start, end, taken = rows[-1]
        while len(rows) < count and (end < n or (taken >= width and start < end)):  # another row follows
            w = widths[end] if end < n else 0
            if w:  # rows of characters all one or all two cells wide (ASCII, CJK): by arithmetic
                per = width // w
                stop = min(end + (count - len(rows)) * per, n)
                if widths.count(w, end, stop) == stop - end and (stop == n or per * w + widths[stop] > width):
                    last = end + (stop - end - 1) // per * per  # where the last of these rows starts
                    rows.extend([(a, a + per, per * w) for a in range(end, last, per)])
                    start, end, taken = last, stop, (stop - last) * w
                    rows.append((start, end, taken))
                    continue
            guess = end - start  # as many characters as the row before: right for most text
            start, (end, taken) = end, row_end(widths, end, n, width, guess)
            rows.append((start, end, taken))

    def lay_out(self) -> list[Row]:
        """The rows on the screen, laid out as far as needed."""
        if not self._complete:
            self._extend(self.rows, self.top, self.height)
            self._complete = True
        return self.rows

    def _show(self, top: int, rows: list[Row], cursor: int | None = None) -> tuple[int, int]:
        """Scroll: ``rows`` (laid out from ``top``) are the new window;
        returns where ``cursor`` is in it (if given, else (0, 0))."""
        del rows[self.height :]
        self.top, self.rows, self.changed_from = top, rows, 0
        self._extend(rows, top, self.height)
        self._complete = True
        if cursor is None:
            return 0, 0
        at = self.locate(cursor)
        assert at is not None, "settle() scrolls to the cursor"
        return at

    def _changed(self, row: int) -> None:
        self.changed_from = row if self.changed_from is None else min(self.changed_from, row)

    # ------------------------------------------------------------- changes

    def edited(self, index: int) -> None:
        """The widths changed from ``index`` on (an edit): rows from the one
        before it are laid out again (a narrower character may now fit at
        the end of that row); rows above it stay as they are."""
        rows, top = self.rows, self.top
        if index < top or not rows or (index == top < len(self.widths) and top and self.widths[top] == 0):
            # above the window (Ctrl-U, a recalled line), or a mark left first
            # in it: wrap from about a row before the edit, so it is in
            # sight; settle() then follows the cursor
            self.top = self._row_start_before(min(index, len(self.widths)))
            self.rows = []
            self._complete = False
            self._changed(0)
            return
        r = bisect_right(rows, (index, _LAST)) - 1
        if r > 0 and index == rows[r][0]:
            r -= 1
        del rows[r:]
        self._complete = False
        self._changed(r)

    def reset(self, width: int, height: int) -> None:
        """A new size (or prompt): everything is laid out and drawn again."""
        self.width = width
        self.height = min(max(height, 1), MAX_HEIGHT)
        top = min(self.top, len(self.widths))
        while 0 < top < len(self.widths) and self.widths[top] == 0:
            top -= 1  # onto the letter the marks sit on
        self.top = top
        self.rows = []
        self._complete = False
        self.changed_from = 0

    # -------------------------------------------------------------- cursor

    def locate(self, index: int, rows: list[Row] | None = None) -> tuple[int, int] | None:
        """(row, column) of the cursor before character ``index``, or None
        if that is not on one of ``rows`` (the window's by default)."""
        rows = self.rows if rows is None else rows
        if not rows or index < rows[0][0]:
            return None
        r = bisect_right(rows, (index, _LAST)) - 1
        start, end, taken = rows[r]
        if index < end:
            return r, sum(self.widths[start:index])
        if index == end and not self._follows(rows[r]):
            return r, taken
        return None

    def settle(self, cursor: int) -> tuple[int, int]:
        """Lay the window out, scrolled so that the cursor (before index
        ``cursor``) is on it and, once the line is longer than the window,
        no row of it is left empty. A screen's worth or two of work at most.
        Returns the cursor's (row, column) in the window."""
        height, width = self.height, self.width
        at = None
        full = False
        top, widths = self.top, self.widths
        # lay out only if the cursor may be in sight: no more cells before it than the window holds
        if self._complete or (
            top <= cursor
            and cursor - top + widths.count(2, top, cursor) - widths.count(0, top, cursor) <= height * width
        ):
            rows = self.lay_out()
            at = self.locate(cursor)
            full = len(rows) >= height
            if at is not None and (self.top == 0 or full):
                return at
        if self.top and cursor <= height * width:  # perhaps the line's start is in sight: wrap from it
            fresh: list[Row] = []
            self._extend(fresh, 0, height)
            if self.locate(cursor, fresh) is not None:
                return self._show(0, fresh, cursor)
        if cursor < self.top:  # moved above the window: the cursor's row is its first
            return self._show(self._row_start_before(cursor), [], cursor)
        if at is None and full and cursor - self.rows[-1][1] <= height * width // 2:
            # moved a little below: follow the rows as they are wrapped
            more = list(self.rows)
            self._extend(more, self.top, 2 * height)
            below = self.locate(cursor, more)
            if below is not None:
                first = below[0] - height + 1
                return self._show(more[first][0], more[first:], cursor)
        # far below (End, a recalled line): the cursor's row is the last; or
        # in sight with rows left empty: bring the end up to the last row
        return self._show_above(cursor if at is None else len(self.widths), cursor)

    def _row_start_before(self, index: int) -> int:
        """A character index a row or less before ``index``, not on a
        combining mark: wrapped from there, ``index`` is on the first row."""
        top = cells.back_within(self.widths, index, self.width - 2)
        return self._base(top, index)

    def _base(self, top: int, limit: int) -> int:
        """``top``, moved past combining marks (whose letter is above it)."""
        widths = self.widths
        while top < limit and widths[top] == 0:
            top += 1
        return top

    def _show_above(self, target: int, cursor: int) -> tuple[int, int]:
        """Scroll so that index ``target`` is on the window's last row (the
        cursor, or the end of the text) and the cursor still in sight."""
        height = self.height
        # the rows above full, the target's about half: typing on at the end
        # does not fill that row (and scroll the window) at once
        budget = (height - 1) * self.width + self.width // 2
        top = self._base(cells.back_within(self.widths, target, budget), target)
        rows: list[Row] = []
        # [top, target] takes less than height * width cells: as many rows, and
        # one more for each cell left empty by a wide character at a row's end
        self._extend(rows, top, height + height // max(self.width - 1, 1) + 2)
        at = self.locate(target, rows)
        first = 0 if at is None else max(at[0] - height + 1, 0)
        self._show(rows[first][0], rows[first:])
        at = self.locate(cursor)
        if at is None:  # cannot happen with a sane width; keep the cursor in sight anyway
            return self._show(self._row_start_before(cursor), [], cursor)
        return at
