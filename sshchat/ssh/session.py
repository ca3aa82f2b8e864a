"""One connected terminal: input in, the person's outbox out.

This is step 7 of DESIGN.md's path of a message. The chat core queues
messages here through the Outlet methods (``deliver``, ``notice``), which
never write: the first one in an event-loop turn marks the session due (see
flusher.py) and the rest just join the list. ``flush`` then writes everything pending in one
``channel.write``, with one erase and one redraw of the input line. A quiet
room gets each message at once; a busy one gets larger batches, not a
backlog of small writes.

A client that stops reading is never awaited: if what we have written but
the network has not taken passes ``outbox_limit``, the session is cut off.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import NamedTuple

import asyncssh

from sshchat.chat.completion import complete
from sshchat.chat.hub import JoinRefused
from sshchat.chat.member import Member
from sshchat.chat.message import SPOKEN, Kind, Message
from sshchat.chat.names import words
from sshchat.chat.ratelimit import TokenBucket
from sshchat.ssh import bots
from sshchat.ssh.context import ServerContext
from sshchat.ssh.patches import direct_write
from sshchat.term.editor import LineEditor
from sshchat.term.render import (
    Look,
    Style,
    plain,
    render_notice,
    render_prompt,
    render_rows,
    style_for_term,
)
from sshchat.term.wrap import wrap

log = logging.getLogger("sshchat")

BRACKETED_PASTE_ON = "\x1b[?2004h"
BRACKETED_PASTE_OFF = "\x1b[?2004l"



_RESIZE_COST = 256  # input bytes a window-size change counts as (it costs a redraw)
_RINGS_ALL = frozenset({Kind.CHAT, Kind.EMOTE, Kind.PRIVATE})
_THEMES = {"256": Style.ANSI256, "16": Style.ANSI16, "mono": Style.MONO}


class Elsewhere(NamedTuple):
    """A message from a room the person is not looking at (it names them)."""

    msg: Message


class BotLine(NamedTuple):
    """A line a bot command prints as it is (a message, JSON, a name)."""

    text: str


@lru_cache(maxsize=4096)
def _plain_line(item: Message | str | Elsewhere | BotLine) -> bytes:
    """One message or notice as a script reads it, encoded once for every
    such reader (a Message hashes by identity; equal notices share a line)."""
    if item.__class__ is BotLine:
        text = item.text  # type: ignore[union-attr]
    elif isinstance(item, str):
        text = render_notice(item, Style.MONO)
    else:
        text = plain(item.msg if isinstance(item, Elsewhere) else item)  # type: ignore[union-attr,arg-type]
    return (text + "\n").encode("utf-8", "replace")


class ChatSession(asyncssh.SSHServerSession[str]):
    """The chat shell of one SSH session, with or without a PTY."""

    def __init__(
        self,
        ctx: ServerContext,
        conn: asyncssh.SSHServerConnection,
        username: str,
        fingerprint: str | None,
        address: str,
    ) -> None:
        self._ctx = ctx
        self._loop = asyncio.get_running_loop()
        self._conn = conn
        self._username = username
        self._fingerprint = fingerprint
        self._address = address
        self._chan: asyncssh.SSHServerChannel[str] | None = None
        self._direct = False  # write packets ourselves (direct_write.send_data)?
        self._term: str | None = None
        self._width = 80
        self._command: str | None = None
        self._editor: LineEditor | None = None
        self._default_style = Style.MONO  # from the terminal type and NO_COLOR
        self._look = Look()  # from that and the person's settings
        self._member: Member | None = None
        self._pending: list[Message | str | Elsewhere | BotLine] = []
        self._flush_scheduled = False
        self._closing = False
        self._partial = ""  # an unfinished input line, without a PTY
        self._bot: bots.BotSession | None = None  # set for `ssh host say|tail|who`
        per_minute = ctx.config.input_bytes_per_minute
        self._input_budget = TokenBucket(per_minute, per_minute / 60, self._loop.time)

    # ------------------------------------------------------ asyncssh callbacks

    def connection_made(self, chan: asyncssh.SSHServerChannel[str]) -> None:  # type: ignore[override]
        self._chan = chan
        # asyncssh's own channels may take the direct packet writer
        self._direct = isinstance(chan, asyncssh.SSHServerChannel)

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
        if self._command is not None:
            self._start_bot(self._command)
            return
        if self._term is not None:
            # NO_COLOR (no-color.org), sent with e.g. ssh -o SetEnv=NO_COLOR=1
            no_color = "NO_COLOR" in chan.get_environment()
            self._default_style = Style.MONO if no_color else style_for_term(self._term)
            limit = self._ctx.config.max_message_chars
            # Room to paste and trim, but not without end: every key lays the line out.
            self._editor = LineEditor(self._width, max_submit=limit, max_chars=2 * limit)
        try:
            self._member = self._ctx.hub.join(
                self._username, self._fingerprint, self, self._address
            )
        except JoinRefused as e:
            log.info("refused %s from %s: %s", self._username, self._address, e)
            chan.write_stderr(f"sshchat: {e}" + ("\r\n" if self._editor else "\n"))
            chan.exit(1)
            return
        log.info(
            "%s joined from %s (%s)", self._username, self._address, self._fingerprint or "no key"
        )
        if self._editor is not None:
            member = self._member
            hub = self._ctx.hub
            self._editor.completer = lambda before: complete(hub, member, before)
            self._editor.set_prompt(*self._prompt())
            self._write(BRACKETED_PASTE_ON)

    def data_received(self, data: str, datatype: asyncssh.DataType) -> None:
        if self._bot is not None and not self._closing:
            if self._input_budget.take(len(data.encode("utf-8", "surrogatepass"))):
                lines, too_long = self._lines(data)
                for line in lines:
                    self._bot.line(line)
                if too_long:
                    self._bot_finish(1, "line too long")
            else:
                self._bot_finish(1, "sent too much input")
            return
        if self._member is None or self._closing:
            return
        if not self._input_budget.take(len(data.encode("utf-8", "surrogatepass"))):
            self._input_flood()
            return
        try:
            if self._editor is not None:
                self._typed(data)
            else:
                self._piped(data)
        except Exception:  # one broken session must never take others down
            log.exception("error handling input from %s", self._username)
            self.close("internal error; sorry")

    def _input_flood(self) -> None:
        """More input (keys, pastes, resizes) than a person makes: disconnect."""
        limit = self._ctx.config.input_bytes_per_minute
        log.warning("cutting off %s from %s: input flood", self._username, self._address)
        self._ctx.hub.offences.record(self._address)
        if self._member is not None:
            self._ctx.hub.leave(self._member, "sent too much")
        self.close(f"you sent more than {limit} bytes in a minute; disconnected")

    def eof_received(self) -> bool:
        if self._bot is not None and not self._closing:
            if self._partial.strip():
                self._bot.line(self._partial)
            self._partial = ""
            self._bot.eof()
            return True
        if self._member is not None and not self._closing:
            if self._partial.strip():
                self._ctx.hub.handle_line(self._member, self._partial)
            self._partial = ""
            self.close(None)
        return True  # we close the channel ourselves, after the goodbye

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self._closing:
            return
        if not self._input_budget.take(_RESIZE_COST):  # a resize storm is a flood too
            self._input_flood()
            return
        if self._editor is not None and width > 0:
            self._write(self._editor.resize(width))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._bot is not None:
            self._bot.ended()
        if self._member is not None:
            self._ctx.hub.leave(self._member, "connection lost" if exc else None)
        self._chan = None
        self._pending.clear()
        self._conn.close()  # one connection, one session: the session's end is the connection's

    # ------------------------------------------------------------------- bots

    def _start_bot(self, command: str) -> None:
        """Run a bot command (say, tail, who) instead of the chat shell."""
        try:
            cmd = bots.parse(command)
        except bots.UsageError as e:
            assert self._chan is not None
            self._chan.write_stderr(f"sshchat: {e}\n{bots.USAGE}")
            self._chan.exit(2)
            self._closing = True
            return
        self._bot = bots.BotSession(self._ctx.hub, cmd, self._bot_write, self._bot_finish)
        self._bot.start(self._username, self._fingerprint, self._address)

    def _bot_write(self, line: str) -> None:
        self._queue(BotLine(line))  # batched like everyone's output

    def _bot_finish(self, status: int, error: str | None) -> None:
        """End a bot session once: what is queued, the error (if any) on
        stderr, then the status."""
        if self._closing or self._chan is None:
            return
        self.flush()
        self._closing = True
        if self._bot is not None:
            self._bot.ended()
        if error:
            self._chan.write_stderr(f"sshchat: {error}\n")
        self._chan.exit(status)

    # ------------------------------------------------------------------ input

    def _typed(self, data: str) -> None:
        """Keys from a person at a terminal."""
        assert self._editor is not None and self._member is not None
        result = self._editor.feed(data)
        if result.echo:
            self._write(result.echo)
        for error in result.errors:
            self.notice(error)
        for line in result.lines:
            if self._closing:
                return
            self._ctx.hub.handle_line(self._member, line)
        if result.leave:
            self.close(None)

    def _piped(self, data: str) -> None:
        """Lines from a script or ``ssh -T``: each \\n-terminated line counts."""
        assert self._member is not None
        lines, too_long = self._lines(data)
        for line in lines:
            if self._closing:
                return
            if line.strip():
                self._ctx.hub.handle_line(self._member, line)
        if too_long:
            self.close(f"line longer than {self._ctx.config.max_line_chars} characters")

    def _lines(self, data: str) -> tuple[list[str], bool]:
        """Complete lines (\n or \r\n ended) so far, and whether the unfinished
        one has grown past max_line_chars (then it is dropped)."""
        *lines, self._partial = (self._partial + data).split("\n")
        too_long = len(self._partial) > self._ctx.config.max_line_chars
        if too_long:
            self._partial = ""
        return [line.rstrip("\r") for line in lines], too_long

    # ------------------------------------------------------- Outlet interface

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        # _queue, inlined on purpose: this runs once per delivery, 200k times a second at 500 users
        if self._closing:
            return
        self._pending.append(Elsewhere(msg) if elsewhere else msg)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ctx.flusher.mark(self)

    def notice(self, text: str) -> None:
        self._queue(text)

    def prompt_changed(self) -> None:
        if self._member is not None:
            self._username = self._member.name
        if self._editor is not None:
            self._write(self._editor.set_prompt(*self._prompt()))

    def _prompt(self) -> tuple[str, str]:
        assert self._member is not None
        prefs = self._member.prefs
        style = _THEMES[prefs.theme] if prefs.theme else self._default_style
        self._look = Look(style, prefs.timestamps, prefs.zone)
        room = self._ctx.hub.room_of(self._member).name
        return render_prompt(self._member.name, room, style)

    def close(self, reason: str | None) -> None:
        """Say goodbye (and why), then end the session; safe to call twice."""
        if self._closing:
            return
        self.flush()
        self._closing = True
        if self._member is not None:
            self._ctx.hub.leave(self._member)
        chan = self._chan
        if chan is None:
            return
        reason_line = render_notice(reason, self._look.style) if reason else ""
        if self._editor is not None:
            out = self._editor.erase() + (reason_line + "\r\n" if reason else "")
            out += BRACKETED_PASTE_OFF
        else:
            out = reason_line + "\n" if reason else ""
        self._write(out)
        if self._chan is not None:
            self._chan.exit(0)

    # ----------------------------------------------------------------- output

    def _queue(self, item: Message | str | Elsewhere | BotLine) -> None:
        if self._closing:
            return
        self._pending.append(item)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ctx.flusher.mark(self)

    def flush(self) -> None:
        """Write everything pending in one write, with one redraw."""
        self._flush_scheduled = False
        if not self._pending or self._closing:
            return
        items, self._pending = self._pending, []
        if self._editor is None:  # scripts: plain lines, nothing else, each encoded once for all
            if len(items) == 1:
                self._write_encoded(_plain_line(items[0]))
            else:
                self._write_encoded(b"".join([_plain_line(item) for item in items]))
            return
        look, width, me = self._look, self._editor.width, self._username
        my_key = self._member.key if self._member is not None else ""
        bell = self._member.prefs.bell if self._member is not None else "off"
        ring = False
        rows: list[str] = []
        for item in items:
            if item.__class__ is Message:
                msg, elsewhere = item, False
            elif isinstance(item, str):
                rows.extend(wrap(render_notice(item, look.style), 3, width))
                continue
            else:
                msg, elsewhere = item.msg, True  # type: ignore[union-attr]
            mine = msg.sender == me
            # a line from elsewhere came because it names them: no need to look again
            mention = not mine and (elsewhere or (msg.kind in SPOKEN and my_key in words(msg.text)))
            rows.extend(render_rows(msg, look, elsewhere, mention, width))
            if not mine and (mention or msg.kind is Kind.PRIVATE or (bell == "all" and msg.kind in _RINGS_ALL)):
                ring = True
        out = self._editor.above("\r\n".join(rows))
        self._write(out + "\x07" if ring and bell != "off" else out)

    def _write(self, data: str) -> None:
        if data:
            self._write_encoded(data.encode("utf-8", "replace"), data)

    def _write_encoded(self, data: bytes, text: str | None = None) -> None:
        """Send UTF-8 bytes: as one packet of our own where we can, else
        through asyncssh's channel (which takes text: ``text`` if we have it)."""
        chan = self._chan
        if chan is None:
            return
        try:
            # sent directly, the backlog is the socket transport's (the channel's buffer was empty, and still is)
            if not self._direct or (backlog := direct_write.send_data(chan, data)) == direct_write.NOT_SENT:
                chan.write(data.decode("utf-8") if text is None else text)
                backlog = chan.get_write_buffer_size() + _transport_backlog(self._conn)
        except OSError:  # the channel is already closing
            return
        if backlog > self._ctx.config.outbox_limit and not self._closing:
            self._cut_off(backlog)

    def _cut_off(self, backlog: int) -> None:
        """Drop a client that is not reading, without waiting on it."""
        log.warning(
            "cutting off %s from %s: %d bytes unsent", self._username, self._address, backlog
        )
        self._closing = True
        self._pending.clear()
        if self._member is not None:
            self._ctx.hub.leave(self._member, "too slow to keep up; disconnected")
        self._chan = None
        self._conn.abort()


def _transport_backlog(conn: asyncssh.SSHServerConnection) -> int:
    """Bytes queued in the connection's socket transport, not yet sent.

    The channel's own buffer only fills once the client's SSH window is used
    up (about 2 MB for OpenSSH); until then unsent data piles up here.
    """
    transport = getattr(conn, "_transport", None)
    return transport.get_write_buffer_size() if transport is not None else 0
