"""SSH clients for tests: a scripted asyncssh client that keeps everything it
was sent, and the keyless login every test client uses.

The keyless client is a copy of bench's (a few lines): tests do not import
bench, so that the benchmark can change without breaking the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any

import asyncssh


class KeylessClient(asyncssh.SSHClient):
    """Keyboard-interactive with no answers: how keyless users log in."""

    def kbdint_auth_requested(self) -> str:
        return ""

    def kbdint_challenge_received(self, name: str, instructions: str, lang: str, prompts: Any) -> list[str]:
        return [""] * len(prompts)


ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Client:
    """A scripted SSH chat client (asyncssh), reading everything it is sent."""

    def __init__(self, conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess[str]) -> None:
        self.conn = conn
        self.process = process
        self.output = ""
        self.stderr = ""
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.ensure_future(self._pump(process.stdout, "output")),
            asyncio.ensure_future(self._pump(process.stderr, "stderr")),
        ]

    async def _pump(self, stream: asyncssh.SSHReader[str], attr: str) -> None:
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
        check = _as_check(pred)
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
        with contextlib.suppress(Exception):  # closing at the end of a test: any error is moot
            await asyncio.wait_for(self.conn.wait_closed(), 2)


def _as_check(pred: str | re.Pattern[str] | Callable[[Client], bool]) -> Callable[[Client], bool]:
    """What :meth:`Client.wait_for` waits for, as a test of the client."""
    if isinstance(pred, str):
        return lambda c: pred in c.text
    if isinstance(pred, re.Pattern):
        return lambda c: pred.search(c.text) is not None
    return pred
