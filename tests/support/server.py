"""sshchat servers for tests: in this process (:class:`Server`, what most
tests use, so that a test can also look at the server's own state) or as
a real `sshchat serve` process (:class:`ServerProcess`, for signals,
restarts and clients that must talk to a separate process).

A process's log is read by a thread for the life of the process: a server
whose stderr pipe nobody reads would block on its next log line once the
pipe's buffer is full, and a test would measure that instead of the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh

from sshchat.app import App
from sshchat.config import Config
from tests.support.clients import Client, KeylessClient


@dataclasses.dataclass
class Server:
    app: App
    port: int
    tmp: Path
    clients: list[Client] = dataclasses.field(default_factory=list)

    async def connect(self, name: str, **options: Any) -> Client:
        """A client of this server, closed at the end of the test (see :func:`connect`)."""
        client = await connect(self.port, name, **options)
        self.clients.append(client)
        return client


async def connect(
    port: int,
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
    """A scripted client logged in as ``name`` on 127.0.0.1:``port``
    (keyless unless ``key``); it has joined (or been refused) on return."""
    conn = await asyncssh.connect(
        "127.0.0.1",
        port,
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
    if wait_joined and command is None:
        try:
            await client.wait_for(lambda c: "Welcome" in c.text or bool(c.stderr) or c.process.exit_status is not None)
        except BaseException:
            await client.close()
            raise
    return client


async def login(port: int, name: str, *, key: asyncssh.SSHKey | None = None, timeout: float = 10.0) -> Client:
    """A client welcomed as ``name`` within ``timeout`` s (a refusal fails the
    test); for tests where logging in is a step, not what is tested."""
    client = await connect(port, name, key=key, wait_joined=False)
    try:
        await client.wait_for("Welcome", timeout=timeout)
    except BaseException:
        await client.close()
        raise
    return client


def make_config(tmp: Path, **overrides: Any) -> Config:
    """Settings for an in-process server on 127.0.0.1, port chosen by the OS."""
    # Scripted clients send in bursts no person could type; the tests of
    # flood control set their own limits.
    settings: dict[str, Any] = {
        "host": "127.0.0.1", "port": 0, "host_key": str(tmp / "host"), "db": ":memory:",
        "rate_burst": 100_000, "input_bytes_per_minute": 1 << 30, "new_connections_burst": 100_000,
    }
    return Config(**{**settings, **overrides})


class ServerProcess:
    """One `python -m sshchat serve` on 127.0.0.1 with a port chosen by the OS."""

    def __init__(
        self, tmp: Path, *args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None, bare: bool = False,
    ) -> None:
        """``bare``: pass only ``args`` (to test settings from files and env)."""
        argv = [sys.executable, "-m", "sshchat", "serve"]
        if not bare:
            argv += ["--host", "127.0.0.1", "--port", "0"]
        if "--host-key" not in args and not bare:
            argv += ["--host-key", str(tmp / "host")]
        if "--db" not in args and not bare:
            argv += ["--db", str(tmp / "chat.db")]
        self.proc = subprocess.Popen(
            [*argv, *args], stderr=subprocess.PIPE, text=True, cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.log: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(20) or not self.port:
            self.proc.kill()
            raise AssertionError("server did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if not self.port:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    self._ready.set()
        self._ready.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait; killed if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@contextlib.contextmanager
def disk_full(pid: int) -> Iterator[None]:
    """While inside, every write process ``pid`` makes to a file fails, as
    with a full disk (RLIMIT_FSIZE 0: EFBIG; Python ignores SIGXFSZ); on the
    way out, space returns."""
    _soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


def admin_keys_file(folder: Path, *keys: asyncssh.SSHKey) -> Path:
    """An authorized_keys-format file (``folder``/admins) naming ``keys`` as
    the server's admins, for ``--admin-keys``: written one way for every test."""
    admins = folder / "admins"
    admins.write_text("".join(key.export_public_key().decode() for key in keys))
    return admins
