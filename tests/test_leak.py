"""No leak: after identical rounds of logins, chat and logouts, the Python
heap of the server (tracemalloc, in process) does not grow."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import asyncssh

from tests.support.clients import KeylessClient
from tests.support.server import Server


async def one_round(port: int, r: int, sessions: int = 15, messages: int = 60) -> None:
    conns = []
    for i in range(sessions):
        conn = await asyncssh.connect(
            "127.0.0.1", port, username=f"r{r}u{i}", known_hosts=None, client_keys=None,
            agent_path=None, client_factory=KeylessClient, local_addr=(f"127.0.1.{i + 1}", 0),
        )
        conns.append((conn, await conn.create_process(encoding="utf-8")))

    async def drain(process: asyncssh.SSHClientProcess) -> None:
        try:
            while await process.stdout.read(65536):
                pass
        except (asyncssh.Error, ConnectionError):
            pass

    readers = [asyncio.ensure_future(drain(p)) for _, p in conns]
    for m in range(messages):
        conns[m % 5][1].stdin.write(f"message {m} " + "x" * 80 + "\n")
        if m % 20 == 0:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    for conn, _ in conns:
        conn.close()
    await asyncio.sleep(0.5)
    for reader in readers:
        reader.cancel()
    await asyncio.sleep(0.1)


def sshchat_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Heap bytes allocated by the server's own code (not the test's clients)."""
    return sum(
        stat.size for stat in snapshot.statistics("traceback")
        if any("/sshchat/" in frame.filename for frame in stat.traceback)
    )


async def test_rounds_leave_nothing_behind(server: Server) -> None:
    await one_round(server.port, 0)  # fills the bounded caches
    tracemalloc.start(12)
    try:
        await one_round(server.port, 1)
        gc.collect()
        first = sshchat_bytes(tracemalloc.take_snapshot())
        await one_round(server.port, 2)
        gc.collect()
        second = sshchat_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert not server.app.hub.members and not server.app.ctx.connections
    assert second - first < 256 * 1024, (first, second)
