"""``sshchat serve --workers N``: real processes, one port, a supervising parent.

The workers run on a Redis bus and a PostgreSQL database of the test's own
(the fixtures ``redis_server`` and ``pg_url``), so they are one chat: a
person on one worker hears a person on the other. Which worker took a
connection is read from the server's log ("worker K: NAME joined from").
Every pid signalled here is one of the server these tests started, read from
its own log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sshchat.config import ConfigError, UsageError, load
from tests.support.clients import Client
from tests.support.redis import RedisServer, free_port
from tests.support.server import ServerProcess, connect
from tests.support.waiting import eventually

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

LISTENING = re.compile(r"worker (\d+) listening \(pid (\d+)\)")


@pytest.fixture
def cluster(redis_server: RedisServer, pg_url: str) -> tuple[str, ...]:
    """The flags of a node on the test's own Redis and PostgreSQL."""
    return ("--bus", redis_server.url, "--db", pg_url)


def start(tmp: Path, cluster: tuple[str, ...], workers: str = "2", *args: str) -> ServerProcess:
    return ServerProcess(tmp, "--workers", workers, *cluster, *args)


def worker_of(server: ServerProcess, name: str) -> int | None:
    """The worker that logged ``name`` in ("worker K: NAME joined from ..."), if one did."""
    found = re.findall(rf"worker (\d+): {re.escape(name)} joined from", "".join(server.log))
    return int(found[-1]) if found else None


async def joined_on(server: ServerProcess, name: str) -> int:
    await eventually(lambda: worker_of(server, name) is not None, timeout=10)
    worker = worker_of(server, name)
    assert worker is not None
    return worker


def worker_pids(server: ServerProcess) -> dict[int, int]:
    """Each worker's pid now, from the parent's "worker K listening (pid P)" lines."""
    return {int(k): int(p) for k, p in LISTENING.findall("".join(server.log))}


def running(pid: int) -> bool:
    """Alive and not a zombie (a dead child not yet reaped is no worker)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@contextlib.asynccontextmanager
async def on_two_workers(server: ServerProcess) -> AsyncIterator[tuple[Client, Client]]:
    """alice on one worker and someone on the other.

    The kernel picks a worker per connection by a hash of its addresses, so
    the second person may take a few tries; 30 tries all landing on alice's
    worker is a chance of 2**-30.
    """
    alice = await connect(server.port, "alice")
    clients = [alice]
    try:
        hers = await joined_on(server, "alice")
        for n in range(30):
            other = await connect(server.port, f"bob{n}")
            clients.append(other)
            if await joined_on(server, f"bob{n}") != hers:
                yield alice, other
                return
            await other.close()
            clients.remove(other)
        raise AssertionError("every connection went to alice's worker")
    finally:
        for client in clients:
            await client.close()


def test_two_workers_share_one_port_and_are_one_chat(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    try:
        log = "".join(server.log)
        assert log.count("listening on") == 1, log  # the parent's line, once, for all
        pids = worker_pids(server)
        assert sorted(pids) == [1, 2] and len(set(pids.values())) == 2, log
        for pid in pids.values():
            assert running(pid) and parent_of(pid) == server.pid, log
            assert os.getpgid(pid) == pid  # a group of its own: a terminal's Ctrl-C reaches the parent alone

        async def chat() -> None:
            async with on_two_workers(server) as (alice, bob):
                alice.line("hello from alice")
                bob.line("hello from bob")
                for person in (alice, bob):  # each hears the other, on the other worker
                    await person.wait_for("alice: hello from alice")
                    await person.wait_for(re.compile(r"bob\d+: hello from bob"))

        asyncio.run(chat())
    finally:
        assert server.stop() == 0, "".join(server.log)
    assert "Traceback" not in "".join(server.log), "".join(server.log)


def test_a_killed_worker_is_restarted_and_logged_the_other_chats_on(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    try:
        before = worker_pids(server)

        async def kill_one() -> None:
            async with on_two_workers(server) as (alice, bob):
                os.kill(before[2], signal.SIGKILL)
                await eventually(lambda: any(c.conn.is_closed() for c in (alice, bob)), timeout=10)
                survivor = bob if alice.conn.is_closed() else alice
                assert not survivor.conn.is_closed()
                survivor.line("still here")
                await survivor.wait_for(re.compile(r"\w+: still here"))
                await eventually(lambda: worker_pids(server)[2] != before[2], timeout=20)
                # the worker restarted takes new people, in the same chat
                for n in range(30):
                    newcomer = await connect(server.port, f"new{n}")
                    try:
                        if await joined_on(server, f"new{n}") == 2:
                            newcomer.line("back on worker 2")
                            await survivor.wait_for(f"new{n}: back on worker 2")
                            break
                    finally:
                        await newcomer.close()
                else:
                    raise AssertionError("no new connection reached the restarted worker")

        asyncio.run(kill_one())
        log = "".join(server.log)
        assert f"worker 2 (pid {before[2]}) was killed by SIGKILL" in log
        after = worker_pids(server)
        assert after[1] == before[1] and running(after[2]) and parent_of(after[2]) == server.pid
    finally:
        assert server.stop() == 0


def test_sigterm_tells_people_on_every_worker_and_stops_all(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    pids = worker_pids(server)

    async def shut_down() -> None:
        async with on_two_workers(server) as (alice, bob):
            server.proc.send_signal(signal.SIGTERM)
            for person in (alice, bob):
                await person.wait_for("the server is shutting down", timeout=10)

    try:
        asyncio.run(shut_down())
        assert server.proc.wait(20) == 0
    finally:
        server.stop(signal.SIGKILL)
    assert not any(running(pid) for pid in pids.values())
    assert "Traceback" not in "".join(server.log)


def test_sigint_to_the_parent_stops_all_with_status_0(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    pids = worker_pids(server)
    try:
        server.proc.send_signal(signal.SIGINT)  # Ctrl-C: the parent alone, it stops each worker
        assert server.proc.wait(20) == 0
    finally:
        server.stop(signal.SIGKILL)
    assert not any(running(pid) for pid in pids.values())
    assert "Traceback" not in "".join(server.log)


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    pids = worker_pids(server)

    async def parent_killed() -> None:
        alice = await connect(server.port, "alice")
        try:
            os.kill(server.pid, signal.SIGKILL)
            # the worker stops as on SIGTERM: its people are told, not just cut off
            await alice.wait_for("the server is shutting down", timeout=10)
            await eventually(lambda: not any(running(pid) for pid in pids.values()), timeout=20)
        finally:
            await alice.close()

    try:
        asyncio.run(parent_killed())
    finally:
        server.stop(signal.SIGKILL)
        for pid in pids.values():  # only if the test failed: its own workers, by pid
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_failing_at_once_is_restarted_ever_more_slowly(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    server = start(tmp_path, cluster)
    try:
        # from now on every worker started fails at once: its host key is gone,
        # and a worker must not make one of its own (a second host key on the port)
        (tmp_path / "host").unlink()
        os.kill(worker_pids(server)[2], signal.SIGKILL)

        def waits() -> list[float]:
            return [float(s) for s in re.findall(r"worker 2 .* restarting it in ([\d.]+) s", "".join(server.log))]

        asyncio.run(eventually(lambda: len(waits()) >= 3, timeout=30))
        assert waits()[:3] == [0.5, 1.0, 2.0]
        assert running(worker_pids(server)[1])  # the other one serves on
        assert not (tmp_path / "host").exists()
    finally:
        assert server.stop() == 0
    assert "cannot read host key" in "".join(server.log)


def sshchat(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sshchat", *args], capture_output=True, text=True, cwd=cwd, timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_workers_without_a_bus_is_one_line_and_status_2(tmp_path: Path) -> None:
    r = sshchat("serve", "--workers", "2", "--host", "127.0.0.1", "--port", "0", "--host-key", "k", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "sshchat: --workers 2 needs --bus: without one, each worker would be a separate chat"
    ]
    assert not (tmp_path / "k").exists()  # refused before anything was made


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unreachable_redis_is_one_line_and_status_2_with_workers_or_without(
    tmp_path: Path, pg_url: str, workers: str
) -> None:
    port = free_port()  # nothing listens there
    r = sshchat(
        "serve", "--workers", workers, "--host", "127.0.0.1", "--port", "0", "--host-key", "k",
        "--bus", f"redis://127.0.0.1:{port}/0", "--db", pg_url, "--log-level", "warning", cwd=tmp_path,
        env={"SSHCHAT_BUS_START_WAIT": "0.3"},
    )
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"sshchat: cannot reach Redis at 127.0.0.1:{port}: "), r.stderr


def test_a_setting_no_worker_can_start_with_is_told_once(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    (tmp_path / "c.toml").write_text('ciphers = "bogus"\n')
    r = sshchat(
        "serve", "--workers", "2", "--config", "c.toml", "--host", "127.0.0.1", "--port", "0",
        "--host-key", "k", *cluster, cwd=tmp_path,
    )
    assert r.returncode == 1
    assert r.stderr.count("invalid setting: bogus is not a valid encryption algorithm") == 1
    assert "listening on" not in r.stderr and "Traceback" not in r.stderr


def test_a_taken_port_is_one_line_before_any_worker_starts(tmp_path: Path, cluster: tuple[str, ...]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = sshchat(
            "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--host-key", "k",
            *cluster, cwd=tmp_path,
        )
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"sshchat: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert "worker" not in r.stderr


def test_workers_auto_is_one_per_core() -> None:
    bus = {"bus": "redis://127.0.0.1:6379/0", "db": "postgresql://sshchat@127.0.0.1:5432/chat"}  # a cluster's pair
    assert load(None, {}, {"workers": "auto", **bus}).workers == os.cpu_count()
    env = {"SSHCHAT_WORKERS": "AUTO", "SSHCHAT_BUS": bus["bus"], "SSHCHAT_DB": bus["db"]}
    assert load(None, env).workers == os.cpu_count()
    assert load(None, {}, {}).workers == 1
    with pytest.raises(ConfigError, match="workers must be a whole number or auto, not 'many'"):
        load(None, {}, {"workers": "many"})
    with pytest.raises(ConfigError, match="workers must be positive"):
        load(None, {}, {"workers": "0"})
    if (os.cpu_count() or 1) > 1:
        with pytest.raises(UsageError, match="needs --bus"):
            load(None, {}, {"workers": "auto"})


def test_sigusr1_to_the_parent_has_every_worker_log_its_bus_lag_since_the_last(
    tmp_path: Path, cluster: tuple[str, ...]
) -> None:
    server = start(tmp_path, cluster)
    pids = worker_pids(server)

    def reports(number: int) -> list[str]:
        return re.findall(rf"bus lag report {number}: (?:over \d+ entries read|no entries read) since the last",
                          "".join(server.log))

    async def chat_and_ask() -> None:
        async with on_two_workers(server) as (alice, bob):
            alice.line("hello from alice")
            await bob.wait_for("alice: hello from alice")
            server.proc.send_signal(signal.SIGUSR1)
            await eventually(lambda: len(reports(1)) == 2, timeout=10)
            server.proc.send_signal(signal.SIGUSR1)
            await eventually(lambda: len(reports(2)) == 2, timeout=10)
            bob.line("still here")  # both workers still serve their people
            await alice.wait_for(re.compile(r"bob\d+: still here"))

    try:
        asyncio.run(chat_and_ask())
        assert worker_pids(server) == pids and running(server.pid)
    finally:
        assert server.stop() == 0, "".join(server.log)
    assert "Traceback" not in "".join(server.log)
