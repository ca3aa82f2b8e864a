"""The one place a session's bytes go to its SSH channel.

Both kinds of session (a chat, a bot command) write through a Writer, so
three things are decided here and nowhere else:

- how: encoded once, as one packet of our own (``patches.direct_write.send_data``)
  where the channel allows it, else into asyncssh's send buffer as the bytes
  they are (``queue_data``); with the patches off, as text through
  asyncssh's ``chan.write``, which encodes it;
- how much may wait: ``channel.write()`` never blocks and its buffer has no
  bound, so a client that stops reading would grow our memory without end.
  After every write the bytes not yet taken by the network are compared with
  ``outbox_limit``; past it the session is cut off, never awaited (one slow
  reader must not stall a room);
- the end: the last words, the error line on stderr and the exit status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncssh

from sshchat.ssh.patches import direct_write

log = logging.getLogger("sshchat")


class Writer:
    """Writes one session's output; cut off once ``limit`` bytes are unsent.

    ``cut_off(backlog)`` is called once when that happens, before the
    connection is aborted: the session stops queueing and leaves the chat.
    """

    __slots__ = ("_chan", "_conn", "_cut_off", "_direct", "_ending", "_limit")

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[str],
        conn: asyncssh.SSHServerConnection,
        limit: int,
        cut_off: Callable[[int], None],
    ) -> None:
        self._chan: asyncssh.SSHServerChannel[str] | None = chan
        self._conn = conn
        self._limit = limit
        self._cut_off = cut_off
        # asyncssh's own channels may take the direct packet writer (stand-ins in tests do not)
        self._direct = isinstance(chan, asyncssh.SSHServerChannel)
        self._ending = False  # the last words are out: a backlog no longer matters

    @property
    def open(self) -> bool:
        """Can anything still be written (not cut off, connection not lost)?"""
        return self._chan is not None

    def write(self, text: str) -> None:
        """Send ``text`` (nothing if empty)."""
        if not text:
            return
        if self._direct and direct_write.installed():
            self._send(text.encode("utf-8", "replace"), None)
        else:  # asyncssh encodes it: once
            self._send(None, text)

    def write_encoded(self, data: bytes) -> None:
        """Send UTF-8 ``data`` (encoded once for many readers)."""
        self._send(data, None)

    def _send(self, data: bytes | None, text: str | None) -> None:
        """Send ``data`` (else ``text``): as one packet of our own where we
        can, else into asyncssh's send buffer as bytes; only with the patches
        off (or a stand-in channel) does asyncssh's ``chan.write`` take text."""
        chan = self._chan
        if chan is None:
            return
        try:
            if self._direct and data is not None:
                # sent directly, the backlog is the socket transport's (the channel's buffer was empty, and still is)
                backlog = direct_write.send_data(chan, data)
                if backlog == direct_write.NOT_SENT:
                    if not direct_write.queue_data(chan, data):
                        chan.write(data.decode("utf-8"))  # the patches are off: asyncssh takes text
                    backlog = chan.get_write_buffer_size() + direct_write.transport_backlog(self._conn)
            else:
                chan.write(text if text is not None else (data or b"").decode("utf-8"))
                backlog = chan.get_write_buffer_size() + direct_write.transport_backlog(self._conn)
        except OSError:  # the channel is already closing
            return
        if backlog > self._limit and not self._ending:
            self._chan = None  # nothing more goes to a client that is not reading
            self._cut_off(backlog)
            self._conn.abort()

    def write_stderr(self, text: str) -> None:
        """Send ``text`` on stderr (through asyncssh: rare, a line or two)."""
        chan = self._chan
        if chan is None or not text:
            return
        try:
            chan.write_stderr(text)
        except OSError:  # the channel is already closing
            return

    def exit(self, status: int, out: str = "", err: str = "") -> None:
        """End the session: ``out`` (last words), ``err`` on stderr, then
        the exit status. Past this point a backlog cuts nothing off: the
        channel is closing anyway."""
        self._ending = True
        self.write(out)
        chan = self._chan
        if chan is None:
            return
        if err:
            chan.write_stderr(err)
        chan.exit(status)

    def detach(self) -> None:
        """The connection is gone: write nothing more."""
        self._chan = None

