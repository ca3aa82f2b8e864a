"""A session driven through asyncssh's callbacks with stand-ins for the
channel and the connection, so that what it writes (and its exit status)
can be read exactly, with no network and no SSH.

``open_session`` makes the session object asyncssh would make and walks it
through the requests a client sends: a PTY or none, then a shell or an exec
command (a bot).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sshchat.chat.hub import Hub
from sshchat.config import Config
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.session import Session


@dataclass
class FakeTransport:
    backlog: int = 0  # bytes the socket has not taken yet

    def get_write_buffer_size(self) -> int:
        return self.backlog


@dataclass
class FakeConn:
    _transport: FakeTransport = field(default_factory=FakeTransport)
    aborted: bool = False
    closed: bool = False

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeChannel:
    writes: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    status: int | None = None

    def write(self, data: str) -> None:
        self.writes.append(data)

    def write_stderr(self, data: str) -> None:
        self.stderr.append(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_environment(self) -> dict[str, str]:
        return {}

    def exit(self, status: int) -> None:
        self.status = status


def open_session(
    hub: Hub, name: str, *, pty: bool, command: str | None = None, **config: Any
) -> tuple[Session, FakeChannel, FakeConn]:
    """A started session of ``name``: the chat (``command`` None) or a bot command."""
    conn, chan = FakeConn(), FakeChannel()
    session = Session(ServerContext(hub, Config(**config)), Peer(conn, name, None, "127.0.0.1"))  # type: ignore[arg-type]
    session.connection_made(chan)  # type: ignore[arg-type]
    if pty:
        session.pty_requested("xterm", (80, 24, 0, 0), {})
    if command is None:
        session.shell_requested()
    else:
        session.exec_requested(command)
    session.session_started()
    return session, chan, conn


async def settle() -> None:
    """A few loop turns: the memory store commits at once and the flusher
    writes on a later turn (call_soon). Counting turns, not waiting for
    time, is exact here: fake channels and the memory store do no I/O and
    read no clock, and "out within a loop turn or so" is the behaviour
    under test."""
    for _ in range(3):
        await asyncio.sleep(0)
