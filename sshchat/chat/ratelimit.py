"""Flood control: token buckets, and memory of who keeps hitting limits.

A token bucket lets a burst through (a pasted block of a few lines) and then
a steady rate, where a fixed window ("3 lines per 3 seconds") blocks every
paste. Both classes take the hub's clock, so tests move time instead of
sleeping.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

from sshchat.chat.addresses import NETWORK_SHARE, address_keys


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def refill(self) -> float:
        """Add what has accrued since last time (up to ``burst``); the tokens now."""
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._tokens, self._stamp = tokens, now
        return tokens

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are enough; False means over the limit."""
        if self.refill() >= cost:
            self._tokens -= cost
            return True
        return False

    def drain(self, cost: float = 1.0) -> None:
        """Spend ``cost`` of what there is, down to nothing and no further: a
        line the same person said on another node (it was paid for there; here
        it leaves less for what they say next, never a debt)."""
        self._tokens = max(0.0, self.refill() - cost)

    def owe(self, cost: float) -> float:
        """Spend ``cost`` even beyond what there is (for a cost known only
        once paid, such as time spent); the seconds until the bucket is out
        of debt again, 0.0 if it is not in debt."""
        tokens = self._tokens = self.refill() - cost
        return -tokens / self.rate if tokens < 0 else 0.0


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
    ``block_for`` seconds. An address counts as its IPv6 /64 (and the /48
    around it, which may offend ``NETWORK_SHARE`` times as often), so walking
    through the addresses of one network earns the block as one address
    does. Memory is bounded: at most ``max_addresses`` are tracked, the
    oldest forgotten first. Blocks past that many forget the ones that are
    over first; if every one is still in force, the one that ends soonest
    goes: an attack from that many networks is under way, the newest
    offender is the one active now, and the oldest has served most of its
    time (memory stays bounded rather than grow with the attacker's
    addresses).
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
        self._blocked: OrderedDict[str, float] = OrderedDict()  # key -> block ends; soonest first (block_for is fixed)
        # Hears each block this node makes (key, until): on a cluster's bus,
        # published so the block holds on every node (see ``adopt``).
        self.on_block: Callable[[str, float], None] | None = None
        # Hears each offence this node records (the address): on a cluster's
        # bus, published so every node counts it (see ``record_elsewhere``).
        self.on_offence: Callable[[str], None] | None = None

    def record(self, address: str) -> bool:
        """Count one offence; True if the address is now blocked."""
        if not address or self.threshold <= 0:
            return False
        if self.on_offence is not None:
            self.on_offence(address)
        return self._record(address, True)

    def record_elsewhere(self, address: str) -> None:
        """Count an offence another node recorded (``Offended`` on the bus):
        the threshold is one count across the nodes, so offences spread over
        two of them earn the block as they would on one. A block it earns
        here is not published again: the node that recorded the offence
        counted it too, and publishes its own (``Blocked``)."""
        if address and self.threshold > 0:
            self._record(address, False)

    def _record(self, address: str, mine: bool) -> bool:
        host, site = address_keys(address)
        blocked = self._count(host, self.threshold, mine)
        if site is not None:
            blocked = self._count(site, self.threshold * NETWORK_SHARE, mine) or blocked
        return blocked

    def _count(self, key: str, threshold: int, mine: bool) -> bool:
        now = self._clock()
        times = self._recent.pop(key, None) or deque()
        self._recent[key] = times  # re-inserted: newest last
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(self._recent) > self._max:
            del self._recent[next(iter(self._recent))]
        if len(times) >= threshold:
            times.clear()
            until = now + self.block_for
            self._block(key, until, now)
            if mine and self.on_block is not None:
                self.on_block(key, until)
            return True
        return False

    def _block(self, key: str, until: float, now: float) -> None:
        blocked = self._blocked
        blocked[key] = max(until, blocked.get(key, until))
        blocked.move_to_end(key)  # the order stays by when blocks end (each lasts block_for, on every node)
        self._forget_blocks(now)

    def adopt(self, key: str, until: float) -> None:
        """A block another node made (``Blocked`` on the bus): it holds here too."""
        now = self._clock()
        if until > now:
            self._block(key, until, now)

    def _forget_blocks(self, now: float) -> None:
        """Drop the blocks that are over (all at the front: the order is by
        when they end), then, past ``max_addresses``, the ones ending soonest.
        Each block is dropped once: this costs what was blocked, not what is kept."""
        blocked = self._blocked
        while blocked:
            first = next(iter(blocked))
            if blocked[first] > now:
                break
            del blocked[first]
        while len(blocked) > self._max:
            blocked.popitem(last=False)

    def blocked_until(self, address: str) -> float | None:
        """When the block on ``address`` (or its network) ends, or None if it is not blocked."""
        ends = [until for key in address_keys(address) if key is not None and (until := self._until(key)) is not None]
        return max(ends, default=None)

    def _until(self, key: str) -> float | None:
        until = self._blocked.get(key)
        if until is None:
            return None
        if until <= self._clock():
            del self._blocked[key]
            return None
        return until
