"""The input line on the terminal: what is drawn, and where the cursor is.

The input area is drawn with our own hard line breaks rather than the
terminal's automatic wrap, so where the cursor ends up never depends on how a
terminal treats the last column or a wide character that does not fit there.
Knowing which row of the area the cursor is on lets ``erase`` clear the whole
area before anything is printed above it, and ``draw`` put it back, with the
half-typed text and the cursor position intact.

Only the rows of the window (window.py) are drawn: at most the terminal's
height less one row, so the newest chat line stays in sight, and an edit
redraws from its row down to the window's last, never the whole line. We
speak only the ANSI subset every common terminal shares: CR, LF, cursor up,
down and forward (CSI A, B, C) and erase to end of screen (CSI J).
"""

from __future__ import annotations

from sshchat.term.cells import rewrapped_row
from sshchat.term.input_line import InputLine
from sshchat.term.motion import move, place
from sshchat.term.window import Row, Window

ERASE_DOWN = "\x1b[J"
DEFAULT_HEIGHT = 24  # a terminal that does not say how tall it is


def input_rows(height: int | None) -> int:
    """Rows the input may take on a terminal ``height`` rows tall: all but
    one, so the newest line of chat stays in sight."""
    return max((height or DEFAULT_HEIGHT) - 1, 1)


class InputArea:
    """The drawn rows of an ``InputLine``, and the terminal cursor among them."""

    def __init__(self, line: InputLine, width: int, height: int | None) -> None:
        self.line = line
        self.width = width
        self.height = height
        self.window = Window(line.widths, width, input_rows(height))
        self.styled_prompt = ""
        self.drawn = False
        # Where the terminal cursor is, relative to the drawn area's first row.
        self.row = 0
        self.col = 0
        self.end_col = 0  # column after the last drawn character

    # ------------------------------------------------------------ drawing

    def _texts(self, rows: list[Row], first: int) -> list[str]:
        """The text of ``rows[first:]``, the prompt styled if all of it is there."""
        full = self.line.full
        texts = [full[a:b] for a, b, _ in rows[first:]]
        prompt = self.line.prompt
        if first == 0 and self.window.top == 0 and rows[0][1] >= prompt:
            texts[0] = self.styled_prompt + texts[0][prompt:]
        return texts

    def _finish(self, rows: list[Row], at: tuple[int, int]) -> str:
        """Put the cursor at ``at`` after drawing down to the last of ``rows``."""
        end_col = rows[-1][2]
        out = place(len(rows), *at, end_col)
        self.row, self.col = at
        self.end_col = end_col
        self.window.changed_from = None
        return out

    def draw(self) -> str:
        """Draw the window from the start of an empty row."""
        at = self.window.settle(self.line.cursor)
        rows = self.window.rows
        out = "\r\n".join(self._texts(rows, 0)) + self._finish(rows, at)
        self.drawn = True
        return out

    def erase(self) -> str:
        """Move to the start of the input area and clear it (and below)."""
        if not self.drawn:
            return ""
        self.drawn = False
        up = f"\x1b[{self.row}A" if self.row else ""
        return f"\r{up}{ERASE_DOWN}"

    def update(self) -> str:
        """After keys: the least that brings the drawn area up to date (a
        cursor move, or the rows from the first changed one down)."""
        window = self.window
        at = window.settle(self.line.cursor)
        if window.changed_from is None:
            out = move(self.row, self.col, *at)
            self.row, self.col = at
            return out
        first = min(window.changed_from, self.row)
        rows = window.rows
        up = self.row - first
        out = "\r" + (f"\x1b[{up}A" if up else "") + ERASE_DOWN + "\r\n".join(self._texts(rows, first))
        return out + self._finish(rows, at)

    def appended(self, text: str, widths: bytes) -> bool:
        """``text`` was just added at the end of the line. If the terminal
        cursor is at the end of the last drawn row and it fits there, the
        layout is brought up to date and the caller echoes it as it is."""
        window, line = self.window, self.line
        rows = window.rows
        taken = sum(widths)
        if not (self.drawn and window.changed_from is None and rows and line.pos == len(line)):
            return False
        start, end, cells = rows[-1]
        if not (end == len(line.full) - len(text) and self.row == len(rows) - 1 and self.col == cells == self.end_col):
            return False
        if not (taken and cells + taken < self.width):  # a full row puts the cursor on the next: redraw
            return False
        rows[-1] = (start, len(line.full), cells + taken)
        self.col += taken
        self.end_col += taken
        return True

    def resize(self, width: int, height: int | None) -> str:
        """Take a new terminal size; returns the redraw.

        Most terminals (tmux, VTE, kitty, iTerm2, Windows Terminal,
        Alacritty) rewrap their lines when the window narrows: the input's
        rows, drawn at the old width, now take more rows, and the cursor is
        further below the input's start than the rows we drew. Going back up
        only those would leave the top of the old input on the screen as a
        stale copy. Each row we draw is a line of its own (we end rows with
        CRLF), so each is rewrapped alone, and none are joined when the
        window widens. (A terminal that cuts lines instead, like xterm, loses
        as many rows of chat above the input from view; they stay in
        /history.)
        """
        if self.drawn and width < self.width:
            rows = self.window.rows
            full = self.line.full
            at = self.line.cursor - rows[self.row][0]
            self.row = rewrapped_row([full[a:b] for a, b, _ in rows], self.row, at, width)
        out = self.erase()
        self.width = width
        self.height = height if height else self.height
        self.window.reset(width, input_rows(self.height))
        return out

    def reset(self) -> None:
        """Everything is laid out again (a new prompt)."""
        self.window.reset(self.width, input_rows(self.height))
