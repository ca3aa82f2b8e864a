"""The input line, owned by us in raw mode: keys in, echo out.

Why our own editor rather than asyncssh's: the built-in one crashes the whole
connection for terminal types outside its list (tmux-256color, screen-256color,
xterm-kitty), builds a table of printable characters for every session, and
has no prompt (see DESIGN.md).

This module turns keys into edits; the line as data is input_line.py, what
is drawn where is input_area.py (and window.py, the rows on the screen).
Every key costs a screen's worth of work at most, whatever the line's length
(issue 14): an edit lays out and redraws from its row to the bottom of the
window, a cursor move moves the cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from sshchat.term.cells import word_end, word_start
from sshchat.term.completion import Completer, TabCycle
from sshchat.term.history import InputHistory
from sshchat.term.input_area import InputArea
from sshchat.term.input_line import InputLine, widths_of
from sshchat.term.keys import KeyDecoder

PASTE_ROOM = 2  # the line holds this many times what Enter may send: room to paste, then trim
# Columns we draw at most, whatever the client claims: a window's rows are
# bounded by the height (window.py) and their length by this, so one key's
# redraw stays bounded by the screen even for a claimed 100,000-column terminal.
MAX_COLUMNS = 512


@dataclass
class EditResult:
    """What one chunk of keystrokes produced, in the order it must be used."""

    echo: str = ""  # bytes for this person's own terminal
    lines: list[str] = field(default_factory=list)  # submitted with Enter
    errors: list[str] = field(default_factory=list)  # to show this person
    leave: bool = False  # Ctrl-C / Ctrl-D on an empty line


class LineEditor:
    """An Emacs-style single-line editor with history, drawn below the chat."""

    def __init__(self, width: int, *, max_chars: int, max_submit: int, height: int | None = None) -> None:
        """``max_submit``: the longest line Enter sends; ``max_chars``: the
        longest the line may grow. Both come from the server's settings: see
        ``for_messages``. ``height``: the terminal's rows (None: unknown)."""
        self.max_submit = max_submit
        self._line = InputLine(max_chars)
        self._area = InputArea(self._line, _columns(width), height)
        self._decoder = KeyDecoder()
        self._paste = False
        self._history = InputHistory()
        # draw() is called for every batch of incoming messages, and the
        # line rarely changed in between: keep the last drawing, keyed by a
        # counter that every change of text, cursor, prompt or size bumps.
        self._version = 0
        self._drawing: tuple[int, str, int, int, int] | None = None  # version, text, row, col, end col
        self.completer: Completer | None = None  # Tab: see completion.py
        self._tab = TabCycle()

    @classmethod
    def for_messages(cls, width: int, max_message_chars: int, height: int | None = None) -> LineEditor:
        """The editor of a chat session: Enter sends up to the server's
        ``max_message_chars``, and the line holds PASTE_ROOM times that, so
        a paste a little too long can be trimmed rather than lost."""
        return cls(width, max_chars=PASTE_ROOM * max_message_chars, max_submit=max_message_chars, height=height)

    # ----------------------------------------------------------------- state

    @property
    def width(self) -> int:
        return self._area.width

    @property
    def max_chars(self) -> int:
        return self._line.max_chars

    @property
    def text(self) -> str:
        """The half-typed line."""
        return self._line.text

    @property
    def pos(self) -> int:
        """The cursor, in characters of the text."""
        return self._line.pos

    # ----------------------------------------------------------------- drawing

    def set_prompt(self, plain: str, styled: str | None = None) -> str:
        """Change the prompt; returns the redraw if the line is on screen."""
        self._line.set_prompt(plain)
        self._area.styled_prompt = styled or plain
        self._area.reset()
        self._version += 1
        return self.redraw() if self._area.drawn else ""

    def draw(self) -> str:
        """Draw prompt and input from the start of an empty row."""
        area = self._area
        cached = self._drawing
        if cached is not None and cached[0] == self._version:
            _, out, area.row, area.col, area.end_col = cached
            area.drawn = True
            return out
        out = area.draw()
        self._drawing = (self._version, out, area.row, area.col, area.end_col)
        return out

    def erase(self) -> str:
        """Move to the start of the input area and clear it (and below)."""
        return self._area.erase()

    def redraw(self) -> str:
        """Erase and draw again, e.g. after the prompt or the width changed."""
        return self.erase() + self.draw()

    def above(self, text: str) -> str:
        """Print ``text`` (lines joined by CRLF) above the input line."""
        return f"{self.erase()}{text}\r\n{self.draw()}"

    def resize(self, width: int, height: int | None = None) -> str:
        """Take a new terminal size (``height`` None: as it was); returns the
        redraw (see InputArea.resize for terminals that rewrap)."""
        out = self._area.resize(_columns(width), height)
        self._version += 1
        return out + self.draw()

    # ------------------------------------------------------------------ input

    def feed(self, data: str) -> EditResult:
        """Apply typed (or pasted) input; return what to echo and what was sent.

        What is echoed is the least that brings the screen up to date:
        characters typed at the end are echoed as they are, a cursor move
        is a cursor move, an edit redraws from the row before the first
        character it changed to the bottom of the window; only a cleared
        screen, a new prompt, a new size or a scrolled window draw the whole
        window again.
        """
        result = EditResult()
        self._version += 1  # whatever the keys do, the next draw starts afresh
        area = self._area
        full_redraw = False
        keys = self._decoder.feed(data)
        for key, run in _runs(keys):
            if key != "tab":
                self._tab.stop()
            if run is not None:  # characters: typed, or a paste's
                self._type(run, result, full_redraw)
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
                area.drawn = False
                full_redraw = True
            elif key == "tab":
                self._complete()
            elif key in ("ctrl-c", "ctrl-d") and not len(self._line):
                result.leave = True
                break
            else:
                self._edit(key)
            if not area.drawn:
                full_redraw = True
        if full_redraw or not area.drawn:
            result.echo += self.erase() + self.draw()
        else:
            result.echo += area.update()
        return result

    def _type(self, run: list[str], result: EditResult, full_redraw: bool) -> None:
        """Insert typed or pasted characters at the cursor."""
        at = self._line.cursor
        text, widths = self._line.insert(run)
        if not text:
            return
        if not full_redraw and self._area.appended(text, widths):
            result.echo += text
        else:
            self._area.window.edited(at)

    def _replace(self, start: int, end: int, text: str = "", widths: bytes = b"") -> None:
        """Replace text[start:end] (if anything changes) and lay out again from there."""
        if start >= end and not text:
            return
        self._area.window.edited(self._line.replace(start, end, text, widths))

    def _complete(self) -> None:
        """Replace the word before the cursor with the next candidate."""
        line = self._line
        found = self._tab.next(self.completer, line.text[: line.pos])
        if found is not None:
            start, word = found
            self._replace(start, line.pos, word, widths_of(word))

    def _enter(self, result: EditResult) -> None:
        line = self._line
        text = line.text
        if not text.strip():
            self._replace(0, len(line))
            return
        if len(text) > self.max_submit:
            result.errors.append(
                f"message too long ({len(text)} characters, at most "
                f"{self.max_submit}): shorten it and press Enter again"
            )
            return
        result.lines.append(text)
        self._history.add(line.line())
        self._replace(0, len(line))

    def _edit(self, key: str) -> None:
        """Apply one editing key to the text and cursor."""
        line = self._line
        pos = line.pos
        if key == "left":
            line.pos = line.left()
        elif key == "right":
            line.pos = line.right()
        elif key in ("home", "ctrl-a"):
            line.pos = 0
        elif key in ("end", "ctrl-e"):
            line.pos = len(line)
        elif key == "backspace":
            self._replace(line.left(), pos)
        elif key in ("delete", "ctrl-d"):
            self._replace(pos, line.right())
        elif key == "ctrl-c":
            self._replace(0, len(line))
            self._history.reset()
        elif key == "ctrl-u":
            self._replace(0, pos)
        elif key == "ctrl-k":
            self._replace(pos, len(line))
        elif key in ("ctrl-w", "word-backspace"):
            self._replace(word_start(line.text, pos), pos)
        elif key == "word-delete":
            self._replace(pos, word_end(line.text, pos))
        elif key == "word-left":
            line.pos = word_start(line.text, pos)
        elif key == "word-right":
            line.pos = word_end(line.text, pos)
        elif key in ("up", "down"):
            recalled = self._history.move(-1 if key == "up" else 1, line.line())
            if recalled is not None:
                self._area.window.edited(line.set(recalled))


def _runs(keys: list[str]) -> Iterator[tuple[str, list[str] | None]]:
    """The keys, with each run of single characters together: (first key,
    the run), or (key, None) for a named key. A paste arrives as one run and
    is inserted in one piece."""
    run: list[str] = []
    for key in keys:
        if len(key) == 1:
            run.append(key)
            continue
        if run:
            yield run[0], run
            run = []
        yield key, None
    if run:
        yield run[0], run


def _columns(width: int) -> int:
    """The width we draw at: what the terminal claims, within 2..MAX_COLUMNS."""
    return min(max(width, 2), MAX_COLUMNS)
