"""The SSH side of a bot command: ``ssh host say|tail|who ...``.

What the commands do is bots.py's (it holds no SSH code); this runs one of
them for one SSH session: parses the exec line, feeds it input lines, and
writes what it prints. Its lines are batched like a person's output (one
write per event-loop turn) and go through the same Writer, so a follower
that stops reading is cut off like anyone else. The end of the command is
the end of the session: what is queued, the error on stderr, the status.
The queue and the Writer are the Outbox's (outbox.py), shared with chat
sessions.
"""

from __future__ import annotations

import asyncssh

from sshchat.chat import bots
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.outbox import Outbox
from sshchat.term.render import plain


class BotCommandSession(Outbox[str]):
    """Runs the exec ``command`` of one SSH session as a bot command."""

    KIND = "bot"

    def __init__(
        self,
        ctx: ServerContext,
        chan: asyncssh.SSHServerChannel[str],
        peer: Peer,
        command: str,
    ) -> None:
        super().__init__(ctx, chan, peer)
        self._command = command
        self._bot: bots.BotSession | None = None

    def start(self) -> None:
        """Parse the command and run it (a bad one: usage on stderr, exit 2)."""
        try:
            cmd = bots.parse(self._command)
        except bots.UsageError as e:
            self._closing = True
            self._out.exit(2, err=f"sshchat: {e}\n{bots.USAGE}")
            return
        self._bot = bots.BotSession(self._ctx.hub, cmd, self._queue, self.finish, plain=plain, warn=self.warn)
        peer = self._peer
        self._bot.start(peer.username, peer.fingerprint, peer.address)

    # ------------------------------------------------------------------ input

    @property
    def listening(self) -> bool:
        """The command runs and has not finished: input still counts."""
        return self._bot is not None and not self._closing

    def input(self, data: str) -> None:
        """Bytes of input lines (``say`` without TEXT posts each line).

        A refused line finishes the session at once (exit 1), so the lines
        after it in the same chunk are dropped, not posted: a script's
        ``set -e`` should stop where the error is.
        """
        assert self._bot is not None
        if self._feed_lines(data, self._bot.line):
            self.finish(1, "line too long")

    def eof(self) -> None:
        assert self._bot is not None
        if self._closing:
            return
        rest = self._lines.rest()
        if rest.strip():
            self._bot.line(rest)
        self._bot.eof()

    def resize(self, width: int) -> None:
        pass  # nothing is drawn

    def flooded(self, why: str | None = None) -> None:
        self.finish(1, why or "sent too much input")

    def lost(self, exc: Exception | None) -> None:
        if self._bot is not None:
            self._bot.ended()
        self._detach()

    # ----------------------------------------------------------------- output

    def write_batch(self, items: list[str]) -> None:
        """The lines the command printed this turn (queued by ``_queue``), in one write."""
        self._out.write("\n".join(items) + "\n")

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

    def warn(self, text: str) -> None:
        """A line on stderr that does not end the command (the chat told the bot something)."""
        if not self._closing and self._out.open:
            self._out.write_stderr(f"sshchat: {text}\n")

    def close(self, reason: str | None) -> None:
        """For the flusher, when writing failed: end with the reason."""
        self.finish(1, reason)
