"""One event-loop callback per turn flushes every session with output due.

Scheduling a callback per session per turn costs a Handle and a trip through
the loop for each of hundreds of sessions; one shared callback that walks a
list does the same work for a fraction of that. Batching is unchanged: what
a session queued during the turn goes out in its one write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from sshchat.chat.logged import event


class Flushable(Protocol):
    def flush(self) -> None: ...

    def close(self, reason: str | None) -> None: ...


class Flusher:
    """Sessions that have output due, flushed together at the next turn."""

    def __init__(self) -> None:
        self._due: list[Flushable] = []
        self._scheduled = False
        # Told after each turn's flushes (--metrics: SessionStats.settle times the turn's writes)
        self.after_turn: Callable[[], None] | None = None

    def mark(self, session: Flushable) -> None:
        """``session`` has output queued (call once until it is flushed)."""
        self._due.append(session)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        due, self._due = self._due, []
        for session in due:
            try:
                session.flush()
            except Exception:  # one session's failure must not cost the others their output
                event(logging.ERROR, "session_error", "error flushing a session; ending it", exc_info=True)
                try:  # a session that cannot show anything is no use to its person
                    session.close("internal error; sorry")
                except Exception:
                    event(logging.ERROR, "session_error", "error ending a session that failed to flush", exc_info=True)
        if self.after_turn is not None:
            self.after_turn()
