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
from sshchat.chat.ratelimit import BucketsByKey

NETWORK_SHARE = 10  # an IPv6 /48 (a site) may open this many times what one /64 may


def arrival_keys(address: str) -> tuple[str, str | None]:
    """Whose arrivals count together: an IPv4 address (also when seen as
    ::ffff:a.b.c.d), or an IPv6 /64 (one host's usual allotment, which it
    can walk through at will); and for IPv6 the /48 around it (a site's,
    holding 65,536 /64s), which shares a larger allowance."""
    try:
        ip = ipaddress.ip_address(normalise_address(address))
    except ValueError:
        return address, None
    if ip.version == 6:
        return (
            str(ipaddress.ip_network(f"{ip}/64", strict=False)),
            str(ipaddress.ip_network(f"{ip}/48", strict=False)),
        )
    return str(ip), None


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
        rate = new_connections_per_minute / 60
        def now() -> float:  # read late, so a test can move time
            return self._clock()

        self._arrivals = BucketsByKey(new_connections_burst, rate, now)
        self._site_arrivals = BucketsByKey(new_connections_burst * NETWORK_SHARE, rate * NETWORK_SHARE, now)

    def admit(self, address: str) -> str | None:
        """Count a new connection, or return why it is refused (not counted)."""
        if self.handshaking >= self.max_startups:
            return "the server is busy with other logins; try again in a few seconds"
        if self.total >= self.max_connections:
            return f"the server is full ({self.max_connections} connections); try again later"
        if self.by_address[address] >= self.max_per_address:
            return f"too many connections from your address (at most {self.max_per_address})"
        host, site = arrival_keys(address)
        if not self._arrivals.take(host) or (site is not None and not self._site_arrivals.take(site)):
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
