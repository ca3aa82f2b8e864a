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
from collections.abc import Callable
from typing import Protocol

import asyncssh

from sshchat.chat.ratelimit import TokenBucket
from sshchat.ssh.bot_session import BotCommandSession
from sshchat.ssh.chat_session import ChatSession
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.input_budget import ServerTimeBudget
from sshchat.ssh.input_turns import Turn

_RESIZE_COST = 256  # input bytes a window-size change counts as (it costs a redraw)
# Input is handed to the handler this many characters at a time, with a turn
# of the event loop in between: an SSH packet holds up to 32 KB of keys, and
# others' chat must not wait for all of them to be handled. Slices of all
# connections take turns, at most INPUT_PER_TURN seconds of them a loop turn
# (input_turns.py).
INPUT_SLICE = 512


def connection_budget(ctx: ServerContext, address: str) -> ServerTimeBudget:
    """The server-time budget of one connection from ``address`` (shared
    with its address's connections through ``ctx.input_time``)."""
    c = ctx.config
    return ServerTimeBudget(
        c.input_ms_per_second, c.input_ms_burst, c.input_slowdowns, asyncio.get_running_loop().time,
        ctx.input_time, address,
    )


def over_budget_reason(ctx: ServerContext) -> str:
    """What a client cut off for its server time is told."""
    c = ctx.config
    return (
        f"your input took more than {c.input_ms_per_second:g} ms of server time a second, or that of "
        f"all connections from your address more than {c.input_ms_per_address:g} ms; disconnected"
    )


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

    def close(self, reason: str | None) -> None:
        """End the session, telling the client ``reason``."""


class Session(asyncssh.SSHServerSession[str]):
    """The asyncssh session object of one connection's (only) session."""

    def __init__(
        self,
        ctx: ServerContext,
        peer: Peer,
        started: Callable[[], None] | None = None,
        time_budget: ServerTimeBudget | None = None,
    ) -> None:
        """``time_budget``: the connection's, which its packets are charged to
        too (server.py); a session made without one gets its own."""
        self._ctx = ctx
        self._peer = peer
        self._started = started  # told when the shell or command starts (the end of logging in)
        self._chan: asyncssh.SSHServerChannel[str] | None = None
        self._term: str | None = None
        self._width = 80
        self._command: str | None = None
        self.handler: Handler | None = None
        per_minute = ctx.config.input_bytes_per_minute
        loop = asyncio.get_running_loop()
        self._input_budget = TokenBucket(per_minute, per_minute / 60, loop.time)
        self._time_budget = time_budget or connection_budget(ctx, peer.address)
        self._resume: asyncio.TimerHandle | Turn | None = None  # input waits: for a pause to end, or its turn
        self._pending = ""  # input received, not yet handed over (reading is paused meanwhile)
        self._at = 0  # how much of _pending is handed over: slices are cut by offset, not by copying the rest
        self._eof_pending = False
        self._paused = False
        self._expiry: asyncio.TimerHandle | None = None  # the end of the key's expiry-time, if it has one
        self._kind: str | None = None  # once started: pty, line or bot (counted open in ctx.stats.sessions)

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
        if self._started is not None:
            self._started()
        handler: Handler
        self._kind = "bot" if self._command is not None else "pty" if self._term is not None else "line"
        self._ctx.stats.sessions[self._kind] += 1
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
        peer = self._peer
        if peer.fingerprint is not None and handler.listening:
            until = self._ctx.key_admitted_until(peer.fingerprint, peer.address, time.time())
            if until is not None:  # expiry-time= is checked at login, and holds for the session too
                self._expiry = asyncio.get_running_loop().call_later(max(0.0, until - time.time()), self._key_expired)

    def _key_expired(self) -> None:
        self._expiry = None
        if self.handler is not None and self.handler.listening:
            self.handler.close("your key's expiry-time has passed; disconnected")

    # ------------------------------------------------------------ the session

    def data_received(self, data: str, datatype: asyncssh.DataType) -> None:
        handler = self.handler
        if handler is None or not handler.listening:
            return
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        if self._input_budget.take(size):
            if self._at:  # drop what was handed over before adding more
                self._pending, self._at = self._pending[self._at :], 0
            self._pending += data
            if self._resume is None:
                if self._ctx.input_turns.busy and self._chan is not None:  # others' input waits: queue with it
                    self._pause_reading(self._chan)
                    self._resume = self._ctx.input_turns.later(self._drain, first=self._time_budget.unspent)
                else:
                    self._drain()
        else:
            handler.flooded()

    def _drain(self) -> None:
        """Hand pending input over a slice at a time, measuring each; between
        slices (and while over the time budget) the channel is not read."""
        self._resume = None
        handler, chan = self.handler, self._chan
        while self._at < len(self._pending) and handler is not None and handler.listening and chan is not None:
            piece = self._pending[self._at : self._at + INPUT_SLICE]
            self._at += len(piece)
            started = time.perf_counter()
            handler.input(piece)
            pause = self._charge(handler, time.perf_counter() - started)
            if pause is None:
                self._pending, self._at = "", 0
                return
            if pause > 0 or self._at < len(self._pending):
                self._pause_reading(chan)
                self._wait(pause)
                return
        self._pending, self._at = "", 0
        if chan is not None and self._paused:
            self._paused = False
            chan.resume_reading()
        if self._eof_pending and handler is not None and handler.listening:
            self._eof_pending = False
            handler.eof()

    def eof_received(self) -> bool:
        handler = self.handler
        if self._resume is not None:
            self._eof_pending = True  # after the input still pending
        elif handler is not None and handler.listening:
            handler.eof()
        return True  # the handler closes the channel itself, after the goodbye

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        handler = self.handler
        if handler is None or not handler.listening:
            return
        if self._input_budget.take(_RESIZE_COST):  # a resize storm is a flood too
            started = time.perf_counter()
            handler.resize(width)
            pause = self._charge(handler, time.perf_counter() - started)
            if pause and self._chan is not None and self._resume is None:
                self._pause_reading(self._chan)
                self._wait(pause)
        else:
            handler.flooded()

    def _wait(self, pause: float) -> None:
        """Drain the rest later: after ``pause`` seconds (over the time
        budget), and then in its turn with every other connection's input."""
        if pause > 0:
            self._resume = asyncio.get_running_loop().call_later(pause, self._queue_drain)
        else:
            self._queue_drain()

    def _queue_drain(self) -> None:
        self._resume = self._ctx.input_turns.later(self._drain)

    def _pause_reading(self, chan: asyncssh.SSHServerChannel[str]) -> None:
        if not self._paused:
            self._paused = True
            chan.pause_reading()

    def _charge(self, handler: Handler, seconds: float) -> float | None:
        """Take ``seconds`` of server time from the connection's budget.
        Returns how long to stop reading it (0.0: not at all), or None when
        it was cut off for going over too often."""
        pause = self._time_budget.spent(seconds)
        if pause is None and handler.listening:
            handler.flooded(over_budget_reason(self._ctx))
        return pause

    def cut_off(self) -> bool:
        """The connection's packets went over its time budget too often:
        end the session with the reason (the handler records the offence).
        False if there is no running session to tell."""
        handler = self.handler
        if handler is None or not handler.listening:
            return False
        handler.flooded(over_budget_reason(self._ctx))
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        if self._kind is not None:
            self._ctx.stats.sessions[self._kind] -= 1
            self._kind = None
        if self.handler is not None:
            self.handler.lost(exc)
        self._chan = None
        self._peer.conn.close()  # one connection, one session: the session's end is the connection's
