"""Flood control: token buckets, and memory of who keeps hitting limits.

A token bucket lets a burst through (a pasted block of a few lines) and then
a steady rate, where a fixed window ("3 lines per 3 seconds") blocks every
paste. Both classes take the hub's clock, so tests move time instead of
sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False means over the limit."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


class BucketsByKey:
    """A token bucket per key (a person, an address, a network), made on
    first use. Memory is bounded: at most ``max_keys`` are remembered, the
    least recently used forgotten first (a forgotten key starts full)."""

    def __init__(self, burst: float, rate: float, clock: Callable[[], float], max_keys: int = 10_000) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._max = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def get(self, key: str) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.burst, self.rate, self._clock)
        self._buckets[key] = bucket  # re-inserted: newest last
        if len(self._buckets) > self._max:
            del self._buckets[next(iter(self._buckets))]
        return bucket

    def take(self, key: str) -> bool:
        """Spend a token of ``key``'s bucket; False means over the limit."""
        return self.get(key).take()


class Offences:
    """Addresses that keep getting refused or throttled earn a short block.

    ``threshold`` offences within ``window`` seconds block the address for
    ``block_for`` seconds. Memory is bounded: at most ``max_addresses`` are
    tracked, the oldest forgotten first.
    """

    def __init__(
        self,
        threshold: int,
        window: float,
        block_for: float,
        clock: Callable[[], float],
        max_addresses: int = 10_000,
    ) -> None:
        self.threshold = threshold
        self.window = window
        self.block_for = block_for
        self._clock = clock
        self._max = max_addresses
        self._recent: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def record(self, address: str) -> bool:
        """Count one offence; True if the address is now blocked."""
        if not address or self.threshold <= 0:
            return False
        now = self._clock()
        times = self._recent.pop(address, None) or deque()
        self._recent[address] = times  # re-inserted: newest last
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(self._recent) > self._max:
            del self._recent[next(iter(self._recent))]
        if len(times) >= self.threshold:
            times.clear()
            self._blocked[address] = now + self.block_for
            if len(self._blocked) > self._max:
                del self._blocked[next(iter(self._blocked))]
            return True
        return False

    def blocked_until(self, address: str) -> float | None:
        """When the block on ``address`` ends, or None if it is not blocked."""
        until = self._blocked.get(address)
        if until is None:
            return None
        if until <= self._clock():
            del self._blocked[address]
            return None
        return until
