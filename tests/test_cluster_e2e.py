"""Two `sshchat serve` nodes on one Redis and one PostgreSQL database are one chat."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import asyncssh

from sshchat.chat.message import Kind
from sshchat.chat.store import Draft
from sshchat.store import open_store
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


async def keyed(port: int, name: str, key: asyncssh.SSHKey | None) -> Client:
    """Logged in (``Welcome``), or refused (its reason on stderr)."""
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=name, known_hosts=None, client_keys=[key] if key else None, agent_path=None,
        client_factory=None if key else KeylessClient,
    )
    client = Client(conn, await conn.create_process(encoding="utf-8"))
    await client.wait_for(lambda c: "Welcome" in c.text or bool(c.stderr) or c.process.exit_status is not None)
    return client


def node(tmp: Path, name: str, redis_url: str, db_url: str, *args: str) -> ServerProcess:
    folder = tmp / name
    folder.mkdir()
    # 21 lines from one person in a second: above the default burst of 10
    return ServerProcess(
        folder, "--bus", redis_url, "--db", db_url, *args, cwd=folder, env={"SSHCHAT_RATE_BURST": "100"}
    )


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


async def test_a_ban_and_a_topic_made_on_one_node_hold_on_the_other(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    admin_key, bob_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    admins = tmp_path / "admins"
    admins.write_text(admin_key.export_public_key().decode())
    a = node(tmp_path, "a", redis_server.url, pg_url, "--admin-keys", str(admins))
    b = node(tmp_path, "b", redis_server.url, pg_url, "--admin-keys", str(admins))
    clients: list[Client] = []
    try:
        boss = await keyed(a.port, "boss", admin_key)
        bob = await keyed(b.port, "bob", bob_key)  # his name's binding (to his key) reaches node a
        clients += [boss, bob]
        boss.line("/topic one chat, two nodes")
        await bob.wait_for("boss set the topic: one chat, two nodes", timeout=10)
        carol = await keyed(b.port, "carol", None)
        clients.append(carol)
        await carol.wait_for("#lobby: one chat, two nodes", timeout=10)  # node b keeps the topic, for logins
        boss.line("/ban bob spamming")
        await boss.wait_for("banned bob", timeout=10)
        await bob.wait_for("you were banned by boss", timeout=10)  # on node b, at once
        assert await bob.exit_status(timeout=10) is not None
        again = await keyed(b.port, "bob", bob_key)
        clients.append(again)
        await again.wait_for(lambda c: "you are banned: spamming" in c.stderr, timeout=10)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnode a:\n{''.join(a.log)}\nnode b:\n{''.join(b.log)}") from None
    finally:
        for client in clients:
            await client.close()
        for server in (a, b):
            assert server.stop(signal.SIGTERM) == 0


async def test_a_message_committed_but_never_published_reaches_both_nodes(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    """Its node died between the commit and the publish, and the room fell
    silent: every node reads it from the database within seconds."""
    a = node(tmp_path, "a", redis_server.url, pg_url)
    b = node(tmp_path, "b", redis_server.url, pg_url)
    clients: list[Client] = []
    store = open_store(pg_url, asyncio.get_running_loop(), wait=5.0, connect_wait=5.0)
    try:
        alice, bob = await connect(a.port, "alice"), await connect(b.port, "bob")
        clients += [alice, bob]
        store.append([Draft("#lobby", Kind.CHAT, "ghost", "said just before its node died", time.time())],
                     lambda result: None)
        for client in (alice, bob):
            await client.wait_for("said just before its node died", timeout=8)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnode a:\n{''.join(a.log)}\nnode b:\n{''.join(b.log)}") from None
    finally:
        store.close()
        for client in clients:
            await client.close()
        for server in (a, b):
            assert server.stop(signal.SIGTERM) == 0
