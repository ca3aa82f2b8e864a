"""What every connection and session of one server shares."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import asyncssh

from sshchat.chat.hub import Hub
from sshchat.chat.logged import Throttle
from sshchat.config import Config
from sshchat.ssh.flusher import Flusher
from sshchat.ssh.input_budget import AddressBudgets
from sshchat.ssh.input_turns import INPUT_PER_TURN, InputTurns
from sshchat.ssh.keyfiles import KeyFile
from sshchat.ssh.limits import ConnectionLimits
from sshchat.ssh.stats import SessionStats


class Peer(NamedTuple):
    """The client at the other end of one connection, as its login found
    it; every kind of session is told the same about it."""

    conn: asyncssh.SSHServerConnection
    username: str
    fingerprint: str | None  # None: logged in without a key
    address: str


@dataclass
class ServerContext:
    """The hub and the settings; one per listening server."""

    hub: Hub
    config: Config
    # Open connections (asyncssh connection objects), for shutdown to wait on.
    connections: set[Any] = field(default_factory=set)
    limits: ConnectionLimits = field(init=False)
    # Server time the input of all connections from one address may take (input_budget.py).
    input_time: AddressBudgets = field(init=False)
    # Input slices of all connections take turns, a bounded amount per event-loop turn (input_turns.py).
    input_turns: InputTurns = field(default_factory=lambda: InputTurns(INPUT_PER_TURN))
    flusher: Flusher = field(default_factory=Flusher)
    # Lines of refused connections: one per address and reason a minute (a flood of them is not a flood of lines).
    refusals_logged: Throttle = field(default_factory=Throttle)
    # --admin-keys and --allowlist: their from=/expiry-time= are checked at each login.
    key_files: list[KeyFile] = field(default_factory=list)
    # What --metrics reads about sessions (counted whether or not it is on: ints, where things happen).
    stats: SessionStats = field(default_factory=SessionStats)

    def key_admitted_until(self, fingerprint: str, address: str, now: float) -> float | None:
        """When the key files stop admitting ``fingerprint`` from ``address``
        (the earliest expiry-time that applies); None: never."""
        ends = [end for keys in self.key_files if (end := keys.admitted_until(fingerprint, address, now)) is not None]
        return min(ends, default=None)

    def __post_init__(self) -> None:
        c = self.config
        self.limits = ConnectionLimits(
            c.max_connections, c.max_per_address, c.max_startups,
            new_connections_burst=c.new_connections_burst, new_connections_per_minute=c.new_connections_per_minute,
            elsewhere=self.hub.people_elsewhere,
        )
        self.hub.on_arrival_elsewhere = self.limits.arrived_elsewhere
        self.input_time = AddressBudgets(c.input_ms_per_address, c.input_ms_burst_per_address, time.monotonic)
