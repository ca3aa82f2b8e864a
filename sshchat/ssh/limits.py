"""Connection caps: in all, per source address, and still in the handshake.

asyncssh counts none of these itself. Refusing early is the point: a
connection over a cap is told why (an SSH disconnect message, which OpenSSH
prints) before any key exchange costs us CPU.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable

from sshchat.chat.moderation import normalise_address
from sshchat.chat.ratelimit import TokenBucket

MAX_TRACKED = 10_000  # addresses whose arrival rate is remembered (the oldest go first)


def arrival_key(address: str) -> str:
    """Whose arrivals count together: an IPv4 address (also when seen as
    ::ffff:a.b.c.d), or an IPv6 /64 (one host's usual allotment, which it
    can walk through at will)."""
    try:
        ip = ipaddress.ip_address(normalise_address(address))
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class ConnectionLimits:
    """Counts of open connections, by address, and of handshakes under way;
    and the rate at which each address opens new ones.

    The rate is what keeps a flood of fresh identities in check: every new
    name or key gets its own message allowance, so reconnecting as someone
    new would otherwise buy a new burst each time.
    """

    def __init__(
        self,
        max_connections: int,
        max_per_address: int,
        max_startups: int,
        *,
        new_connections_burst: int,
        new_connections_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.max_startups = max_startups
        self.new_connections_burst = new_connections_burst
        self.new_connections_per_minute = new_connections_per_minute
        self._clock = clock
        self.total = 0
        self.handshaking = 0
        self.by_address: Counter[str] = Counter()
        self._arrivals: dict[str, TokenBucket] = {}

    def admit(self, address: str) -> str | None:
        """Count a new connection, or return why it is refused (not counted)."""
        if self.handshaking >= self.max_startups:
            return "the server is busy with other logins; try again in a few seconds"
        if self.total >= self.max_connections:
            return f"the server is full ({self.max_connections} connections); try again later"
        if self.by_address[address] >= self.max_per_address:
            return f"too many connections from your address (at most {self.max_per_address})"
        if not self._arrived(arrival_key(address)):
            return (
                f"too many new connections from your address (at most {self.new_connections_burst} at once, "
                f"then {self.new_connections_per_minute:g} a minute); try again in a moment"
            )
        self.total += 1
        self.handshaking += 1
        self.by_address[address] += 1
        return None

    def logged_in(self) -> None:
        """A counted connection finished its handshake."""
        self.handshaking -= 1

    def release(self, address: str, handshaking: bool) -> None:
        """A counted connection closed."""
        self.total -= 1
        if handshaking:
            self.handshaking -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def _arrived(self, key: str) -> bool:
        bucket = self._arrivals.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.new_connections_burst, self.new_connections_per_minute / 60, self._clock)
        self._arrivals[key] = bucket  # newest last
        if len(self._arrivals) > MAX_TRACKED:
            del self._arrivals[next(iter(self._arrivals))]
        return bucket.take()
