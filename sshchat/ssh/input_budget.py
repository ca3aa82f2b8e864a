"""How much server time one connection's input, and one address's, may take.

Why time and not bytes: the byte limit (``input_bytes_per_minute``) counts
what a client sends, not the work it causes, and the server does all its
work on one event loop, so input that is cheap to send and dear to handle
(cursor keys on a long line, Tab with many people online) could stall the
chat for everyone (issue 14). The time the handler spends on each chunk of
input is measured and taken from token buckets of seconds: the connection's
own, and one shared by every connection from its address (AddressBudgets),
since one address may hold ``max_per_address`` connections and would
otherwise get that many times one connection's share of the event loop. A
connection is slowed while either is in debt (it stops being read until
both have refilled). A slowdown with its own bucket in debt is a strike,
and after ``max_slowdowns`` strikes without its buckets ever filling up
again in between, it is cut off; debt on the address's bucket alone only
slows it, unless it has a backlog of packets waiting (it sends faster than
it is served: a flood, never a person typing).

Connections behind one address (a NAT) share its allowance: a hog there
slows its neighbours too, but a neighbour that is not itself over its own
budget is never cut off (nor recorded as an offender) for it.

What is charged: the time the handler takes for each slice of input
(session.py) and, with the ``bounded_receive`` patch, the time asyncssh
takes for each connection's packets, from the first byte of the
handshake on (decrypting, MAC, dispatch, IGNORE packets included).
"""

from __future__ import annotations

from collections.abc import Callable

from sshchat.chat.addresses import NETWORK_SHARE, address_keys
from sshchat.chat.ratelimit import TokenBucket

Keys = tuple[str, str | None]  # what address_keys() gives


class AddressBudgets:
    """Server seconds shared by all connections from one address.

    Keyed like every per-address limit (``address_keys``): an IPv4 address
    or IPv6 /64, and the /48 around it with ``NETWORK_SHARE`` times the
    allowance. A full bucket is as good as none, so buckets are dropped once
    full again (the least recently charged is looked at on every charge),
    and at most ``max_addresses`` are kept, the least recently charged
    forgotten first: the table cannot grow without bound.
    """

    def __init__(
        self, ms_per_second: float, burst_ms: float, clock: Callable[[], float], max_addresses: int = 10_000
    ) -> None:
        self.rate = ms_per_second / 1000
        self.burst = burst_ms / 1000
        self._clock = clock
        self._max = max_addresses
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def charge(self, keys: Keys, seconds: float) -> tuple[bool, float]:
        """Take ``seconds`` from the buckets of an address (its ``address_keys``,
        worked out once per connection: parsing it costs more than this).
        Returns whether they were all full before, and how long the address
        is in debt (0.0: not)."""
        full, pause = True, 0.0
        for key, share in zip(keys, (1, NETWORK_SHARE), strict=True):
            if key is None:
                continue
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = TokenBucket(self.burst * share, self.rate * share, self._clock)
            self._buckets[key] = bucket  # re-inserted: most recently charged last
            full = bucket.refill() >= bucket.burst and full
            pause = max(pause, bucket.owe(seconds))
        self._forget()
        return full, pause

    def unspent(self, keys: Keys) -> bool:
        """True if the buckets of an address (its ``address_keys``) are at
        least half full: it has not been using much of its share."""
        for key in keys:
            bucket = self._buckets.get(key) if key is not None else None
            if bucket is not None and bucket.refill() < bucket.burst / 2:
                return False
        return True

    def _forget(self) -> None:
        """Drop the least recently charged buckets while they are full again
        (or the table is over its cap)."""
        buckets = self._buckets
        while buckets:
            key = next(iter(buckets))
            bucket = buckets[key]
            if len(buckets) <= self._max and bucket.refill() < bucket.burst:
                return
            del buckets[key]


class ServerTimeBudget:
    """A token bucket of server seconds for one connection's input, and
    (if given) its address's share of ``shared``."""

    __slots__ = ("_keys", "_own", "_shared", "_strikes", "charged", "free", "max_slowdowns", "struck")

    def __init__(
        self,
        ms_per_second: float,
        burst_ms: float,
        max_slowdowns: int,
        clock: Callable[[], float],
        shared: AddressBudgets | None = None,
        address: str = "",
    ) -> None:
        self._own = TokenBucket(burst_ms / 1000, ms_per_second / 1000, clock)
        self.max_slowdowns = max_slowdowns
        self._shared = shared
        self._keys = address_keys(address)
        self._strikes = 0
        self.struck = 0  # strikes in all, forgiven or not: whoever charges can tell whether a strike came meanwhile
        self.charged = 0.0  # seconds charged in all: what others charged meanwhile is not counted twice
        # Seconds not taken from the buckets, for logging in (server.py): a
        # handshake costs what it costs, and the arrival limits bound how many
        # an address may start; what a connection does beyond it is charged.
        self.free = 0.0

    @property
    def unspent(self) -> bool:
        """True if neither this connection nor its address has been using
        much server time lately (both buckets at least half full): its input
        may go first. Not "full": time is measured on the clock, so a
        person's key that waited for the CPU counts that wait too."""
        own = self._own
        return own.refill() >= own.burst / 2 and (self._shared is None or self._shared.unspent(self._keys))

    def spent(self, seconds: float, backlog: bool = False, strike: bool = True) -> float | None:
        """Charge ``seconds`` of server time. Returns how long to stop reading
        this connection (0.0: not at all), or None: cut it off.

        ``backlog``: more of its packets were waiting than one slice could
        handle (bounded_receive): it sends faster than it is served. Then a
        slowdown for its address's debt is a strike too: a person typing
        behind a NAT never has a backlog of packets, the hogs there do.

        ``strike``: False when this charge belongs to a slowdown struck
        already (bounded_receive charging a slice of packets whose handler
        was slowed meanwhile): it still pauses, but is not a second strike."""
        self.charged += seconds
        if self.free > 0:
            free = min(self.free, seconds)
            self.free -= free
            seconds -= free
            if seconds <= 0:
                return 0.0
        own = self._own
        full = own.refill() >= own.burst
        own_pause = pause = own.owe(seconds)
        if self._shared is not None:
            address_full, address_pause = self._shared.charge(self._keys, seconds)
            full = full and address_full
            pause = max(pause, address_pause)
        if full:
            self._strikes = 0  # back to full: a past slowdown is forgiven
        if pause <= 0:
            return 0.0
        if own_pause <= 0 and not backlog:
            return pause  # only the address is in debt: slowed, but no strike (a neighbour may be the hog)
        if not strike:
            return pause
        self._strikes += 1
        self.struck += 1
        if self._strikes > self.max_slowdowns:
            return None
        return pause
