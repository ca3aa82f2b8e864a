"""The server under test: spawn sshchat in a temp dir, or attach to a running one.

A spawned server gets limits that let one machine play hundreds of users
(burst and input budget raised; per-address limit raised too, though the
generator gives each user its own 127.x address anyway), listens on
127.0.0.1 port 0, logs to a file we read afterwards, and is stopped by its
pid: SIGTERM, then SIGKILL if it has not exited in time. Nothing else is
ever signalled.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procstats import alive, listening_ports

BENCH_ENV = {
    "SSHCHAT_RATE_BURST": "1000000",
    "SSHCHAT_INPUT_BYTES_PER_MINUTE": "1000000000",
    "SSHCHAT_MAX_PER_ADDRESS": "100000",
    "SSHCHAT_LOG_LEVEL": "warning",
}
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_BAD = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


class ServerError(Exception):
    """The server could not be started or found; ``str()`` says why."""


class ServerUnderTest:
    """Where the server listens, its pid (if known) and, if spawned, how to stop it."""

    def __init__(self, host: str, port: int, pid: int | None, proc: subprocess.Popen[bytes] | None = None,
                 tmp: Path | None = None) -> None:
        self.host, self.port, self.pid = host, port, pid
        self.proc, self.tmp = proc, tmp
        self.exit_code: int | None = None

    @property
    def spawned(self) -> bool:
        return self.proc is not None

    @property
    def log_path(self) -> Path | None:
        return self.tmp / "server.log" if self.tmp else None

    @classmethod
    def spawn(cls, env_overrides: dict[str, str], src: str | None = None, timeout: float = 30.0,
              db: str | None = None, extra_args: tuple[str, ...] = ()) -> ServerUnderTest:
        """Start ``python -m sshchat serve`` on 127.0.0.1:0 and find its port.

        ``src``: a source tree to run the server from (e.g. an exported
        commit), so a run measures a fixed revision while the working tree
        changes, or compares two. ``python -m`` puts its cwd first on the path.
        ``db``: the store (default SQLite in the temp dir); ``extra_args``
        more flags (``--bus URL``, ``--workers 2``: bench/cluster.py).

        The port comes from the "listening on" line when the server prints
        it, else from the process's listening socket in /proc (some
        revisions log that line at INFO, hidden at ``warning``).
        """
        tmp = Path(tempfile.mkdtemp(prefix="sshchat-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSHCHAT_")}
        env.update(BENCH_ENV)
        env.update(env_overrides)
        if src:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        with open(tmp / "server.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sshchat", "serve", "--host", "127.0.0.1", "--port", "0",
                 "--host-key", str(tmp / "host"), "--db", db or str(tmp / "chat.db"), *extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=src or None,
                start_new_session=True,  # a Ctrl-C on the generator reaches us, not it; we stop it
            )
        server = cls("127.0.0.1", 0, proc.pid, proc, tmp)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = server.log_text()[-2000:]
                server.cleanup()
                raise ServerError(f"server exited with status {proc.returncode}:\n{tail}")
            m = _LISTENING.search(server.log_text())
            ports = [p for a, p in listening_ports(proc.pid) if a == "127.0.0.1"]
            # the process's port, for a server that prints no such line; only while it has one
            # (sshchat --metrics opens a second, for HTTP, after its SSH port)
            if m or len(ports) == 1:
                server.port = int(m.group(1)) if m else ports[0]
                return server
            time.sleep(0.05)
        server.stop()
        server.cleanup()
        raise ServerError(f"server did not start listening within {timeout:g} s")

    def log_text(self) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return path.read_text(errors="replace")

    def log_summary(self) -> dict[str, Any]:
        """Warnings and errors in the spawned server's log, grouped by shape."""
        if not self.spawned:
            return {}
        text = self.log_text()
        bad = [line for line in text.splitlines() if _BAD.search(line)]
        shapes: Counter[str] = Counter()
        for line in bad:
            body = line.split(" ", 2)[-1] if line[:2].isdigit() else line  # drop the timestamp
            shapes[re.sub(r"\d+", "N", body)[:200]] += 1
        return {
            "lines": len(text.splitlines()),
            "warnings_or_errors": len(bad),
            "kinds": dict(shapes.most_common(10)),
            "tail": text.splitlines()[-5:],
        }

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM the spawned server by its pid, then SIGKILL after ``timeout``."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            self.exit_code = proc.returncode if proc else None
            return self.exit_code
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self.exit_code = proc.returncode
        return self.exit_code

    def cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def measurable(self) -> bool:
        return self.pid is not None and alive(self.pid)
