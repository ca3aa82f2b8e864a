"""Shared fixtures: an in-process server on 127.0.0.1:0 and scripted clients."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from bench.client import KeylessClient
from sshchat.app import App
from sshchat.config import Config

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Client:
    """A scripted SSH chat client (asyncssh), reading everything it is sent."""

    def __init__(self, conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess) -> None:
        self.conn = conn
        self.process = process
        self.output = ""
        self.stderr = ""
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.ensure_future(self._pump(process.stdout, "output")),
            asyncio.ensure_future(self._pump(process.stderr, "stderr")),
        ]

    async def _pump(self, stream: asyncssh.SSHReader, attr: str) -> None:
        while True:
            data = await stream.read(65536)
            if not data:
                break
            setattr(self, attr, getattr(self, attr) + data)
            self._changed.set()
        self._changed.set()

    @property
    def text(self) -> str:
        """Output with colour and cursor codes removed."""
        return ANSI_RE.sub("", self.output).replace("\r", "")

    def send(self, data: str) -> None:
        self.process.stdin.write(data)

    def line(self, text: str) -> None:
        self.process.stdin.write(text + "\n")

    async def wait_for(
        self, pred: str | re.Pattern[str] | Callable[[Client], bool], timeout: float = 5.0
    ) -> None:
        """Wait until the text contains ``pred``, matches it, or pred(self) holds."""
        if isinstance(pred, str):
            check: Callable[[Client], bool] = lambda c: pred in c.text
        elif isinstance(pred, re.Pattern):
            check = lambda c: pred.search(c.text) is not None
        else:
            check = pred
        try:
            async with asyncio.timeout(timeout):
                while not check(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {pred!r}; got:\n{self.text}\nstderr: {self.stderr}"
            ) from None

    async def exit_status(self, timeout: float = 5.0) -> int | None:
        async with asyncio.timeout(timeout):
            await self.process.wait_closed()
            for reader in self._readers:
                await reader
        return self.process.exit_status

    async def close(self) -> None:
        self.conn.close()
        for reader in self._readers:
            reader.cancel()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), 2)
        except (TimeoutError, Exception):
            pass


@dataclasses.dataclass
class Server:
    app: App
    port: int
    tmp: Path
    clients: list[Client] = dataclasses.field(default_factory=list)

    async def connect(
        self,
        name: str,
        *,
        key: asyncssh.SSHKey | None = None,
        pty: bool = False,
        term: str = "xterm",
        width: int = 80,
        command: str | None = None,
        wait_joined: bool = True,
        **options: Any,
    ) -> Client:
        conn = await asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=name,
            known_hosts=None,
            client_keys=[key] if key else None,
            agent_path=None,
            client_factory=None if key else KeylessClient,
            **options,
        )
        process = await conn.create_process(
            command,
            term_type=term if pty else None,
            term_size=(width, 24) if pty else None,
            encoding="utf-8",
        )
        client = Client(conn, process)
        self.clients.append(client)
        if wait_joined and command is None:
            await client.wait_for(lambda c: "Welcome" in c.text or c.stderr or c.process.exit_status is not None)
        return client


def make_config(tmp: Path, **overrides: Any) -> Config:
    # Scripted clients send in bursts no person could type; the tests of
    # flood control set their own limits.
    settings: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "host_key": str(tmp / "host"), "db": ":memory:",
        "rate_burst": 100_000, "input_bytes_per_minute": 1 << 30, "new_connections_burst": 100_000,
    }
    return Config(**{**settings, **overrides})


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with settings overridden; all stopped at the end."""
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        app = App(make_config(tmp_path, **overrides))
        (host, port), *_ = await app.start()
        server = Server(app, port, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        for client in server.clients:
            await client.close()
        await server.app.stop()


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> Server:
    return await start_server(shutdown_grace=0.5)


@pytest.fixture(scope="session")
def keys() -> dict[str, asyncssh.SSHKey]:
    """A few client keys, made once (ed25519 is cheap)."""
    return {n: asyncssh.generate_private_key("ssh-ed25519") for n in ("alice", "bob", "carol", "mallory")}
