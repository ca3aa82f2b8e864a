"""What passes between the supervisor and a worker, over the worker's stdin
and stdout.

- stdin, parent to worker: one JSON line, the parent's resolved settings
  (so every worker, restarted ones included, runs with exactly the same
  ones, whatever happened to the config file since); then nothing. The
  parent never closes it: end of file means the parent is gone (even
  killed with SIGKILL, when the kernel closes its end), and the worker
  stops as on SIGTERM instead of lingering without a supervisor.
- stdout, worker to parent: one JSON line once the worker listens, the
  addresses it bound. Then the worker points its stdout at its stderr, so
  that a stray print can neither be taken for a message nor fill a pipe
  nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from sshchat.config import Config, ConfigError, load

Address = tuple[str, int]


def config_line(config: Config) -> bytes:
    """The settings a worker is started with, as the line on its stdin."""
    return json.dumps(dataclasses.asdict(config)).encode() + b"\n"


def ready_line(addresses: list[Address]) -> bytes:
    return json.dumps({"listening": addresses}).encode() + b"\n"


def parse_ready(line: bytes) -> list[Address] | None:
    """The addresses in a worker's readiness line; None if it is not one."""
    try:
        data = json.loads(line)
        return [(str(host), int(port)) for host, port in data["listening"]]
    except (ValueError, TypeError, KeyError):
        return None


class ParentLink:
    """The worker's side: its settings, its readiness, its parent's end."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def from_stdin(cls) -> ParentLink:
        """Read the settings the supervisor sent; ConfigError if there are none."""
        line = sys.stdin.buffer.readline()
        try:
            data: dict[str, Any] = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            raise ConfigError("--worker is for the supervisor's own use (see --workers)") from None
        return cls(load(None, {}, data))

    def watch_parent(self, loop: asyncio.AbstractEventLoop, gone: Callable[[], None]) -> None:
        """Call ``gone`` (in the loop) once the parent's end of stdin closes.

        A thread blocked in read() costs nothing until then, and works the
        same under asyncio and uvloop.
        """

        def wait_for_eof() -> None:
            while os.read(0, 4096):  # the parent sends nothing more
                pass
            with contextlib.suppress(RuntimeError):  # the loop is closed: the worker is stopping anyway
                loop.call_soon_threadsafe(gone)

        threading.Thread(target=wait_for_eof, name="parent-watch", daemon=True).start()

    def ready(self, addresses: list[Address]) -> None:
        """Tell the parent this worker listens; stdout goes to stderr from now on."""
        sys.stdout.flush()
        os.write(1, ready_line(addresses))
        os.dup2(2, 1)
