"""The text being typed: prompt + text as one string, and each character's width.

Kept apart from the keys (editor.py) and the screen (input_area.py): this is
the line as data. Every character's width (its cells) is measured once, when
it is typed, and kept in a ``bytearray`` next to the text, so laying out a
row, finding the column of the cursor or stepping over combining marks never
measures a character again: they are C-level sums and scans over a row's
worth of bytes (see cells.row_end), where a Python loop over the characters
of a 2048-character line cost ~400 us a key (issue 14).

Indexes called ``at`` or ``index`` count from the start of the prompt (the
window lays prompt and text out together); ``pos`` counts from the start of
the text.
"""

from __future__ import annotations

from collections.abc import Iterable

from sshchat.chat.sanitize import MAX_COMBINING, is_printable
from sshchat.term import cells
from sshchat.term.history import Line


def widths_of(text: str) -> bytes:
    """The cells each character of ``text`` takes (for a prompt or a completion)."""
    return bytes(cells.char_width(ch) for ch in text)


class InputLine:
    """Prompt + text, the widths of their characters, and the cursor."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.full = ""  # prompt + text
        self.widths = bytearray()  # one byte per character of ``full``: edited in place, the window reads it
        self.prompt = 0  # characters of ``full`` that are the prompt
        self.pos = 0  # the cursor, in the text

    @property
    def text(self) -> str:
        return self.full[self.prompt :]

    @property
    def cursor(self) -> int:
        """The cursor as an index of prompt + text."""
        return self.prompt + self.pos

    def __len__(self) -> int:
        """Characters of text (the prompt not counted)."""
        return len(self.full) - self.prompt

    def line(self) -> Line:
        """The text with its widths, as history keeps it."""
        return self.text, bytes(self.widths[self.prompt :])

    def set_prompt(self, plain: str) -> None:
        self.full = plain + self.text
        self.widths[: self.prompt] = widths_of(plain)
        self.prompt = len(plain)

    def replace(self, start: int, end: int, text: str, widths: bytes | bytearray) -> int:
        """Put ``text`` in place of text[start:end]; the cursor moves as the
        text under it does. Returns the index (of prompt + text) changed from."""
        at, stop = self.prompt + start, self.prompt + end
        self.full = self.full[:at] + text + self.full[stop:]
        self.widths[at:stop] = widths
        if self.pos >= end:
            self.pos += len(text) - (end - start)
        elif self.pos > start:
            self.pos = start
        return at

    def set(self, line: Line) -> int:
        """Replace the whole text, the cursor at its end (a recalled line)."""
        at = self.replace(0, len(self), *line)
        self.pos = len(self)
        return at

    def insert(self, chars: Iterable[str]) -> tuple[str, bytes]:
        """Insert at the cursor what may be typed of ``chars``: printable,
        up to ``max_chars`` in all, and as messages are cleaned, a few
        combining marks per character and never on nothing. Returns what was
        inserted, with its widths: one splice for a whole paste chunk, so a
        chunk costs its own length, not a copy of the line per character."""
        room = self.max_chars - len(self)
        at = self.cursor
        widths = self.widths
        kept: list[str] = []
        kept_widths = bytearray()
        marks = 0  # zero-width characters at the end of ``kept``
        for ch in chars:
            if len(kept) >= room or not is_printable(ch):
                continue
            w = cells.char_width(ch)
            if w == 0:
                if len(kept) > marks:  # on a letter of this chunk: the marks after the cursor add up
                    around = marks + cells.marks_after(widths, at)
                else:
                    around = marks + cells.marks_around(widths, at, self.prompt)
                if around >= MAX_COMBINING:
                    continue
                marks += 1
            else:
                marks = 0
            kept.append(ch)
            kept_widths.append(w)
        text = "".join(kept)
        if text:
            self.replace(self.pos, self.pos, text, kept_widths)
        return text, bytes(kept_widths)

    # ------------------------------------------------------------ moving

    def left(self, at: int | None = None) -> int:
        """The text position one character left of ``at`` (the cursor)."""
        at = self.cursor if at is None else self.prompt + at
        return cells.prev_boundary(self.widths, at, self.prompt) - self.prompt

    def right(self, at: int | None = None) -> int:
        """The text position one character right of ``at`` (the cursor)."""
        at = self.cursor if at is None else self.prompt + at
        return cells.next_boundary(self.widths, at) - self.prompt
