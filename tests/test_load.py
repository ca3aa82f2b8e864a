"""Load: many sessions, floods, stalled readers, abrupt disconnects.

Checks that everyone who stayed got every message, in the same order, that
stalled readers were cut off instead of slowing anyone, and that the
server's memory came back near its baseline. The short run is part of the
suite; `pytest -m slow tests/test_load.py -s` runs the long one and prints
its figures.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from tests.support.clients import KeylessClient
from tests.support.server import ServerProcess
from tests.support.waiting import eventually


@dataclass(frozen=True)
class Load:
    sessions: int
    senders: int
    messages: int  # per sender
    rate: float  # messages per second per sender
    stalled: int
    dropped: int


SHORT = Load(sessions=30, senders=3, messages=40, rate=100, stalled=2, dropped=3)
LONG = Load(sessions=200, senders=10, messages=300, rate=100, stalled=10, dropped=20)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))  # type: ignore[union-attr]


LOAD_ENV = {
    "SSHCHAT_RATE_BURST": "1000000",
    "SSHCHAT_INPUT_BYTES_PER_MINUTE": "1000000000",
    "SSHCHAT_MAX_PER_ADDRESS": "100000",
    "SSHCHAT_NEW_CONNECTIONS_BURST": "100000",
    "SSHCHAT_OUTBOX_LIMIT": "8192",  # small, so the stalled readers hit it
    "SSHCHAT_LOG_LEVEL": "warning",
}


_CHAT = re.compile(r"^r\d+u\d+: (r\d+s\d+:\d+):x+$")


class Reader:
    """One session that records every chat line it receives."""

    def __init__(self, name: str, conn: asyncssh.SSHClientConnection, process: asyncssh.SSHClientProcess) -> None:
        self.name, self.conn, self.process = name, conn, process
        self.round = name.split("u")[0].split("stall")[0]  # "r0" of "r0u5"
        self.lines: list[str] = []
        self.notices: list[str] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for line in self.process.stdout:
                m = _CHAT.match(line)
                if m and m.group(1).startswith(self.round):  # not history from earlier rounds
                    self.lines.append(m.group(1))
                elif line.startswith("-> "):
                    self.notices.append(line[3:].rstrip("\n"))
        except (asyncssh.Error, ConnectionError):
            pass


async def connect(port: int, name: str, n: int, window: int = 2 * 1024 * 1024) -> Reader:
    # Spread over 127.0.0.0/8 as many users' addresses would be.
    local = f"127.0.{n // 250}.{n % 250 + 1}"
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=name, known_hosts=None, client_keys=None, agent_path=None,
        client_factory=KeylessClient, local_addr=(local, 0), window=window,
    )
    process = await conn.create_process(encoding="utf-8")
    return Reader(name, conn, process)


async def no_one_online(port: int) -> bool:
    """Asked as a bot (`who`), which the server does not count as a member."""
    async with asyncssh.connect(
        "127.0.0.1", port, username="probe", known_hosts=None, client_keys=None, agent_path=None,
        client_factory=KeylessClient, local_addr=("127.0.200.1", 0),
    ) as conn:
        done = await conn.run("who", check=True)
    return done.stdout == ""


async def one_round(port: int, load: Load, round_no: int, pid: int) -> dict[str, float]:
    """Log everyone in, flood, stall, drop; check delivery; log everyone out."""
    base = 2000 * round_no
    started = time.perf_counter()
    readers = [await connect(port, f"r{round_no}u{n}", base + n) for n in range(load.sessions)]
    login_time = time.perf_counter() - started
    stalled = [await connect(port, f"r{round_no}stall{n}", base + 1000 + n, window=4096) for n in range(load.stalled)]
    for s in stalled:
        s.task.cancel()
        s.process.channel.pause_reading()
    rss_sessions = rss_kib(pid)
    senders = readers[: load.senders]
    dropped = readers[load.senders : load.senders + load.dropped]
    stayed = [r for r in readers if r not in dropped]

    total = load.senders * load.messages
    sent = [0]

    async def send(r: Reader, index: int) -> None:
        for n in range(load.messages):
            r.process.stdin.write(f"r{round_no}s{index}:{n}:" + "x" * 100 + "\n")
            sent[0] += 1
            await asyncio.sleep(1 / load.rate)  # pacing: the load is this rate per sender

    async def drop_midway() -> None:
        await eventually(lambda: sent[0] >= total // 2, timeout=30)
        for r in dropped:
            r.conn.abort()  # no goodbye: the TCP connection just goes

    sent_at = time.perf_counter()
    await asyncio.gather(*(send(r, i) for i, r in enumerate(senders)), drop_midway())
    await eventually(
        lambda: all(len(r.lines) >= total for r in stayed), timeout=30,
        message=lambda: f"everyone who stayed got all {total}: {sorted(len(r.lines) for r in stayed)}",
    )
    elapsed = time.perf_counter() - sent_at

    # Everyone who stayed got everything, in one and the same order.
    first = stayed[0].lines
    assert len(first) == total, (len(first), total)
    for r in stayed:
        assert r.lines == first, r.name
    for i in range(load.senders):
        mine = [int(line.split(":")[1]) for line in first if line.startswith(f"r{round_no}s{i}:")]
        assert mine == list(range(load.messages))
    # Stalled readers were cut off, not waited for; the dropped are gone.
    stayed[0].process.stdin.write("/names\n")

    def names() -> list[str]:
        return [n for n in stayed[0].notices if " in #lobby: " in n]

    await eventually(lambda: bool(names()), message="the answer to /names")
    online = set(names()[-1].split(": ", 1)[1].split(", "))
    assert online == {r.name for r in stayed}, online

    for r in readers + stalled:
        r.conn.close()
    await eventually(lambda: no_one_online(port), timeout=10, interval=0.1, message="everyone has left")
    return {
        "sessions": load.sessions + load.stalled,
        "messages": total,
        "deliveries": total * len(stayed),
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round(total * len(stayed) / elapsed),
        "logins_per_second": round(load.sessions / login_time, 1),
        "rss_with_sessions_kib": rss_sessions,
    }


async def run_load(tmp: Path, load: Load) -> list[dict[str, float]]:
    """Identical rounds: the last must not leave more memory behind.

    The first rounds let the allocator and the bounded caches (rendered
    lines, room history, SQLite's page cache) reach their working size; a
    leak would show as growth from the end of one round to the next.
    """
    server = ServerProcess(tmp, env=LOAD_ENV)
    proc, port = server.proc, server.port
    try:
        rounds = []
        idle = rss_kib(proc.pid)
        for round_no in range(3):
            figures = await one_round(port, load, round_no, proc.pid)
            figures["rss_idle_before_kib"] = idle
            idle = figures["rss_after_kib"] = rss_kib(proc.pid)
            figures["kib_per_session"] = round(
                (figures["rss_with_sessions_kib"] - figures["rss_idle_before_kib"]) / figures["sessions"], 1)
            print(f"\nload round {round_no + 1}:", figures)
            rounds.append(figures)
        growth = rounds[2]["rss_after_kib"] - rounds[1]["rss_after_kib"]
        # RSS is a coarse witness: glibc keeps freed memory in per-thread
        # arenas (the store's thread has its own), so it creeps even with no
        # leak. test_leak.py checks the Python heap itself, exactly.
        assert growth < max(2 * 1024, rounds[1]["rss_after_kib"] // 10), rounds
        return rounds
    finally:
        assert server.stop() == 0


async def test_load_short(tmp_path: Path) -> None:
    await run_load(tmp_path, SHORT)


@pytest.mark.slow
async def test_load_long(tmp_path: Path) -> None:
    await run_load(tmp_path, LONG)
