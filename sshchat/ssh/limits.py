"""Connection caps: in all, per source address, and still in the handshake.

asyncssh counts none of these itself. Refusing early is the point: a
connection over a cap is told why (an SSH disconnect message, which OpenSSH
prints) before any key exchange costs us CPU.
"""

from __future__ import annotations

from collections import Counter


class ConnectionLimits:
    """Counts of open connections, by address, and of handshakes under way."""

    def __init__(self, max_connections: int, max_per_address: int, max_startups: int) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.max_startups = max_startups
        self.total = 0
        self.handshaking = 0
        self.by_address: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Count a new connection, or return why it is refused (not counted)."""
        if self.handshaking >= self.max_startups:
            return "the server is busy with other logins; try again in a few seconds"
        if self.total >= self.max_connections:
            return f"the server is full ({self.max_connections} connections); try again later"
        if self.by_address[address] >= self.max_per_address:
            return f"too many connections from your address (at most {self.max_per_address})"
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
