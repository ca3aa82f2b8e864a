"""A person in the chat: at a terminal (PTY), or a script in line mode.

This is step 7 of DESIGN.md's path of a message. The chat core queues
messages here through the Outlet methods (``deliver``, ``notice``), which
never write: the first one in an event-loop turn marks the session due (see
flusher.py) and the rest just join the list. ``flush`` then turns the batch
into text (term/batch.py) and writes it in one write, with one erase and one
redraw of the input line. A quiet room gets each message at once; a busy one
gets larger batches, not a backlog of small writes.

The queue, the flush and the Writer (writer.py, which cuts off a client
that stops reading) are the Outbox's (outbox.py), shared with bot sessions.
"""

from __future__ import annotations

import logging

import asyncssh

from sshchat.chat.completion import complete
from sshchat.chat.hub import JoinRefused
from sshchat.chat.logged import event
from sshchat.chat.member import Member
from sshchat.chat.message import Message
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.outbox import Outbox
from sshchat.term.batch import BELL, Elsewhere, Pending, screen_rows, script_text
from sshchat.term.editor import LineEditor
from sshchat.term.render import PLAIN, Look, Style, render_notice, render_prompt, style_for_term

BRACKETED_PASTE_ON = "\x1b[?2004h"
BRACKETED_PASTE_OFF = "\x1b[?2004l"

_THEMES = {"256": Style.ANSI256, "16": Style.ANSI16, "mono": Style.MONO}


class ChatSession(Outbox[Pending]):
    """One person's chat: their input in, their outbox out (an Outlet).

    ``term`` is the terminal type of the PTY, None without one (a script:
    no editor, no echo, plain lines); ``width`` its columns.
    """

    KIND = "chat"

    def __init__(
        self,
        ctx: ServerContext,
        chan: asyncssh.SSHServerChannel[str],
        peer: Peer,
        term: str | None,
        width: int,
        no_color: bool,
    ) -> None:
        super().__init__(ctx, chan, peer)
        self._chan = chan  # its terminal's height: the input line shows no more rows than fit
        self._editor: LineEditor | None = None
        # NO_COLOR (no-color.org), sent with e.g. ssh -o SetEnv=NO_COLOR=1
        self._default_style = Style.MONO if no_color or term is None else style_for_term(term)
        if term is not None:
            self._editor = LineEditor.for_messages(width, ctx.config.max_message_chars, _height(chan))
        self._look = PLAIN  # until the person's settings are known (see _prompt)
        self._member: Member | None = None
        self._term = term
        self._claiming = False  # the name is being claimed across a cluster: input waits in _early
        self._early: list[str] = []  # input that came meanwhile (bounded by the session's input budget)
        self._early_eof = False
        self._notices = 0  # notices queued since the last write
        self._stats = ctx.stats

    def start(self) -> None:
        """Claim the name, then join the chat (or say why not, on stderr, and exit 1).

        In one process the claim answers at once and this joins on the spot;
        in a cluster the claim asks Redis, and what a script sends meanwhile
        is kept, in order, for after the join.
        """
        peer = self._peer
        self._claiming = True
        self._ctx.hub.claim(peer.username, peer.fingerprint, self._claimed)

    @property
    def _kind(self) -> str:
        """"pty" (a person at a terminal) or "line" (a script, ssh -T), as the log says it."""
        return "line" if self._editor is None else "pty"

    def _claimed(self, refusal: str | None) -> None:
        peer = self._peer
        self._claiming = False
        if self._closing:  # gone while the claim was out
            if refusal is None:
                self._ctx.hub.unclaim(peer.username, peer.fingerprint)
            return
        try:
            if refusal is not None:
                raise JoinRefused(refusal)
            try:
                self._member = self._ctx.hub.join(peer.username, peer.fingerprint, self, peer.address)
            except JoinRefused:
                self._ctx.hub.unclaim(peer.username, peer.fingerprint)
                raise
        except JoinRefused as e:
            event(
                logging.INFO, "login_refused", f"refused {peer.username} from {peer.address}: {e}",
                name=peer.username, fingerprint=peer.fingerprint, address=peer.address, kind=self._kind,
                code=e.code, reason=str(e),
            )
            self._closing = True
            self._out.exit(1, err=f"sshchat: {e}" + ("\r\n" if self._editor else "\n"))
            return
        room = self._ctx.hub.room_of(self._member).name
        event(
            logging.INFO, "login", f"{peer.username} joined from {peer.address} ({peer.fingerprint or 'no key'})",
            name=self._member.name, fingerprint=peer.fingerprint, address=peer.address, kind=self._kind, room=room,
            term=self._term[:64] if self._term else None,  # as the client sent it: bounded
        )
        if self._editor is not None:
            member = self._member
            hub = self._ctx.hub
            self._editor.completer = lambda before: complete(hub, member, before)
            self._editor.set_prompt(*self._prompt())
            self._out.write(BRACKETED_PASTE_ON)
        early, self._early = self._early, []
        for data in early:  # what came while the name was claimed, in order
            if self._closing:
                return
            self.input(data)
        if self._early_eof and not self._closing:
            self.eof()

    # ------------------------------------------------------------------ input

    @property
    def listening(self) -> bool:
        """In the chat (or about to be) and not on the way out: input still counts."""
        return (self._member is not None or self._claiming) and not self._closing

    def input(self, data: str) -> None:
        """Keys from a terminal, or bytes of lines from a script."""
        if self._member is None:  # the name is still being claimed
            self._early.append(data)
            return
        try:
            if self._editor is not None:
                self._typed(data)
            else:
                self._piped(data)
        except Exception:  # one broken session must never take others down
            event(
                logging.ERROR, "session_error", f"error handling input from {self._username}", exc_info=True,
                name=self._username, address=self._peer.address,
            )
            self.close("internal error; sorry")

    def _typed(self, data: str) -> None:
        """Keys from a person at a terminal."""
        assert self._editor is not None and self._member is not None
        result = self._editor.feed(data)
        if result.echo:
            self._out.write(result.echo)
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
        if self._feed_lines(data, self._piped_line):
            self.close(f"line longer than {self._ctx.config.max_line_chars} characters")

    def _piped_line(self, line: str) -> None:
        assert self._member is not None
        if line.strip():  # a blank line says nothing
            self._ctx.hub.handle_line(self._member, line)

    def eof(self) -> None:
        """The script's input ended: its last line counts, then goodbye."""
        if self._member is None:  # the name is still being claimed
            self._early_eof = True
            return
        assert self._member is not None
        rest = self._lines.rest()
        if rest.strip():
            self._ctx.hub.handle_line(self._member, rest)
        self.close(None)

    def resize(self, width: int) -> None:
        if self._editor is not None and width > 0:
            self._out.write(self._editor.resize(width, _height(self._chan)))

    def flooded(self, why: str | None = None) -> None:
        """More input (keys, pastes, resizes) than a person makes, or input
        that took more server time than the budget: disconnect."""
        limit = self._ctx.config.input_bytes_per_minute
        event(
            logging.WARNING, "flood_cut_off", f"cutting off {self._username} from {self._peer.address}: input flood",
            name=self._username, fingerprint=self._peer.fingerprint, address=self._peer.address, kind=self._kind,
            reason=why or f"more than {limit} bytes in a minute",
        )
        self._ctx.hub.offences.record(self._peer.address)
        if self._member is not None:
            self._ctx.hub.leave(self._member, "sent too much")
        self.close(why or f"you sent more than {limit} bytes in a minute; disconnected")

    def lost(self, exc: Exception | None) -> None:
        """The connection is gone (the client left, or we cut it off)."""
        if self._claiming:
            self._closing = True  # the claim's answer finds nobody to join
        if self._member is not None:
            self._ctx.hub.leave(self._member, "connection lost" if exc else None)
        self._detach()

    # ------------------------------------------------------- Outlet interface

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        # Outbox._queue, inlined on purpose: this runs once per delivery, 200k times a second at 500 users
        if self._closing:
            return
        self._pending.append(Elsewhere(msg) if elsewhere else msg)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._ctx.flusher.mark(self)

    def notice(self, text: str) -> None:
        self._notices += 1  # what is not a message in this turn's batch (SessionStats.wrote)
        self._queue(text)

    def prompt_changed(self) -> None:
        if self._member is not None:
            self._username = self._member.name
        if self._editor is not None:
            self._out.write(self._editor.set_prompt(*self._prompt()))

    def _prompt(self) -> tuple[str, str]:
        """The prompt, and the Look from the person's settings (both change together)."""
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
        reason_line = render_notice(reason, self._look.style) if reason else ""
        if self._editor is not None:
            out = self._editor.erase() + (reason_line + "\r\n" if reason else "")
            out += BRACKETED_PASTE_OFF
        else:
            out = reason_line + "\n" if reason else ""
        self._out.exit(0, out)

    # ----------------------------------------------------------------- output

    def write_batch(self, items: list[Pending]) -> None:
        """Everything pending in one write, with one redraw; then, with
        --metrics, counted and timed (once per write, see SessionStats.wrote)."""
        editor = self._editor
        if editor is None:  # scripts: plain lines, nothing else, each encoded once for all
            self._out.write_encoded(script_text(items))
        else:
            member = self._member
            key, bell = (member.key, member.prefs.bell) if member is not None else ("", "off")
            rows, ring = screen_rows(items, self._look, editor.width, self._username, key, bell)
            out = editor.above("\r\n".join(rows))
            self._out.write(out + BELL if ring else out)
        stats = self._stats
        if stats.latency is not None:  # --metrics: deliveries counted and timed (nothing without it)
            stats.wrote(items, self._notices)
        self._notices = 0

    def _cut_off(self, backlog: int) -> None:
        """The Writer gave up on a client that is not reading: leave, queue nothing more."""
        super()._cut_off(backlog)
        if self._member is not None:
            self._ctx.hub.leave(self._member, "too slow to keep up; disconnected")


def _height(chan: asyncssh.SSHServerChannel[str]) -> int | None:
    """The terminal's rows, as the client last said (None: not said)."""
    size = getattr(chan, "get_terminal_size", None)  # test doubles may not have it
    return (size()[1] or None) if size is not None else None
