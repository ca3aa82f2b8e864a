"""Two `sshchat serve` nodes on one Redis and one PostgreSQL database are one chat."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import asyncssh

from tests.support.clients import Client, KeylessClient
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess


async def connect(port: int, name: str) -> Client:
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=name, known_hosts=None, client_keys=None, agent_path=None,
        client_factory=KeylessClient,
    )
    client = Client(conn, await conn.create_process(encoding="utf-8"))
    await client.wait_for("Welcome")
    return client


def node(tmp: Path, name: str, redis_url: str, db_url: str) -> ServerProcess:
    folder = tmp / name
    folder.mkdir()
    # 21 lines from one person in a second: above the default burst of 10
    return ServerProcess(folder, "--bus", redis_url, "--db", db_url, cwd=folder, env={"SSHCHAT_RATE_BURST": "100"})


def said(client: Client) -> list[str]:
    return re.findall(r"(?m)^\S+: (line \d+ from \w+)", client.text)


async def test_two_nodes_are_one_chat(tmp_path: Path, redis_server: RedisServer, pg_url: str) -> None:
    a = node(tmp_path, "a", redis_server.url, pg_url)
    b = node(tmp_path, "b", redis_server.url, pg_url)
    clients: list[Client] = []
    try:
        alice, bob = await connect(a.port, "alice"), await connect(b.port, "bob")
        clients += [alice, bob]
        for n in range(20):
            (alice if n % 2 else bob).line(f"line {n} from {'alice' if n % 2 else 'bob'}")
            await asyncio.sleep(0)
        await alice.wait_for(lambda c: len(said(c)) == 20, timeout=10)
        await bob.wait_for(lambda c: len(said(c)) == 20, timeout=10)
        assert said(alice) == said(bob)  # one order for the room, on every node
        assert sorted(said(alice)) == sorted(f"line {n} from {'alice' if n % 2 else 'bob'}" for n in range(20))
        redis_server.restart()  # Redis comes back empty: nothing said after it is lost
        alice.line("line 20 from alice")
        await bob.wait_for("line 20 from alice", timeout=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnode a:\n{''.join(a.log)}\nnode b:\n{''.join(b.log)}") from None
    finally:
        for client in clients:
            await client.close()
        for server in (a, b):
            assert server.stop(signal.SIGTERM) == 0
