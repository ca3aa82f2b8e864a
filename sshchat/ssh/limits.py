"""Connection caps: in all, per source address, and still in the handshake.

asyncssh counts none of these itself. Refusing early is the point: a
connection over a cap is told why (an SSH disconnect message, which OpenSSH
prints) before any key exchange costs us CPU.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from sshchat.chat.addresses import NETWORK_SHARE, address_keys
from sshchat.chat.ratelimit import BucketsByKey
from sshchat.chat.refusals import Reason, Refusal


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
        elsewhere: Callable[[str], int] | None = None,
    ) -> None:
        """``elsewhere``: how many people from an address key are online on
        the other nodes of a cluster (``Hub.people_elsewhere``), so that
        ``max_per_address`` is one count across the nodes."""
        self._elsewhere = elsewhere
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.max_startups = max_startups
        self.new_connections_burst = new_connections_burst
        self.new_connections_per_minute = new_connections_per_minute
        self._clock = clock
        self.total = 0
        self.handshaking = 0
        # Open connections by IPv4 address or IPv6 /64, and by IPv6 /48.
        self.by_address: Counter[str] = Counter()
        rate = new_connections_per_minute / 60
        def now() -> float:  # read late, so a test can move time
            return self._clock()

        self._arrivals = BucketsByKey(new_connections_burst, rate, now)
        self._site_arrivals = BucketsByKey(new_connections_burst * NETWORK_SHARE, rate * NETWORK_SHARE, now)

    def admit(self, address: str) -> str | None:
        """Count a new connection, or return why it is refused (not counted)."""
        if self.handshaking >= self.max_startups:
            return Reason(Refusal.BUSY, "the server is busy with other logins; try again in a few seconds")
        if self.total >= self.max_connections:
            return Reason(Refusal.FULL, f"the server is full ({self.max_connections} connections); try again later")
        host, site = address_keys(address)
        if self._held(host) >= self.max_per_address or (
            site is not None and self._held(site) >= self.max_per_address * NETWORK_SHARE
        ):
            too_many = f"too many connections from your address (at most {self.max_per_address})"
            return Reason(Refusal.PER_ADDRESS, too_many)
        if not self._arrivals.take(host) or (site is not None and not self._site_arrivals.take(site)):
            return Reason(
                Refusal.RATE,
                f"too many new connections from your address (at most {self.new_connections_burst} at once, "
                f"then {self.new_connections_per_minute:g} a minute); try again in a moment",
            )
        self.total += 1
        self.handshaking += 1
        for key in (host, site):
            if key is not None:
                self.by_address[key] += 1
        return None

    def arrived_elsewhere(self, address: str) -> None:
        """Someone from ``address`` logged in on another node of the cluster
        (``Hub.on_arrival_elsewhere``): one of its arrivals spent here too, so
        the arrival rate of an address is one across the nodes for people
        who log in (a connection refused or dropped there before its login
        is that node's alone)."""
        host, site = address_keys(address)
        self._arrivals.get(host).drain()
        if site is not None:
            self._site_arrivals.get(site).drain()

    def _held(self, key: str) -> int:
        """Connections ``key`` holds here, and people from it on the other nodes
        (logged in: a connection still in its handshake there is not known
        here, and is bounded by that node's own count and the login timeout)."""
        here = self.by_address[key]
        return here if self._elsewhere is None else here + self._elsewhere(key)

    def logged_in(self) -> None:
        """A counted connection finished its handshake."""
        self.handshaking -= 1

    def release(self, address: str, handshaking: bool) -> None:
        """A counted connection closed."""
        self.total -= 1
        if handshaking:
            self.handshaking -= 1
        for key in address_keys(address):
            if key is not None:
                self.by_address[key] -= 1
                if self.by_address[key] <= 0:
                    del self.by_address[key]
