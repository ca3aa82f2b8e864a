"""The lines a person sent, for Up and Down to bring back.

Kept apart from the editor: it knows nothing of the screen, only a list of
sent lines, where Up/Down has got to in it, and the half-typed line (the
draft) that Down past the newest line gives back. Each line is kept with
its characters' widths, so bringing one back measures nothing.
"""

from __future__ import annotations

HISTORY_LINES = 100  # sent lines that Up brings back

Line = tuple[str, bytes]  # text, the cells each of its characters takes


class InputHistory:
    """Sent lines, newest last, and a position in them while browsing."""

    def __init__(self, limit: int = HISTORY_LINES) -> None:
        self._lines: list[Line] = []
        self._limit = limit
        self._index: int | None = None  # None: not browsing, on the draft
        self._draft: Line = ("", b"")

    def add(self, line: Line) -> None:
        """Remember a sent line (not twice in a row) and stop browsing."""
        if not self._lines or self._lines[-1][0] != line[0]:
            self._lines.append(line)
            del self._lines[: -self._limit]
        self._index = None

    def reset(self) -> None:
        """Stop browsing (the line was cleared): Down brings back nothing."""
        self._index = None

    def move(self, step: int, current: Line) -> Line | None:
        """The line ``step`` (-1 Up, +1 Down) from where browsing is, given
        the line now being edited; None when there is nowhere to go."""
        if self._index is None:
            if step > 0 or not self._lines:
                return None
            self._draft = current
            index = len(self._lines) - 1
        else:
            index = self._index + step
            if index < 0:
                return None
        if index >= len(self._lines):
            self._index = None
            return self._draft
        self._index = index
        return self._lines[index]
