"""Input of all connections takes turns, a bounded amount per event-loop turn.

A session hands its input to the chat a slice at a time (session.py), but
were each connection to run its next slice on every loop turn, a turn would
hold one slice per busy connection: 16 connections from one address sending
their worst keys made every turn ~18 ms long, and a message from anyone else
needs several turns (read, commit, flush, write) to reach a screen: 140 to
300 ms. Here the waiting slices run in the order they asked, until
``per_turn`` seconds are spent; the rest wait as long again, while
everything else that is ready (other people's messages, the store's thread,
which needs the GIL to commit them) runs: input gets at most half the loop
while there is a queue, even while every sender is within its budget. The
time budgets (input_budget.py) bound how much input work there is; this
bounds how much of it lands in one turn. Input from a connection that has
not been spending server time (its budgets are full) goes to the head of
the queue: a person's line does not wait behind every flooder's slice.
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
        self._serving = False  # a turn's callback runs now

    @property
    def busy(self) -> bool:
        """Others are waiting: new input should queue behind them, not run at
        once. Not while a turn is served: what arrives then is that turn's
        (the session's data from the packets bounded_receive handles in its
        turn), and queueing it again would cost a second place in the queue,
        a pause and a resume of the channel, for every such packet."""
        return bool(self._waiting) and not self._serving

    def later(self, callback: Callable[[], None], first: bool = False) -> Turn:
        """Run ``callback`` in a coming loop turn, after those queued before
        it; or ``first``, before them (input from a connection that has not
        been using server time: one line typed by a person should not wait
        behind every slice of those who flood)."""
        turn = Turn(callback)
        if first:
            self._waiting.appendleft(turn)
        else:
            self._waiting.append(turn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._serve)
        return turn

    def _serve(self) -> None:
        """One loop turn's share: those queued before it, until ``per_turn`` is spent."""
        self._scheduled = False
        waiting = self._waiting
        started = time.perf_counter()
        deadline = started + self.per_turn
        rest = 0.0
        self._serving = True
        try:
            for _ in range(len(waiting)):  # one queued again now waits for the next turn
                callback = waiting.popleft().callback
                if callback is not None:
                    callback()
                    if (now := time.perf_counter()) >= deadline:
                        rest = now - started  # as long again for everything else
                        break
        finally:
            self._serving = False
            if waiting and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_later(rest, self._serve)
