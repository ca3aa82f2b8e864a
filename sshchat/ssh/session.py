"""One SSH session channel: its requests, then a chat or a bot command.

asyncssh asks for the session object before the client has said what it
wants; the requests (a PTY, a shell, an exec command) come afterwards. This
object takes them, and once the session starts hands it to what was asked
for: ``ssh host`` (with or without a PTY) gets a ChatSession,
``ssh host CMD`` a BotCommandSession. Both are Handlers; what stays here is
what applies to either: the input budget (input costs us work, so a sender
gets a bounded amount of it) and that the session's end is the connection's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import asyncssh

from sshchat.chat.ratelimit import TokenBucket
from sshchat.ssh.bot_session import BotCommandSession
from sshchat.ssh.chat_session import ChatSession
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.input_budget import ServerTimeBudget

_RESIZE_COST = 256  # input bytes a window-size change counts as (it costs a redraw)


class Handler(Protocol):
    """What runs a started session (ChatSession, BotCommandSession)."""

    def start(self) -> None: ...

    @property
    def listening(self) -> bool:
        """Still running: input, resizes and end of input count."""
        ...

    def input(self, data: str) -> None: ...

    def eof(self) -> None: ...

    def resize(self, width: int) -> None: ...

    def flooded(self, why: str | None = None) -> None:
        """More input than the budget allows: end the session (``why``: what
        to tell the client, when it is not the byte budget)."""

    def lost(self, exc: Exception | None) -> None: ...


class Session(asyncssh.SSHServerSession[str]):
    """The asyncssh session object of one connection's (only) session."""

    def __init__(
        self,
        ctx: ServerContext,
        peer: Peer,
    ) -> None:
        self._ctx = ctx
        self._peer = peer
        self._chan: asyncssh.SSHServerChannel[str] | None = None
        self._term: str | None = None
        self._width = 80
        self._command: str | None = None
        self.handler: Handler | None = None
        per_minute = ctx.config.input_bytes_per_minute
        loop = asyncio.get_running_loop()
        self._input_budget = TokenBucket(per_minute, per_minute / 60, loop.time)
        c = ctx.config
        self._time_budget = ServerTimeBudget(c.input_ms_per_second, c.input_ms_burst, c.input_slowdowns, loop.time)
        self._resume: asyncio.TimerHandle | None = None

    # --------------------------------------------------------------- requests

    def connection_made(self, chan: asyncssh.SSHServerChannel[str]) -> None:
        self._chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: dict[int, int]) -> bool:  # type: ignore[override]
        self._term = term_type
        self._width = term_size[0] or 80
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        chan = self._chan
        assert chan is not None
        handler: Handler
        if self._command is not None:
            handler = BotCommandSession(
                self._ctx, chan, self._peer, self._command
            )
        else:
            no_color = self._term is not None and "NO_COLOR" in chan.get_environment()
            handler = ChatSession(
                self._ctx, chan, self._peer,
                self._term, self._width, no_color,
            )
        self.handler = handler
        handler.start()

    # ------------------------------------------------------------ the session

    def data_received(self, data: str, datatype: asyncssh.DataType) -> None:
        handler = self.handler
        if handler is None or not handler.listening:
            return
        if self._input_budget.take(len(data.encode("utf-8", "surrogatepass"))):
            started = time.perf_counter()
            handler.input(data)
            self._charge(handler, time.perf_counter() - started)
        else:
            handler.flooded()

    def eof_received(self) -> bool:
        handler = self.handler
        if handler is not None and handler.listening:
            handler.eof()
        return True  # the handler closes the channel itself, after the goodbye

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        handler = self.handler
        if handler is None or not handler.listening:
            return
        if self._input_budget.take(_RESIZE_COST):  # a resize storm is a flood too
            started = time.perf_counter()
            handler.resize(width)
            self._charge(handler, time.perf_counter() - started)
        else:
            handler.flooded()

    def _charge(self, handler: Handler, seconds: float) -> None:
        """Take ``seconds`` of server time from the connection's budget: over
        it, stop reading the channel until it has refilled, or cut it off."""
        pause = self._time_budget.spent(seconds)
        chan = self._chan
        if pause is None:
            if handler.listening:
                c = self._ctx.config
                handler.flooded(
                    f"your input took more than {c.input_ms_per_second:g} ms of server time a second; disconnected"
                )
        elif pause > 0 and chan is not None:
            if self._resume is not None:
                self._resume.cancel()
            chan.pause_reading()
            self._resume = asyncio.get_running_loop().call_later(pause, self._resume_reading)

    def _resume_reading(self) -> None:
        self._resume = None
        if self._chan is not None:
            self._chan.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()
        if self.handler is not None:
            self.handler.lost(exc)
        self._chan = None
        self._peer.conn.close()  # one connection, one session: the session's end is the connection's
