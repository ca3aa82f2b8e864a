"""A line editor wired to a pyte screen: the input line as a person sees it.

Shared by the editor's tests (test_editor.py, test_editor_cost.py,
test_editor_window.py, test_limits.py), so no test module imports another.
"""

from __future__ import annotations

import pyte
import pytest
from wcwidth import wcwidth

from sshchat.config import Config
from sshchat.term import cells
from sshchat.term.editor import LineEditor


class Screen:
    """An editor wired to a pyte screen of the given size."""

    def __init__(self, cols: int = 40, rows: int = 10, prompt: str = "[alice] ", height: int | None = None) -> None:
        """``height``: the rows the editor is told the terminal has (the
        screen's by default)."""
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.editor = LineEditor.for_messages(cols, Config().max_message_chars, height or rows)
        self.editor.set_prompt(prompt, f"\x1b[1m{prompt}\x1b[0m")
        self.stream.feed(self.editor.draw())

    def type(self, keys: str):
        result = self.editor.feed(keys)
        self.stream.feed(result.echo)
        return result

    def message(self, text: str) -> None:
        self.stream.feed(self.editor.above(text))

    def resize(self, cols: int, rows: int | None = None) -> None:
        """A terminal that cuts lines (as xterm does), now ``cols`` wide and ``rows`` tall."""
        self.screen.resize(rows or self.screen.lines, cols)
        self.stream.feed(self.editor.resize(cols, rows))

    def rewrap(self, cols: int) -> None:
        """Resize as tmux, VTE, kitty and most terminals do: every line is
        rewrapped at the new width on its own (lines ended by CRLF are never
        joined; a wide character that does not fit moves to the next row
        whole), and the cursor stays with its character, or on the line's
        last row when it is at or past the end (as tmux places it)."""
        y, x = self.cursor
        rows: list[str] = []
        at = (0, 0)
        for i, line in enumerate(self.lines):
            pieces, cells, col = [""], 0, 0
            cursor_at = None
            for ch in line:
                w = max(wcwidth(ch), 0)
                if i == y and cursor_at is None and cells >= x:
                    cursor_at = (len(pieces) - 1 + (col + w > cols and w > 0), 0 if col + w > cols else col)
                if w and col + w > cols:
                    pieces.append("")
                    col = 0
                pieces[-1] += ch
                col += w
                cells += w
            if i == y:
                if cursor_at is None:  # at or past the end: the last row
                    cursor_at = (len(pieces) - 1, min(col, cols - 1))
                at = (len(rows) + cursor_at[0], cursor_at[1])
            rows.extend(pieces)
        while len(rows) > self.screen.lines and rows[-1] == "" and len(rows) - 1 > at[0]:
            rows.pop()  # blank rows below the cursor go before any scroll off the top
        drop = max(0, len(rows) - self.screen.lines)
        self.screen.resize(self.screen.lines, cols)
        self.screen.reset()
        for i, row in enumerate(rows[drop:]):
            self.stream.feed(f"\x1b[{i + 1};1H{row}")
        self.stream.feed(f"\x1b[{at[0] - drop + 1};{at[1] + 1}H")
        self.stream.feed(self.editor.resize(cols))

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.y, self.screen.cursor.x

    def char_at_cursor(self) -> str:
        y, x = self.cursor
        return self.screen.buffer[y][x].data


class Counting:
    """Counts the characters the editor measures (``cells.char_width`` calls)
    while installed: a key's layout work, which must not grow with the line."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = cells.char_width

        def counting(ch: str) -> int:
            self.calls += 1
            return real(ch)

        monkeypatch.setattr(cells, "char_width", counting)
