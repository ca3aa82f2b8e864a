"""Start `sshchat serve` as a real process for tests, and keep its log drained.

The log is read by a thread for the life of the process: a server whose
stderr pipe nobody reads would block on its next log line once the pipe's
buffer is full, and a test would measure that instead of the server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path


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
