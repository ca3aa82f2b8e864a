"""Presence and names across two `sshchat serve` nodes on one Redis and one
PostgreSQL database: a name is unique across the nodes, everyone sees
everyone, /msg and /kick reach people on the other node, and a node killed
with SIGKILL frees its people's names and leaves every /names within seconds.

The nodes (and their Redis and database) are shared by the tests of this
module, each with names of its own; the SIGKILL test has its own pair.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from tests.support.clients import Client
from tests.support.cluster import names_on, node_logs, start_node
from tests.support.postgres import PostgresServer
from tests.support.redis import REDIS_SERVER, RedisServer
from tests.support.server import ServerProcess, admin_keys_file, connect
from tests.support.waiting import eventually

JOIN_WAIT = 10.0  # a login on a busy 2-core machine


class Nodes:
    def __init__(self, folder: Path, redis_url: str, db_url: str, admins: Path) -> None:
        self.folder = folder
        self.a = self._node("a", redis_url, db_url, admins)
        self.b = self._node("b", redis_url, db_url, admins)
        self.clients: list[Client] = []

    def _node(self, name: str, redis_url: str, db_url: str, admins: Path) -> ServerProcess:
        # /names asked every 0.2 s while waiting: above the default burst of 10
        return start_node(self.folder / name, redis_url, db_url, "--admin-keys", str(admins), rate_burst=100)

    async def login(self, node: ServerProcess, name: str, key: asyncssh.SSHKey | None = None) -> Client:
        client = await connect(node.port, name, key=key)
        self.clients.append(client)
        return client

    def logs(self) -> str:
        return node_logs({"a": self.a, "b": self.b})

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()

    def stop(self) -> None:
        for server in (self.a, self.b):
            server.stop(signal.SIGTERM)


@pytest.fixture(scope="module")
def admin_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _cluster(tmp: Path, postgres: PostgresServer, admin_key: asyncssh.SSHKey) -> Iterator[Nodes]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    (tmp / "redis").mkdir()
    redis = RedisServer(tmp / "redis")
    admins = admin_keys_file(tmp, admin_key)
    try:
        nodes = Nodes(tmp, redis.url, postgres.new_database(), admins)
        try:
            yield nodes
        finally:
            nodes.stop()
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer,
           admin_key: asyncssh.SSHKey) -> Iterator[Nodes]:
    """Two nodes for the whole module."""
    yield from _cluster(tmp_path_factory.mktemp("cluster"), postgres, admin_key)


@pytest.fixture
async def nodes(shared: Nodes) -> Iterator[Nodes]:  # type: ignore[misc]
    """The module's nodes; this test's people logged out at its end, and the
    nodes' logs printed (pytest shows a teardown's output when the test failed:
    it throws no failure into a fixture, so an ``except`` here would never run)."""
    yield shared
    await shared.close()
    print(shared.logs())


async def test_a_name_taken_on_one_node_is_refused_on_the_other(nodes: Nodes) -> None:
    await nodes.login(nodes.a, "anna")
    second = await nodes.login(nodes.b, "anna")
    assert await second.exit_status() == 1
    assert 'the name "anna" is already in use' in second.stderr
    bert = await nodes.login(nodes.b, "bert")
    bert.line("/nick Anna")
    await bert.wait_for('the name "anna" is already in use')


async def test_names_whois_and_rooms_see_the_people_of_the_other_node(nodes: Nodes) -> None:
    await nodes.login(nodes.a, "cleo")
    dora = await nodes.login(nodes.b, "dora")
    await names_on(dora, "cleo", "dora")
    dora.line("/whois cleo")
    await dora.wait_for(re.compile(r"cleo: no key \(not registered\).*; idle \d+s \(within 30s\), on another server"))
    dora.line("/rooms")
    await dora.wait_for(re.compile(r"#lobby \([2-9] online"))


async def test_a_join_counts_the_people_of_the_room_on_every_node(nodes: Nodes) -> None:
    kai = await nodes.login(nodes.b, "kai")
    kai.line("/join #both")
    await kai.wait_for("now in #both (1 here)")
    jo = await nodes.login(nodes.a, "jo")

    async def kai_seen_in_both() -> bool:  # rooms travel with the node's next beat (1 s)
        answer = re.compile(r"-> \d+ rooms? \(")
        asked = len(answer.findall(jo.text))
        jo.line("/rooms")
        await jo.wait_for(lambda c: len(answer.findall(c.text)) > asked)
        return "#both (1 online" in answer.split(jo.text)[-1]

    await eventually(kai_seen_in_both, timeout=JOIN_WAIT, interval=0.2)
    jo.line("/join #both")
    await jo.wait_for("now in #both (2 here)", timeout=JOIN_WAIT)
    await kai.wait_for("jo joined #both (2 here)", timeout=JOIN_WAIT)  # kai on the other node counts


async def test_a_name_that_looks_like_someone_on_the_other_node_is_refused(nodes: Nodes) -> None:
    await nodes.login(nodes.a, "olga")
    pia = await nodes.login(nodes.b, "pia")
    await names_on(pia, "olga")  # node b knows her
    lookalike = await nodes.login(nodes.b, "o1ga")
    assert await lookalike.exit_status() == 1
    assert 'the name "o1ga" looks too much like "olga"' in lookalike.stderr


async def test_msg_and_reply_reach_a_person_on_the_other_node(nodes: Nodes) -> None:
    emil = await nodes.login(nodes.a, "emil")
    fay = await nodes.login(nodes.b, "fay")
    await names_on(fay, "emil")
    fay.line("/msg emil psst from b")
    await emil.wait_for("psst from b")
    emil.line("/reply and back from a")
    await fay.wait_for("and back from a")


async def test_kick_of_a_person_on_the_other_node(nodes: Nodes, admin_key: asyncssh.SSHKey) -> None:
    gus = await nodes.login(nodes.a, "gus")
    boss = await nodes.login(nodes.b, "boss", key=admin_key)
    await names_on(boss, "gus")
    boss.line("/kick gus enough")
    await gus.wait_for("you were kicked by boss: enough")
    assert await gus.exit_status() is not None
    await names_on(boss, absent=("gus",))
    again = await nodes.login(nodes.b, "gus")  # the name is free again, on either node
    assert "Welcome" in again.text


async def test_the_same_key_on_the_other_node_replaces_the_old_session(
    nodes: Nodes, admin_key: asyncssh.SSHKey
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    old = await nodes.login(nodes.a, "hana", key=key)
    watcher = await nodes.login(nodes.a, "ivo")
    new = await nodes.login(nodes.b, "hana", key=key)
    assert "Welcome" in new.text
    await old.wait_for("you logged in from elsewhere")
    await names_on(watcher, "hana", "ivo")
    assert "hana left" not in watcher.text


async def test_what_a_script_sends_while_its_name_is_claimed_is_kept(nodes: Nodes) -> None:
    listener = await nodes.login(nodes.b, "lena")
    script = await connect(nodes.a.port, "mo", wait_joined=False)
    nodes.clients.append(script)
    script.line("sent before the welcome")  # the claim asks Redis meanwhile: reading waits, nothing is lost
    await listener.wait_for("mo: sent before the welcome")


async def test_a_killed_node_frees_its_names_and_leaves_every_list(
    tmp_path: Path, postgres: PostgresServer, admin_key: asyncssh.SSHKey
) -> None:
    cluster = _cluster(tmp_path, postgres, admin_key)
    pair = next(cluster)
    try:
        await pair.login(pair.a, "jon")
        kim = await pair.login(pair.b, "kim")
        await names_on(kim, "jon", "kim")
        killed = time.monotonic()
        pair.a.stop(signal.SIGKILL)
        await names_on(kim, "kim", absent=("jon",), timeout=10)
        vanished = time.monotonic() - killed
        jon = await pair.login(pair.b, "jon")
        assert "Welcome" in jon.text, jon.stderr
        print(f"a killed node's people vanished from /names after {vanished:.1f} s")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{pair.logs()}") from None
    finally:
        await pair.close()
        for _ in cluster:
            pass
