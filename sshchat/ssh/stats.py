"""What the transport counts about its sessions, for --metrics.

Plain numbers kept where things happen (sessions by kind, readers cut off
for not reading, deliveries written and how long they took from acceptance),
read by sshchat/metrics.py at scrape time; see chat/telemetry.py for why.
"""

from __future__ import annotations

from bisect import bisect_left
from time import time as _now

from sshchat.chat.message import Message
from sshchat.chat.telemetry import Buckets
from sshchat.term.batch import Elsewhere, Pending

SESSION_KINDS = ("pty", "line", "bot")  # a person at a terminal, a script in line mode, a bot command
# Seconds from the server accepting a message to its write to a reader: from
# well under a millisecond (one process, light load) to the seconds of a
# server that has fallen behind.
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SessionStats:
    """The transport's counts; one per server (ServerContext.stats)."""

    __slots__ = ("deliveries", "latency", "sessions", "slow_cut")

    def __init__(self) -> None:
        self.sessions: dict[str, int] = dict.fromkeys(SESSION_KINDS, 0)  # open now
        self.slow_cut = 0  # sessions cut off for not reading (outbox_limit bytes unsent)
        self.deliveries = 0  # messages written to people's sessions (pty and line), with --metrics
        # Only with --metrics: a write's timing costs a clock read and a bisect.
        self.latency: Buckets | None = None

    def wrote(self, items: list[Pending], notices: int) -> None:
        """A chat session wrote ``items``, ``notices`` of them notices (only
        called with --metrics: ``latency`` is set).

        The write is timed once, by its first item, the oldest line in it:
        from when the server accepted that message to now (its bytes are in
        the channel), counted once for each message in the write. A write
        that starts with a notice is not timed: that is how a welcome, a
        /join and /history begin, and the old messages they replay after it
        were not waiting for this write. Once per write, not per message,
        and Buckets.observe written out here (a call and a max() cost more
        than the rest on this path).
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
        age = _now() - accepted
        if age < 0.0:  # a clock set back, or another node's clock ahead of ours
            age = 0.0
        latency = self.latency
        assert latency is not None
        latency.counts[bisect_left(latency.bounds, age)] += messages
        latency.sum += age * messages
        latency.count += messages
