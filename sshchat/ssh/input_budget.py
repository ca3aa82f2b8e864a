"""How much server time one connection's input may take.

Why time and not bytes: the byte limit (``input_bytes_per_minute``) counts
what a client sends, not the work it causes, and the server does all its
work on one event loop, so input that is cheap to send and dear to handle
(cursor keys on a long line, Tab with many people online) could stall the
chat for everyone (issue 14). The time the handler spends on each chunk of
input is measured and taken from a token bucket of seconds: a connection
over budget is first slowed (its channel stops being read until the bucket
has refilled), and if it is slowed ``max_slowdowns`` times without the
bucket ever filling up again in between, it is cut off.
"""

from __future__ import annotations

from collections.abc import Callable


class ServerTimeBudget:
    """A token bucket of server seconds for one connection's input."""

    __slots__ = ("_clock", "_stamp", "_strikes", "_tokens", "burst", "max_slowdowns", "rate")

    def __init__(
        self, ms_per_second: float, burst_ms: float, max_slowdowns: int, clock: Callable[[], float]
    ) -> None:
        self.rate = ms_per_second / 1000
        self.burst = burst_ms / 1000
        self.max_slowdowns = max_slowdowns
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._strikes = 0

    def spent(self, seconds: float) -> float | None:
        """Charge ``seconds`` of server time. Returns how long to stop reading
        this connection (0.0: not at all), or None: cut it off."""
        now = self._clock()
        tokens = self._tokens + (now - self._stamp) * self.rate
        self._stamp = now
        if tokens >= self.burst:
            tokens = self.burst
            self._strikes = 0  # back to full: a past slowdown is forgiven
        tokens -= seconds
        self._tokens = tokens
        if tokens >= 0:
            return 0.0
        self._strikes += 1
        if self._strikes > self.max_slowdowns:
            return None
        return -tokens / self.rate
