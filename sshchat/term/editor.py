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
from dataclasses import dataclass, field

from sshchat.chat.sanitize import MAX_COMBINING, is_printable
from sshchat.term import cells
from sshchat.term.cells import next_boundary, prev_boundary, rewrapped_row, word_end, word_start
from sshchat.term.completion import Completer, TabCycle
from sshchat.term.history import InputHistory
from sshchat.term.keys import KeyDecoder
from sshchat.term.motion import move, place

ERASE_DOWN = "\x1b[J"
PASTE_ROOM = 2  # the line holds this many times what Enter may send: room to paste, then trim


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
        self._history = InputHistory()
        # Where the terminal cursor is, relative to the drawn input area.
        self._cursor_row = 0
        self._cursor_col = 0
        self._end_col = 0  # column after the last drawn character
        self._drawn = False
        # The layout of prompt + text, kept between keys: where each row
        # starts, the column after the last character, and the first
        # character (of prompt + text) changed since (None: none).
        self._full = ""
        self._starts: list[int] | None = None
        self._end = 0
        self._dirty: int | None = None
        # draw() is called for every batch of incoming messages, and the
        # line rarely changed in between: keep the last drawing, keyed by a
        # counter that every change of text, cursor, prompt or width bumps.
        self._version = 0
        self._drawing: tuple[int, str, int, int, int] | None = None  # version, text, row, col, end col
        self.completer: Completer | None = None  # Tab: see completion.py
        self._tab = TabCycle()

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
        self._starts = None
        return self.redraw() if self._drawn else ""

    def _relayout(self) -> None:
        """Bring the cached row starts up to date with the text.

        Only rows from the one before the first change are laid out again
        (a narrower character may now fit at the end of the row before it),
        so a key at the end of a long line measures a row or two, not the
        line. Plain ASCII is cut by arithmetic, with no wcwidth call.
        """
        width = self.width
        full = self._prompt_plain + self.text
        self._full = full
        dirty, self._dirty = self._dirty, None
        if full.isascii():
            self._starts = list(range(0, len(full), width)) or [0]
            self._end = len(full) - self._starts[-1]
            return
        starts = self._starts
        if starts is None or dirty is None or dirty <= 0:
            starts, first = [0], 0
        else:
            r = max(bisect_right(starts, dirty) - 2, 0)
            first = starts[r]
            del starts[r + 1 :]
        self._starts, self._end = starts, cells.extend_starts(full, first, width, starts)

    def _layout_valid(self) -> bool:
        return self._starts is not None and self._dirty is None

    def _cursor(self) -> tuple[int, int]:
        """(row, col) of the cursor in the laid out area: a row's worth of work."""
        if not self._layout_valid():
            self._relayout()
        starts, full = self._starts, self._full
        assert starts is not None
        cursor = len(self._prompt_plain) + self.pos
        if cursor >= len(full):
            if self._end >= self.width:
                return len(starts), 0
            return len(starts) - 1, self._end
        row = bisect_right(starts, cursor) - 1
        return row, cells.cells_of(full[starts[row] : cursor])

    def _rows(self, first: int = 0, styled: bool = True) -> tuple[list[str], int]:
        """Rows ``first``.. of the area, and the column after the last character."""
        if not self._layout_valid():
            self._relayout()
        starts, full = self._starts, self._full
        assert starts is not None
        ends = [*starts[first + 1 :], len(full)]
        rows = [full[a:b] for a, b in zip(starts[first:], ends, strict=True)]
        end = self._end
        if end >= self.width:
            rows.append("")
            end = 0
        if styled and first == 0 and rows[0].startswith(self._prompt_plain):
            rows[0] = self._prompt_styled + rows[0][len(self._prompt_plain) :]
        return rows, end

    def draw(self) -> str:
        """Draw prompt and input from the start of an empty row."""
        cached = self._drawing
        if cached is not None and cached[0] == self._version:
            _, out, self._cursor_row, self._cursor_col, self._end_col = cached
            self._drawn = True
            return out
        rows, end_col = self._rows()
        row, col = self._cursor()
        out = "\r\n".join(rows) + place(len(rows), row, col, end_col)
        self._cursor_row, self._cursor_col = row, col
        self._end_col = end_col
        self._drawn = True
        self._drawing = (self._version, out, row, col, end_col)
        return out

    def _redraw_tail(self) -> str:
        """Redraw from the first row a change touched; earlier rows stay."""
        dirty = self._dirty
        starts = self._starts
        first = 0
        if dirty is not None and starts is not None:
            first = max(bisect_right(starts, dirty) - 2, 0)
        first = min(first, self._cursor_row)
        self._relayout()
        rows, end_col = self._rows(first)
        row, col = self._cursor()
        up = self._cursor_row - first
        out = "\r" + (f"\x1b[{up}A" if up else "") + ERASE_DOWN + "\r\n".join(rows)
        out += place(first + len(rows), row, col, end_col)
        self._cursor_row, self._cursor_col = row, col
        self._end_col = end_col
        return out

    def _move_cursor(self) -> str:
        """The text did not change, only the cursor: move it, print nothing."""
        row, col = self._cursor()
        out = move(self._cursor_row, self._cursor_col, row, col)
        self._cursor_row, self._cursor_col = row, col
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
            rows, _ = self._rows(styled=False)
            row, _ = self._cursor()
            # the cursor's character within its row (rows are consecutive slices of prompt + text)
            at = len(self._prompt_plain) + self.pos - sum(len(r) for r in rows[:row])
            self._cursor_row = rewrapped_row(rows, row, at, width)
        out = self.erase()
        self.width = width
        self._version += 1
        self._starts = None
        return out + self.draw()

    # ------------------------------------------------------------------ input

    def feed(self, data: str) -> EditResult:
        """Apply typed (or pasted) input; return what to echo and what was sent.

        What is echoed is the least that brings the screen up to date:
        characters typed at the end are echoed as they are, a cursor move
        is a cursor move, an edit redraws from the row before the first
        character it changed; only a cleared screen, a new prompt or a new
        width draw the whole input area again.
        """
        result = EditResult()
        self._version += 1  # whatever the keys do, the next draw starts afresh
        full_redraw = False
        for key in self._decoder.feed(data):
            if key != "tab":
                self._tab.stop()
            if len(key) == 1:
                if self._paste and not is_printable(key):
                    continue
                at = self.pos
                if self._insert(key):
                    if not full_redraw and self._appends_in_place(key):
                        result.echo += key
                    else:
                        self._touch(at)
                continue
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
            if not self._drawn:
                full_redraw = True
        if full_redraw or not self._drawn or self._starts is None:
            result.echo += self.erase() + self.draw()
        elif self._dirty is not None:
            result.echo += self._redraw_tail()
        else:
            result.echo += self._move_cursor()
        return result

    def _appends_in_place(self, ch: str) -> bool:
        """``ch`` was just added at the end and fits on the row the terminal
        cursor is at the end of: update the layout, echo it as it is."""
        w = cells.char_width(ch)
        starts = self._starts
        if not (w and self._drawn and starts is not None and self._dirty is None and self.pos == len(self.buf)):
            return False
        # the cursor on the empty row after a full one: ``ch`` starts a row
        on_new_row = self._end >= self.width and self._cursor_row == len(starts) and self._cursor_col == 0
        on_last_row = self._cursor_row == len(starts) - 1 and self._cursor_col == self._end == self._end_col
        if not ((on_new_row or on_last_row) and self._end_col + w < self.width):
            return False
        if on_new_row:
            starts.append(len(self._full))
            self._end = 0
        self._full += ch
        self._end += w
        self._end_col += w
        self._cursor_col += w
        return True

    def _touch(self, index: int) -> None:
        """The text changed from buffer index ``index`` on."""
        at = len(self._prompt_plain) + index
        self._dirty = at if self._dirty is None else min(self._dirty, at)

    def _complete(self) -> None:
        """Replace the word before the cursor with the next candidate."""
        found = self._tab.next(self.completer, "".join(self.buf[: self.pos]))
        if found is not None:
            start, word = found
            self._touch(start)
            self.buf[start : self.pos] = word
            self.pos = start + len(word)

    def _insert(self, ch: str) -> bool:
        if not is_printable(ch) or len(self.buf) >= self.max_chars:
            return False
        if cells.char_width(ch) == 0 and cells.marks_around(self.buf, self.pos) >= MAX_COMBINING:
            return False  # as messages are cleaned: a few marks per character, and never on nothing
        self.buf.insert(self.pos, ch)
        self.pos += 1
        return True

    def _enter(self, result: EditResult) -> None:
        text = self.text
        if not text.strip():
            self.buf, self.pos = [], 0
            self._touch(0)
            return
        if len(text) > self.max_submit:
            result.errors.append(
                f"message too long ({len(text)} characters, at most "
                f"{self.max_submit}): shorten it and press Enter again"
            )
            return
        result.lines.append(text)
        self._history.add(text)
        self.buf, self.pos = [], 0
        self._touch(0)

    def _edit(self, key: str) -> None:
        """Apply one editing key to the buffer and cursor."""
        buf, pos = self.buf, self.pos
        if key == "left":
            self.pos = prev_boundary(buf, pos)
        elif key == "right":
            self.pos = next_boundary(buf, pos)
        elif key in ("home", "ctrl-a"):
            self.pos = 0
        elif key in ("end", "ctrl-e"):
            self.pos = len(buf)
        elif key == "backspace":
            self._delete(prev_boundary(buf, pos), pos)
        elif key in ("delete", "ctrl-d"):
            self._delete(pos, next_boundary(buf, pos))
        elif key == "ctrl-c":
            self._touch(0)
            self.buf, self.pos = [], 0
            self._history.reset()
        elif key == "ctrl-u":
            self._delete(0, pos)
        elif key == "ctrl-k":
            self._delete(pos, len(buf))
        elif key in ("ctrl-w", "word-backspace"):
            self._delete(word_start(buf, pos), pos)
        elif key == "word-delete":
            self._delete(pos, word_end(buf, pos))
        elif key == "word-left":
            self.pos = word_start(buf, pos)
        elif key == "word-right":
            self.pos = word_end(buf, pos)
        elif key == "up":
            self._history_move(-1)
        elif key == "down":
            self._history_move(+1)

    def _delete(self, start: int, end: int) -> None:
        """Delete buf[start:end] (if anything) and leave the cursor at ``start``
        if it was inside or after it."""
        if start >= end:
            return
        self._touch(start)
        del self.buf[start:end]
        if self.pos > start:
            self.pos = max(start, self.pos - (end - start))

    def _history_move(self, step: int) -> None:
        line = self._history.move(step, self.buf)
        if line is None:
            return
        self._touch(0)
        self.buf = line
        self.pos = len(line)
