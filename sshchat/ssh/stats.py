"""What the transport counts about its sessions, for --metrics.

Plain numbers kept where things happen (sessions by kind, readers cut off
for not reading, deliveries written and how long they took from acceptance),
read by sshchat/metrics.py at scrape time; see chat/telemetry.py for why.
"""

from __future__ import annotations

from time import time as _now

from sshchat.chat.message import Message
from sshchat.chat.telemetry import Buckets
from sshchat.term.batch import Elsewhere, Pending

SESSION_KINDS = ("pty", "line", "bot")  # a person at a terminal, a script in line mode, a bot command
# Seconds from the server accepting a message to its write to a reader: from
# well under a millisecond (one process, light load) to the seconds of a
# server that has fallen behind.
_NEVER = float("inf")
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SessionStats:
    """The transport's counts; one per server (ServerContext.stats)."""

    __slots__ = ("deliveries", "latency", "sessions", "slow_cut", "turn_messages", "turn_oldest")

    def __init__(self) -> None:
        self.sessions: dict[str, int] = dict.fromkeys(SESSION_KINDS, 0)  # open now
        self.slow_cut = 0  # sessions cut off for not reading (outbox_limit bytes unsent)
        self.deliveries = 0  # messages written to people's sessions (pty and line), with --metrics
        # Only with --metrics (the flusher then calls ``settle`` after each turn).
        self.latency: Buckets | None = None
        self.turn_messages = 0  # timed messages written this turn
        self.turn_oldest = _NEVER  # when the oldest of them was accepted

    def wrote(self, items: list[Pending], notices: int) -> None:
        """A chat session wrote ``items``, ``notices`` of them notices (only
        called with --metrics).

        A write's first item is the oldest line in it; the turn keeps the
        oldest acceptance time of all its writes, and ``settle`` times them
        all together. A write that starts with a notice is counted but not
        timed: that is how a welcome, a /join and /history begin, and the
        old messages they replay after it were not waiting for this write.
        """
        messages = len(items) - notices
        if messages <= 0:
            return
        self.deliveries += messages
        first = items[0]
        if first.__class__ is Message:
            accepted = first.time
        elif first.__class__ is Elsewhere:
            accepted = first.msg.time
        else:
            return
        self.turn_messages += messages
        if accepted < self.turn_oldest:
            self.turn_oldest = accepted

    def settle(self) -> None:
        """After a flusher turn: this turn's writes are in their channels.

        Every message the turn wrote is counted once, at the age of the
        oldest one (an upper bound for the rest): one clock read and one
        bucket per turn, not per write. In one turn every session writes
        what was delivered to it since the last, so the spread is one turn's
        worth of messages. Measured per write instead, a clock read and a
        bucket added ~2.5 us to each write (bench.hotpath, 100 users).
        """
        messages = self.turn_messages
        latency = self.latency
        if not messages or latency is None:
            return
        age = _now() - self.turn_oldest
        self.turn_messages, self.turn_oldest = 0, _NEVER
        if age < 0.0:  # a clock set back, or another node's clock ahead of ours
            age = 0.0
        latency.observe(age, messages)
