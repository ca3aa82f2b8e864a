"""A PostgreSQL server of the tests' own, for the PostgreSQL store.

Started once per session from the distribution's binaries, in a temporary
folder, on a free loopback port, and stopped by its pid at the end. Each test
gets a database of its own (:meth:`PostgresServer.new_database`), so tests
never see each other's rows.

PostgreSQL refuses to run as root: when the tests run as root, initdb and
postgres run as ``nobody`` (setpriv) in a folder chowned to it. fsync is off:
a test that crashes the machine has other problems, and the suite stays fast.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "sshchat"


def binaries() -> Path | None:
    """The folder of initdb and postgres (the newest installed), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One postgres on 127.0.0.1:``port``; ``url(name)`` reaches database ``name``."""

    def __init__(self, bin_dir: Path, durable: bool = False) -> None:
        """``durable``: PostgreSQL's own defaults (fsync, synchronous commit), for a benchmark."""
        self.bin = bin_dir
        self._fast = [] if durable else [
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
        ]
        self.dir = Path(tempfile.mkdtemp(prefix="sshchat-pg-"))
        self.port = free_port()
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:  # postgres will not run as root
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self._as = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        subprocess.run(
            [*self._as, str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", USER, "--auth=trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, cwd=self.dir,
        )
        self.start()

    def start(self) -> None:
        """Run postgres on the folder (again, after :meth:`halt`) and wait until it answers."""
        self.proc = subprocess.Popen(
            [*self._as, str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-k", str(self.dir),
             "-p", str(self.port), "-h", "127.0.0.1", *self._fast,
             "-c", "max_connections=200", "-c", "logging_collector=off"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "ab"), cwd=self.dir,  # noqa: SIM115
        )
        deadline = time.monotonic() + 30
        while self.psql("postgres", "SELECT 1", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("postgres did not start:\n" + (self.dir / "log").read_text())
            time.sleep(0.05)  # polling the server's readiness, not a guessed wait

    def url(self, name: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def psql(self, database: str, sql: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``sql`` in ``database`` (as the tests' superuser), as a side door to the server."""
        return subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database, "-c", sql],
            check=check, capture_output=True, text=True,
        )

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return self.url(name)

    def halt(self) -> None:
        """Stop the server by its pid (a fast shutdown: connections are cut), keeping its data."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.halt()
        shutil.rmtree(self.dir, ignore_errors=True)
