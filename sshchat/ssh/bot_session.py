"""The SSH side of a bot command: ``ssh host say|tail|who ...``.

What the commands do is bots.py's (it holds no SSH code); this runs one of
them for one SSH session: parses the exec line, feeds it input lines, and
writes what it prints. Its lines are batched like a person's output (one
write per event-loop turn) and go through the same Writer, so a follower
that stops reading is cut off like anyone else. The end of the command is
the end of the session: what is queued, the error on stderr, the status.
"""

from __future__ import annotations

import logging

import asyncssh

from sshchat.chat import bots
from sshchat.ssh.context import ServerContext
from sshchat.ssh.lines import LineBuffer
from sshchat.ssh.writer import Writer
from sshchat.term.render import plain

log = logging.getLogger("sshchat")


class BotCommandSession:
    """Runs the exec ``command`` of one SSH session as a bot command."""

    def __init__(
        self,
        ctx: ServerContext,
        chan: asyncssh.SSHServerChannel[str],
        conn: asyncssh.SSHServerConnection,
        username: str,
        fingerprint: str | None,
        address: str,
        command: str,
    ) -> None:
        self._ctx = ctx
        self._out = Writer(chan, conn, ctx.config.outbox_limit, self._cut_off)
        self._username = username
        self._fingerprint = fingerprint
        self._address = address
        self._command = command
        self._bot: bots.BotSession | None = None
        self._pending: list[str] = []
        self._flush_scheduled = False
        self._closing = False
        self._lines = LineBuffer(ctx.config.max_line_chars)

    def start(self) -> None:
        """Parse the command and run it (a bad one: usage on stderr, exit 2)."""
        try:
            cmd = bots.parse(self._command)
        except bots.UsageError as e:
            self._closing = True
            self._out.exit(2, err=f"sshchat: {e}\n{bots.USAGE}")
            return
        self._bot = bots.BotSession(self._ctx.hub, cmd, self._queue, self.finish, plain=plain)
        self._bot.start(self._username, self._fingerprint, self._address)

    # ------------------------------------------------------------------ input

    @property
    def listening(self) -> bool:
        """The command runs and has not finished: input still counts."""
        return self._bot is not None and not self._closing

    def input(self, data: str) -> None:
        """Bytes of input lines (``say`` without TEXT posts each line)."""
        assert self._bot is not None
        lines, too_long = self._lines.feed(data)
        for line in lines:
            self._bot.line(line)
        if too_long:
            self.finish(1, "line too long")

    def eof(self) -> None:
        assert self._bot is not None
        rest = self._lines.rest()
        if rest.strip():
            self._bot.line(rest)
        self._bot.eof()

    def resize(self, width: int) -> None:
        pass  # nothing is drawn

    def flooded(self) -> None:
        self.finish(1, "sent too much input")

    def lost(self, exc: Exception | None) -> None:
        if self._bot is not None:
            self._bot.ended()
        self._out.detach()
        self._pending.clear()

    # ----------------------------------------------------------------- output

    def _queue(self, line: str) -> None:
        """A line the command prints: batched like everyone's output."""
        if self._closing:
            return
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ctx.flusher.mark(self)

    def flush(self) -> None:
        """Write every queued line in one write."""
        self._flush_scheduled = False
        if not self._pending or self._closing:
            return
        lines, self._pending = self._pending, []
        self._out.write("\n".join(lines) + "\n")

    def finish(self, status: int, error: str | None) -> None:
        """End the session once: what is queued, the error (if any) on
        stderr, then the status."""
        if self._closing or not self._out.open:
            return
        self.flush()
        self._closing = True
        if self._bot is not None:
            self._bot.ended()
        self._out.exit(status, err=f"sshchat: {error}\n" if error else "")

    def close(self, reason: str | None) -> None:
        """For the flusher, when writing failed: end with the reason."""
        self.finish(1, reason)

    def _cut_off(self, backlog: int) -> None:
        log.warning("cutting off bot %s from %s: %d bytes unsent", self._username, self._address, backlog)
        self._closing = True
        self._pending.clear()
