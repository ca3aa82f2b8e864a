"""Two `sshchat serve` nodes on one Redis and one PostgreSQL database are one chat."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh

from sshchat.chat.message import Kind
from sshchat.chat.store import Draft
from sshchat.store import open_store
from tests.support.clients import Client
from tests.support.cluster import node_logs, start_node
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, admin_keys_file, connect, login
from tests.support.waiting import eventually


class Pair:
    """Nodes ``a`` and ``b``, and the people logged in to them."""

    def __init__(self, a: ServerProcess, b: ServerProcess) -> None:
        self.a, self.b = a, b
        self.clients: list[Client] = []

    async def login(self, node: ServerProcess, name: str) -> Client:
        """Welcomed (keyless) on ``node``."""
        client = await login(node.port, name)
        self.clients.append(client)
        return client

    async def connect(self, node: ServerProcess, name: str, key: asyncssh.SSHKey | None) -> Client:
        """Logged in (``Welcome``), or refused (its reason on stderr)."""
        client = await connect(node.port, name, key=key)
        self.clients.append(client)
        return client


@asynccontextmanager
async def two_nodes(
    tmp: Path, redis_url: str, db_url: str, *args: str, env: dict[str, str] | None = None
) -> AsyncIterator[Pair]:
    """Nodes a and b on one Redis and one database (``env``: more settings);
    on the way out their people leave and each node stops with status 0; a
    failure's message carries both nodes' logs."""
    # 21 lines from one person in a second: above the default burst of 10
    a = start_node(tmp / "a", redis_url, db_url, *args, rate_burst=100, env=env)
    try:
        b = start_node(tmp / "b", redis_url, db_url, *args, rate_burst=100, env=env)
    except BaseException:
        a.stop(signal.SIGTERM)
        raise
    pair = Pair(a, b)
    try:
        yield pair
    except AssertionError as e:
        raise AssertionError(f"{e}\n{node_logs({'a': a, 'b': b})}") from None
    finally:
        for client in pair.clients:
            await client.close()
        for server in (a, b):
            assert server.stop(signal.SIGTERM) == 0


def said(client: Client) -> list[str]:
    return re.findall(r"(?m)^\S+: (line \d+ from \w+)", client.text)


async def test_two_nodes_are_one_chat(tmp_path: Path, redis_server: RedisServer, pg_url: str) -> None:
    async with two_nodes(tmp_path, redis_server.url, pg_url) as pair:
        alice, bob = await pair.login(pair.a, "alice"), await pair.login(pair.b, "bob")
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


async def test_a_ban_and_a_topic_made_on_one_node_hold_on_the_other(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    admin_key, bob_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    admins = admin_keys_file(tmp_path, admin_key)
    async with two_nodes(tmp_path, redis_server.url, pg_url, "--admin-keys", str(admins)) as pair:
        boss = await pair.connect(pair.a, "boss", admin_key)
        bob = await pair.connect(pair.b, "bob", bob_key)  # his name's binding (to his key) reaches node a
        boss.line("/topic one chat, two nodes")
        await bob.wait_for("boss set the topic: one chat, two nodes", timeout=10)
        carol = await pair.connect(pair.b, "carol", None)
        await carol.wait_for("#lobby: one chat, two nodes", timeout=10)  # node b keeps the topic, for logins
        boss.line("/ban bob spamming")
        await boss.wait_for("banned bob", timeout=10)
        await bob.wait_for("you were banned by boss", timeout=10)  # on node b, at once
        assert await bob.exit_status(timeout=10) is not None
        again = await pair.connect(pair.b, "bob", bob_key)
        await again.wait_for(lambda c: "you are banned: spamming" in c.stderr, timeout=10)


async def test_sshchat_admin_unban_lets_the_person_in_on_every_running_node(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    """The tool writes only the database; each node polls it and lets bob
    in within seconds, on the node where he was banned and on the other."""
    admin_key, bob_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    admins = admin_keys_file(tmp_path, admin_key)
    # Bob knocks until he is let in: each refusal is an offence, and the default 10 would block his address.
    async with two_nodes(tmp_path, redis_server.url, pg_url, "--admin-keys", str(admins),
                         env={"SSHCHAT_OFFENCE_THRESHOLD": "1000"}) as pair:
        boss = await pair.connect(pair.a, "boss", admin_key)
        bob = await pair.connect(pair.b, "bob", bob_key)
        await boss.wait_for("bob joined", timeout=10)  # node a knows him
        boss.line("/ban bob spamming")
        await bob.wait_for("you were banned by boss", timeout=10)
        refused = await pair.connect(pair.a, "bob", bob_key)
        assert "you are banned: spamming" in refused.stderr
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sshchat", "admin", "--db", pg_url, "unban", "bob",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        assert b"it lets them in within about 2 seconds" in err
        for node in (pair.b, pair.a):

            async def lets_bob_in(node: ServerProcess = node) -> bool:
                client = await pair.connect(node, "bob", bob_key)
                return "Welcome" in client.text

            # within about 2 s of the unban (a login's own time on a loaded machine on top)
            await eventually(lets_bob_in, timeout=4.0, interval=0.2, message=f"bob let in on node {node.port}")
        await boss.wait_for(lambda c: c.text.count("bob joined") >= 2, timeout=5)  # back, as everyone sees


async def test_a_message_committed_but_never_published_reaches_both_nodes(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    """Its node died between the commit and the publish, and the room fell
    silent: every node reads it from the database within seconds."""
    store = open_store(pg_url, asyncio.get_running_loop(), wait=5.0, connect_wait=5.0)
    try:
        async with two_nodes(tmp_path, redis_server.url, pg_url) as pair:
            alice, bob = await pair.login(pair.a, "alice"), await pair.login(pair.b, "bob")
            store.append([Draft("#lobby", Kind.CHAT, "ghost", "said just before its node died", time.time())],
                         lambda result: None)
            for client in (alice, bob):
                await client.wait_for("said just before its node died", timeout=8)
    finally:
        store.close()
