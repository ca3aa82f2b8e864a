"""No leak: after identical rounds of logins, chat and logouts, the Python
heap of the server (tracemalloc, in process) does not grow."""

from __future__ import annotations

import asyncio
import gc
import re
import tracemalloc

import asyncssh

from tests.support.clients import KeylessClient
from tests.support.server import Server
from tests.support.waiting import eventually


async def one_round(server: Server, r: int, sessions: int = 15, messages: int = 60) -> None:
    conns = []
    for i in range(sessions):
        conn = await asyncssh.connect(
            "127.0.0.1", server.port, username=f"r{r}u{i}", known_hosts=None, client_keys=None,
            agent_path=None, client_factory=KeylessClient, local_addr=(f"127.0.1.{i + 1}", 0),
        )
        conns.append((conn, await conn.create_process(encoding="utf-8")))
    received = [""] * sessions

    async def drain(i: int, process: asyncssh.SSHClientProcess) -> None:
        try:
            while data := await process.stdout.read(65536):
                received[i] += data
        except (asyncssh.Error, ConnectionError):
            pass

    readers = [asyncio.ensure_future(drain(i, p)) for i, (_, p) in enumerate(conns)]
    for m in range(messages):
        conns[m % 5][1].stdin.write(f"message {m} " + "x" * 80 + "\n")
        if m % 20 == 0:
            await asyncio.sleep(0.01)  # pacing: several batches a round, not one burst
    ours = re.compile(rf"^r{r}u\d+: message ", re.M)  # not the history of earlier rounds

    def got() -> list[int]:
        return [len(ours.findall(text)) for text in received]

    await eventually(lambda: min(got()) == messages, message=lambda: f"every session got all {messages}: {got()}")
    for conn, _ in conns:
        conn.close()
    await asyncio.wait_for(asyncio.gather(*readers), 5)
    await eventually(
        lambda: not server.app.hub.members and not server.app.ctx.connections,
        message="the server has let everyone go",
    )


def sshchat_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Heap bytes allocated by the server's own code (not the test's clients)."""
    return sum(
        stat.size for stat in snapshot.statistics("traceback")
        if any("/sshchat/" in frame.filename for frame in stat.traceback)
    )


async def test_rounds_leave_nothing_behind(server: Server) -> None:
    await one_round(server, 0)  # fills the bounded caches
    tracemalloc.start(12)
    try:
        await one_round(server, 1)
        gc.collect()
        first = sshchat_bytes(tracemalloc.take_snapshot())
        await one_round(server, 2)
        gc.collect()
        second = sshchat_bytes(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert not server.app.hub.members and not server.app.ctx.connections
    assert second - first < 256 * 1024, (first, second)
