"""Tab completion as a cycle: each Tab puts the next candidate in place.

The candidates are asked for once, on the first Tab, and kept until any
other key; so repeated Tabs step through them rather than completing the
completion.
"""

from __future__ import annotations

from collections.abc import Callable

Completer = Callable[[str], tuple[int, list[str]]]  # text before the cursor -> (start of the word, candidates)


class TabCycle:
    """Where a run of Tabs has got to among the candidates."""

    def __init__(self) -> None:
        self._state: tuple[int, list[str], int] | None = None  # start, candidates, index

    def stop(self) -> None:
        """A key other than Tab: the next Tab asks afresh."""
        self._state = None

    def next(self, completer: Completer | None, before: str) -> tuple[int, str] | None:
        """(start of the word, the candidate to put there), or None if there is none."""
        if self._state is None:
            if completer is None:
                return None
            start, candidates = completer(before)
            if not candidates:
                return None
            self._state = (start, candidates, -1)
        start, candidates, index = self._state
        index = (index + 1) % len(candidates)
        self._state = (start, candidates, index)
        return start, candidates[index]
