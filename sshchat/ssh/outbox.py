"""What both kinds of session share on the way out: a queue of output that
goes to the client in one write per event-loop turn, through one Writer.

A chat session queues messages and notices, a bot session the lines its
command prints; either way the first item of a turn marks the session due
(flusher.py), the rest join the list, and ``flush`` hands the whole batch to
the session's ``write_batch`` (which turns it into text and writes it once).
Past the Writer's backlog limit the session is cut off: nothing more is
queued, and ``cut_off`` lets the session say what else that means (a person
leaves the chat).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import asyncssh

from sshchat.chat.logged import event
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.lines import LineBuffer
from sshchat.ssh.writer import Writer

Item = TypeVar("Item")


class Outbox(Generic[Item]):
    """A session's output queue and Writer, and the facts both sessions keep
    about their client. ``Item``: what the session queues."""

    KIND = "session"  # what it is, in the log

    def __init__(
        self,
        ctx: ServerContext,
        chan: asyncssh.SSHServerChannel[str],
        peer: Peer,
    ) -> None:
        self._ctx = ctx
        self._out = Writer(chan, peer.conn, ctx.config.outbox_limit, self._cut_off)
        self._peer = peer
        self._username = peer.username  # a chat session follows its person's renames
        self._pending: list[Item] = []
        self._flush_scheduled = False
        self._closing = False  # on the way out (or cut off): nothing more is queued
        self._lines = LineBuffer(ctx.config.max_line_chars)  # input without a PTY

    def _feed_lines(self, data: str, each: Callable[[str], None]) -> bool:
        """Input without a PTY: hand each line ``data`` completes to ``each``,
        until the session closes (lines after the one that closed it are
        dropped). True if the unfinished line grew past ``max_line_chars``."""
        lines, too_long = self._lines.feed(data)
        for line in lines:
            if self._closing:
                return False
            each(line)
        return too_long and not self._closing

    def _queue(self, item: Item) -> None:
        """Queue ``item`` for this turn's write (ChatSession.deliver inlines this)."""
        if self._closing:
            return
        self._pending.append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ctx.flusher.mark(self)

    def flush(self) -> None:
        """Write everything queued, in one write (the flusher calls this)."""
        self._flush_scheduled = False
        if not self._pending or self._closing:
            return
        items, self._pending = self._pending, []
        self.write_batch(items)

    def write_batch(self, items: list[Item]) -> None:
        """Turn ``items`` into text and write it with one write."""
        raise NotImplementedError

    def close(self, reason: str | None) -> None:
        """End the session, saying ``reason`` (the flusher calls this when
        ``flush`` failed)."""
        raise NotImplementedError

    def _cut_off(self, backlog: int) -> None:
        """The Writer gave up on a client that is not reading: queue nothing more."""
        peer = self._peer
        event(
            logging.WARNING, "slow_reader_cut_off",
            f"cutting off {self._username} from {peer.address} ({self.KIND}): {backlog} bytes unsent",
            name=self._username, fingerprint=peer.fingerprint, address=peer.address, kind=self.KIND, backlog=backlog,
        )
        self._closing = True
        self._pending.clear()
        self._ctx.stats.slow_cut += 1

    def _detach(self) -> None:
        """The connection is gone: write nothing more, drop what waits."""
        self._out.detach()
        self._pending.clear()
