"""Input of all connections takes turns, a bounded amount per event-loop turn.

A session hands its input to the chat a slice at a time (session.py), but
were each connection to run its next slice on every loop turn, a turn would
hold one slice per busy connection: 16 connections from one address sending
their worst keys made every turn ~18 ms long, and a message from anyone else
needs several turns (read, commit, flush, write) to reach a screen: 140 to
300 ms. Here the waiting slices run in the order they asked, until
``per_turn`` seconds are spent; the rest wait for the next turn, when
everything else that is ready (other people's messages) has run too. The
time budgets (input_budget.py) bound how much input work there is; this
bounds how much of it lands in one turn.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

# Seconds of input handling per event-loop turn, all connections together
# (one slice may overrun it: a slice, once started, is finished).
INPUT_PER_TURN = 0.005


class Turn:
    """A place in the queue; ``cancel()`` gives it up (the connection is gone)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback: Callable[[], None] | None = callback

    def cancel(self) -> None:
        self.callback = None


class InputTurns:
    """The queue of connections with input waiting, served ``per_turn`` seconds a loop turn."""

    def __init__(self, per_turn: float) -> None:
        self.per_turn = per_turn
        self._waiting: deque[Turn] = deque()
        self._scheduled = False

    @property
    def busy(self) -> bool:
        """Others are waiting: new input should queue behind them, not run at once."""
        return bool(self._waiting)

    def later(self, callback: Callable[[], None]) -> Turn:
        """Run ``callback`` in a coming loop turn, after those queued before it."""
        turn = Turn(callback)
        self._waiting.append(turn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._serve)
        return turn

    def _serve(self) -> None:
        """One loop turn's share: those queued before it, until ``per_turn`` is spent."""
        self._scheduled = False
        waiting = self._waiting
        deadline = time.perf_counter() + self.per_turn
        try:
            for _ in range(len(waiting)):  # one queued again now waits for the next turn
                callback = waiting.popleft().callback
                if callback is not None:
                    callback()
                    if time.perf_counter() >= deadline:
                        break
        finally:
            if waiting and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._serve)
