"""The lines a person sent, for Up and Down to bring back.

Kept apart from the editor: it knows nothing of the screen, only a list of
sent lines, where Up/Down has got to in it, and the half-typed line (the
draft) that Down past the newest line gives back.
"""

from __future__ import annotations

HISTORY_LINES = 100  # sent lines that Up brings back


class InputHistory:
    """Sent lines, newest last, and a position in them while browsing."""

    def __init__(self, limit: int = HISTORY_LINES) -> None:
        self._lines: list[str] = []
        self._limit = limit
        self._index: int | None = None  # None: not browsing, on the draft
        self._draft: list[str] = []

    def add(self, text: str) -> None:
        """Remember a sent line (not twice in a row) and stop browsing."""
        if not self._lines or self._lines[-1] != text:
            self._lines.append(text)
            del self._lines[: -self._limit]
        self._index = None

    def reset(self) -> None:
        """Stop browsing (the line was cleared): Down brings back nothing."""
        self._index = None

    def move(self, step: int, buf: list[str]) -> list[str] | None:
        """The line ``step`` (-1 Up, +1 Down) from where browsing is, given
        the line now being edited; None when there is nowhere to go."""
        if self._index is None:
            if step > 0 or not self._lines:
                return None
            self._draft = list(buf)
            index = len(self._lines) - 1
        else:
            index = self._index + step
            if index < 0:
                return None
        if index >= len(self._lines):
            self._index = None
            return list(self._draft)
        self._index = index
        return list(self._lines[index])
