"""The input line, owned by us in raw mode.

Why our own editor rather than asyncssh's: the built-in one crashes the whole
connection for terminal types outside its list (tmux-256color, screen-256color,
xterm-kitty), builds a table of printable characters for every session, and
has no prompt (see DESIGN.md). This one speaks only the ANSI subset every
common terminal shares: CR, LF, cursor up/forward (CSI A, CSI C) and erase
to end of screen (CSI J).

The input area is drawn with our own hard line breaks rather than the
terminal's automatic wrap, so where the cursor ends up never depends on how a
terminal treats the last column or a wide character that does not fit there.
Knowing which row of the area the cursor is on lets ``erase`` clear the whole
area before anything is printed above it, and ``draw`` put it back, with the
half-typed text and the cursor position intact.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from wcwidth import wcwidth

from sshchat.chat.sanitize import is_printable
from sshchat.term.keys import KeyDecoder

ERASE_DOWN = "\x1b[J"
HISTORY_LINES = 100  # sent lines that Up brings back
PASTE_ROOM = 2  # the line holds this many times what Enter may send: room to paste, then trim


def _row_starts(text: str, width: int) -> tuple[list[int], int]:
    """Where each row of ``text`` starts when it is wrapped at ``width``
    cells, and the column after its last character. A character too wide
    for what is left of a row starts the next one (as terminals do)."""
    starts, col = [0], 0
    for k, ch in enumerate(text):
        w = char_width(ch)
        if w and col + w > width:
            starts.append(k)
            col = 0
        col += w
    return starts, col


def rewrapped(line: str, width: int, at: int | None = None) -> tuple[int, int]:
    """How a terminal that rewraps lines lays ``line`` out at ``width``:
    the rows it takes, and the row of character ``at`` in it. A cursor at
    or past the end stays on the last row (as tmux keeps it)."""
    starts, _ = _row_starts(line, width)
    if at is None or at >= len(line):
        return len(starts), len(starts) - 1
    return len(starts), bisect_right(starts, at) - 1


def char_width(ch: str) -> int:
    """Terminal cells taken by one character (0 for combining marks)."""
    return max(wcwidth(ch), 0)


@dataclass
class EditResult:
    """What one chunk of keystrokes produced, in the order it must be used."""

    echo: str = ""  # bytes for this person's own terminal
    lines: list[str] = field(default_factory=list)  # submitted with Enter
    errors: list[str] = field(default_factory=list)  # to show this person
    leave: bool = False  # Ctrl-C / Ctrl-D on an empty line


class LineEditor:
    """An Emacs-style single-line editor with history, drawn below the chat."""

    def __init__(self, width: int, *, max_chars: int, max_submit: int) -> None:
        """``max_submit``: the longest line Enter sends; ``max_chars``: the
        longest the line may grow (every key lays it out again). Both come
        from the server's settings: see ``for_messages``."""
        self.width = max(width, 2)
        self.max_chars = max_chars
        self.max_submit = max_submit
        self.buf: list[str] = []
        self.pos = 0
        self._prompt_plain = ""
        self._prompt_styled = ""
        self._decoder = KeyDecoder()
        self._paste = False
        self._history: list[str] = []
        self._hist_index: int | None = None
        self._draft: list[str] = []
        # Where the terminal cursor is, relative to the drawn input area.
        self._cursor_row = 0
        self._end_col = 0  # column after the last drawn character
        self._drawn = False
        # draw() is called for every batch of incoming messages, and the
        # line rarely changed in between: keep the last drawing, keyed by a
        # counter that every change of text, cursor, prompt or width bumps.
        self._version = 0
        self._drawing: tuple[int, str, int, int] | None = None  # version, text, row, end col
        # Tab: text before the cursor -> (start of the word, candidates).
        self.completer: Callable[[str], tuple[int, list[str]]] | None = None
        self._completing: tuple[int, list[str], int] | None = None  # start, candidates, index

    @classmethod
    def for_messages(cls, width: int, max_message_chars: int) -> LineEditor:
        """The editor of a chat session: Enter sends up to the server's
        ``max_message_chars``, and the line holds PASTE_ROOM times that, so
        a paste a little too long can be trimmed rather than lost."""
        return cls(width, max_chars=PASTE_ROOM * max_message_chars, max_submit=max_message_chars)

    # ----------------------------------------------------------------- drawing

    @property
    def text(self) -> str:
        """The half-typed line."""
        return "".join(self.buf)

    def set_prompt(self, plain: str, styled: str | None = None) -> str:
        """Change the prompt; returns the redraw if the line is on screen."""
        self._prompt_plain, self._prompt_styled = plain, styled or plain
        self._version += 1
        return self.redraw() if self._drawn else ""

    def _layout(self) -> tuple[list[str], tuple[int, int], int]:
        """Break prompt + input into rows of at most ``width`` cells.

        Returns the rows, the (row, col) of the cursor, and the column after
        the last character. Plain ASCII (the usual case) is cut by arithmetic;
        anything else is measured character by character with wcwidth.
        """
        width = self.width
        text = self._prompt_plain + self.text
        cursor = len(self._prompt_plain) + self.pos
        if text.isascii():
            rows = [text[i : i + width] for i in range(0, len(text), width)] or [""]
            if len(text) % width == 0 and text:
                rows.append("")  # a full last row: the cursor lives on the next one
            return rows, divmod(cursor, width), len(text) % width
        starts, col = _row_starts(text, width)
        rows = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
        if col >= width:
            rows.append("")
            col = 0
        if cursor >= len(text):
            return rows, (len(rows) - 1, col), col
        row = bisect_right(starts, cursor) - 1
        return rows, (row, sum(char_width(ch) for ch in text[starts[row] : cursor])), col

    def draw(self) -> str:
        """Draw prompt and input from the start of an empty row."""
        cached = self._drawing
        if cached is not None and cached[0] == self._version:
            _, out, self._cursor_row, self._end_col = cached
            self._drawn = True
            return out
        rows, (row, col), end_col = self._layout()
        plain = self._prompt_plain
        if rows[0].startswith(plain):
            rows[0] = self._prompt_styled + rows[0][len(plain) :]
        out = "\r\n".join(rows)
        up = len(rows) - 1 - row
        if up:
            out += f"\x1b[{up}A"
        if col != end_col or up:
            out += "\r" + (f"\x1b[{col}C" if col else "")
        self._cursor_row = row
        self._end_col = end_col
        self._drawn = True
        self._drawing = (self._version, out, row, end_col)
        return out

    def erase(self) -> str:
        """Move to the start of the input area and clear it (and below)."""
        if not self._drawn:
            return ""
        self._drawn = False
        up = f"\x1b[{self._cursor_row}A" if self._cursor_row else ""
        return f"\r{up}{ERASE_DOWN}"

    def redraw(self) -> str:
        """Erase and draw again, e.g. after the prompt or the width changed."""
        return self.erase() + self.draw()

    def above(self, text: str) -> str:
        """Print ``text`` (lines joined by CRLF) above the input line."""
        return f"{self.erase()}{text}\r\n{self.draw()}"

    def resize(self, width: int) -> str:
        """Take a new terminal width; returns the redraw.

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
        width = max(width, 2)
        if self._drawn and width < self.width:
            rows, (row, _), _ = self._layout()
            # the cursor's character within its row (rows are consecutive slices of prompt + text)
            at = len(self._prompt_plain) + self.pos - sum(len(r) for r in rows[:row])
            self._cursor_row = sum(rewrapped(r, width)[0] for r in rows[:row]) + rewrapped(rows[row], width, at)[1]
        out = self.erase()
        self.width = width
        self._version += 1
        return out + self.draw()

    # ------------------------------------------------------------------ input

    def feed(self, data: str) -> EditResult:
        """Apply typed (or pasted) input; return what to echo and what was sent."""
        result = EditResult()
        self._version += 1  # whatever the keys do, the next draw starts afresh
        fast = ""  # characters appended at the end that need no redraw
        full_redraw = False
        for key in self._decoder.feed(data):
            if key != "tab":
                self._completing = None
            if len(key) == 1:
                if self._paste and not is_printable(key):
                    continue
                if self._insert(key) and not full_redraw:
                    w = char_width(key)
                    if (
                        w
                        and self._drawn
                        and self.pos == len(self.buf)
                        and self._end_col + w < self.width
                    ):
                        fast += key
                        self._end_col += w
                    else:
                        full_redraw = True
                continue
            before = (len(self.buf), self.pos, self.buf)
            if key == "paste-start":
                self._paste = True
            elif key == "paste-end":
                self._paste = False
            elif key == "enter":
                self._enter(result)
            elif self._paste:
                continue  # editing keys inside a paste are pasted junk
            elif key == "ctrl-l":
                result.echo += "\x1b[H\x1b[2J"
                self._drawn = False
                full_redraw = True
            elif key == "tab":
                self._complete()
            elif key in ("ctrl-c", "ctrl-d") and not self.buf:
                result.leave = True
                break
            else:
                self._edit(key)
            if (len(self.buf), self.pos, self.buf) != before or not self._drawn:
                full_redraw = True
        if full_redraw:
            result.echo += self.erase() + self.draw()
        else:
            result.echo += fast
        return result

    def _complete(self) -> None:
        """Replace the word before the cursor with the next candidate."""
        if self._completing is None:
            if self.completer is None:
                return
            start, candidates = self.completer("".join(self.buf[: self.pos]))
            if not candidates:
                return
            self._completing = (start, candidates, -1)
        start, candidates, index = self._completing
        index = (index + 1) % len(candidates)
        self._completing = (start, candidates, index)
        word = list(candidates[index])
        self.buf[start : self.pos] = word
        self.pos = start + len(word)

    def _insert(self, ch: str) -> bool:
        if not is_printable(ch) or len(self.buf) >= self.max_chars:
            return False
        if char_width(ch) == 0 and self.pos == 0:
            return False  # a combining mark needs a character to sit on
        self.buf.insert(self.pos, ch)
        self.pos += 1
        return True

    def _enter(self, result: EditResult) -> None:
        text = self.text
        if not text.strip():
            self.buf, self.pos = [], 0
            return
        if len(text) > self.max_submit:
            result.errors.append(
                f"message too long ({len(text)} characters, at most "
                f"{self.max_submit}): shorten it and press Enter again"
            )
            return
        result.lines.append(text)
        if not self._history or self._history[-1] != text:
            self._history.append(text)
            del self._history[:-HISTORY_LINES]
        self._hist_index = None
        self.buf, self.pos = [], 0

    def _edit(self, key: str) -> None:
        """Apply one editing key to the buffer and cursor."""
        buf, pos = self.buf, self.pos
        if key == "left":
            self.pos = self._prev_boundary(pos)
        elif key == "right":
            self.pos = self._next_boundary(pos)
        elif key in ("home", "ctrl-a"):
            self.pos = 0
        elif key in ("end", "ctrl-e"):
            self.pos = len(buf)
        elif key == "backspace":
            start = self._prev_boundary(pos)
            del buf[start:pos]
            self.pos = start
        elif key in ("delete", "ctrl-d"):
            del buf[pos : self._next_boundary(pos)]
        elif key == "ctrl-c":
            self.buf, self.pos = [], 0
            self._hist_index = None
        elif key == "ctrl-u":
            del buf[:pos]
            self.pos = 0
        elif key == "ctrl-k":
            del buf[pos:]
        elif key in ("ctrl-w", "word-backspace"):
            start = self._word_start(pos)
            del buf[start:pos]
            self.pos = start
        elif key == "word-delete":
            del buf[pos : self._word_end(pos)]
        elif key == "word-left":
            self.pos = self._word_start(pos)
        elif key == "word-right":
            self.pos = self._word_end(pos)
        elif key == "up":
            self._history_move(-1)
        elif key == "down":
            self._history_move(+1)

    def _history_move(self, step: int) -> None:
        if self._hist_index is None:
            if step > 0 or not self._history:
                return
            self._draft = list(self.buf)
            index = len(self._history) - 1
        else:
            index = self._hist_index + step
            if index < 0:
                return
        if index >= len(self._history):
            self._hist_index = None
            self.buf = list(self._draft)
        else:
            self._hist_index = index
            self.buf = list(self._history[index])
        self.pos = len(self.buf)

    def _prev_boundary(self, pos: int) -> int:
        """One character left, stepping over combining marks as one."""
        pos = max(pos - 1, 0)
        while pos > 0 and char_width(self.buf[pos]) == 0:
            pos -= 1
        return pos

    def _next_boundary(self, pos: int) -> int:
        n = len(self.buf)
        pos = min(pos + 1, n)
        while pos < n and char_width(self.buf[pos]) == 0:
            pos += 1
        return pos

    def _word_start(self, pos: int) -> int:
        while pos > 0 and self.buf[pos - 1].isspace():
            pos -= 1
        while pos > 0 and not self.buf[pos - 1].isspace():
            pos -= 1
        return pos

    def _word_end(self, pos: int) -> int:
        n = len(self.buf)
        while pos < n and self.buf[pos].isspace():
            pos += 1
        while pos < n and not self.buf[pos].isspace():
            pos += 1
        return pos
