"""Checks of the load generator's own parts that a tiny run cannot show.

``python -m bench.selftest`` (from the repository root) prints one line per
check and exits 0 if all pass, 1 otherwise. The test suite runs it as a
process (tests/test_bench_smoke.py): the suite never imports bench, so the
benchmark can change without breaking the tests' imports, and these checks
live next to the code they check.

- What the generator counts as a delivery, in each server's dialect: one
  count per posted line, whatever else the server writes.
- The lean receive path (bench/fastrecv.py) delivers every byte in order:
  3 MB in lines of all sizes from a real sshchat server in this process,
  more than the client's window (so the window is adjusted as it goes),
  under AES-GCM (the lean path must be used) and AES-CTR (asyncssh's own
  path must be used), and the session still works both ways afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncssh

from bench import fastrecv
from bench.client import DIALECTS, KeylessClient, message_line, message_pattern
from sshchat.app import App
from sshchat.config import Config


def check_dialects() -> None:
    line = message_line("tok", 1, 7, True, 40).rstrip(b"\n")
    ours = message_pattern("tok", DIALECTS["sshchat"])
    assert len(ours.findall(b"u1: " + line + b"\n\x1b[33mu2\x1b[0m: " + line + b"\n")) == 2
    # ssh-chat: the typed text echoed (no newline), the sender's own line, another's line in colour
    theirs = message_pattern("tok", DIALECTS["ssh-chat"])
    echo = b"[u1] " + line + b"\x1b[2K\x1b[J"
    output = echo + b"\r[u1] " + line + b"\r\n\x1b[38;05;2mu2\x1b[0m: " + line + b"\r\n"
    assert [m[1] for m in theirs.findall(output)] == [b"7", b"7"]
    assert message_line("tok", 1, 7, True, 40, DIALECTS["ssh-chat"].line_end).endswith(b"x\r")


class _Reader:
    """Everything a session was sent, and a way to wait for some of it."""

    def __init__(self, process: asyncssh.SSHClientProcess[str]) -> None:
        self.text = ""
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._read(process))

    async def _read(self, process: asyncssh.SSHClientProcess[str]) -> None:
        while data := await process.stdout.read(65536):
            self.text += data
            self._changed.set()
        self._changed.set()

    async def wait_for(self, needle: str, timeout: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while needle not in self.text:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {needle[:60]!r} within {timeout} s; got {self.text[-300:]!r}") from None


async def check_lean_receive(cipher: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sshchat-selftest-") as tmp:
        app = App(Config(host="127.0.0.1", port=0, host_key=str(Path(tmp) / "host"), db=":memory:",
                         log_level="warning"))
        (_, port), *_ = await app.start()
        calls = fastrecv.calls
        fastrecv.install()
        try:
            async with asyncssh.connect(
                "127.0.0.1", port, username="reader", known_hosts=None, client_keys=None, agent_path=None,
                client_factory=KeylessClient, encryption_algs=[cipher],
            ) as conn:
                process = await conn.create_process(encoding="utf-8")
                reader = _Reader(process)
                await reader.wait_for("reader joined")  # the server's own lines are out of the way
                (server_conn,) = app.ctx.connections
                (chan,) = server_conn._channels.values()
                lines = [f"{n:06d} " + "y" * (n * 7919 % 40000) + "\n" for n in range(150)]
                sent = "".join(lines)
                assert len(sent) > 2_900_000
                for line in lines:
                    chan.write(line)
                    await asyncio.sleep(0)  # a loop turn between writes: the client reads as they come
                await reader.wait_for(lines[-1], timeout=20)
                got = reader.text[reader.text.index(lines[0][:7]):]
                at = next((i for i, (a, b) in enumerate(zip(got, sent, strict=False)) if a != b), None)
                assert at is None, (at, len(got), len(sent), got[at - 40:at + 40], sent[at - 40:at + 40])
                assert (fastrecv.calls > calls) == cipher.startswith("aes128-gcm"), (cipher, fastrecv.calls)
                process.stdin.write("still two-way\n")
                await reader.wait_for("reader: still two-way")
        finally:
            fastrecv.uninstall()
            await app.stop()


def main() -> int:
    checks: list[tuple[str, Callable[[], object]]] = [
        ("dialects count each posted line once", check_dialects),
        ("lean receive, aes128-gcm", lambda: asyncio.run(check_lean_receive("aes128-gcm@openssh.com"))),
        ("lean receive, aes128-ctr", lambda: asyncio.run(check_lean_receive("aes128-ctr"))),
    ]
    failed = 0
    for name, check in checks:
        try:
            check()
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {name}: {e!r}")
        else:
            print(f"ok   {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
