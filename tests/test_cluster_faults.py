"""Faults in a cluster, end to end: two real `sshchat serve` nodes on one
Redis and one PostgreSQL, people on each node chatting, and one fault at a
time: Redis restarted empty, Redis out of reach for 10 s, PostgreSQL
restarted, a node killed with SIGKILL.

What every test holds the cluster to (README, "Running a cluster"): a
message shown to its sender ("accepted") reaches everyone on every live
node, once, in the room's one order; one that cannot be kept is refused to
its sender with a notice and seen by nobody; the chat goes on without
restarting anything.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support.clients import Client
from tests.support.cluster import names_on, node_logs, start_node
from tests.support.postgres import PostgresServer
from tests.support.proxy import Relay
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, connect
from tests.support.waiting import eventually

WAIT = 10.0  # a line or a login on a busy 2-core machine, through a fault's recovery
SAID = re.compile(r"(?m)^(\w+): (m\d+ from \w+)$")
NOT_SAVED = "your message could not be saved (storage error), so nobody got it"
# A line sent as PostgreSQL went away, whose fate could not be asked (README: "the sender is told it may not
# have been saved").
MAYBE_SAVED = "the database stopped answering as your message was saved: if it was kept, everyone sees it"


class Cluster:
    """Two nodes (``a`` and ``b``) and the people logged in to them."""

    def __init__(self, folder: Path, redis_url: str, db_url: str) -> None:
        self.folder, self.redis_url, self.db_url = folder, redis_url, db_url
        self.nodes: dict[str, ServerProcess] = {}
        self.clients: list[Client] = []
        self.people: dict[str, Client] = {}
        self._count = 0

    async def start(self) -> Cluster:
        # In a thread: a relay on this test's loop must go on relaying while a node starts.
        # One that fails to start must not leave the other running: close() stops what started.
        started = await asyncio.gather(*(asyncio.to_thread(self._node, name) for name in "ab"), return_exceptions=True)
        self.nodes = {name: s for name, s in zip("ab", started, strict=True) if isinstance(s, ServerProcess)}
        for result in started:
            if isinstance(result, BaseException):
                raise result
        return self

    def _node(self, name: str) -> ServerProcess:
        # scripted people say many lines a second: above the default burst of 10
        return start_node(self.folder / name, self.redis_url, self.db_url, rate_burst=1000)

    async def login(self, node: str, name: str) -> Client:
        client = await connect(self.nodes[node].port, name)
        self.clients.append(client)
        assert "Welcome" in client.text, client.stderr
        self.people[name] = client
        return client

    async def say(self, name: str, *, accepted: bool = True) -> str:
        """``name`` says the next numbered line; return it once it is shown to them."""
        self._count += 1
        text = f"m{self._count} from {name}"
        client = self.people[name]
        client.line(text)
        if accepted:
            await client.wait_for(f"{name}: {text}\n", timeout=WAIT)
        return text

    def logs(self) -> str:
        return node_logs(self.nodes)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await asyncio.gather(*(asyncio.to_thread(s.stop, signal.SIGTERM) for s in self.nodes.values()))


def said(client: Client) -> list[str]:
    """The numbered lines this person was shown, in order."""
    return [text for _who, text in SAID.findall(client.text)]


async def all_see(clients: list[Client], accepted: list[str], timeout: float = WAIT) -> None:
    """Every one of ``clients`` is shown every accepted line, once, in one order."""
    wanted = set(accepted)
    for client in clients:
        await client.wait_for(lambda c: wanted <= set(said(c)), timeout=timeout)
    orders = [[t for t in said(c) if t in wanted] for c in clients]
    for order in orders:
        assert len(order) == len(set(order)), f"a line shown twice: {order}"
        assert order == orders[0], f"two orders: {order} != {orders[0]}"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Callable[[str, str], asyncio.Future[Cluster]]]:
    """Start a cluster on the given Redis and database URLs; stopped at the end, its logs on failure."""
    made: list[Cluster] = []

    def start(redis_url: str, db_url: str) -> asyncio.Future[Cluster]:
        c = Cluster(tmp_path, redis_url, db_url)
        made.append(c)
        return asyncio.ensure_future(c.start())

    yield start
    for c in made:
        await c.close()
        print(c.logs())  # shown by pytest when the test failed


async def chat_round(c: Cluster, people: list[str]) -> list[str]:
    """Each of ``people`` says a line, each shown to its sender."""
    return [await c.say(name) for name in people]


async def test_a_redis_restarted_empty_loses_nothing_and_doubles_nothing(
    cluster: Callable[[str, str], asyncio.Future[Cluster]], redis_server: RedisServer, pg_url: str
) -> None:
    c = await cluster(redis_server.url, pg_url)
    await c.login("a", "alice")
    await c.login("a", "carol")
    await c.login("b", "bob")
    await c.login("b", "dave")
    everyone = ["alice", "bob", "carol", "dave"]
    accepted = await chat_round(c, everyone)
    await all_see(list(c.people.values()), accepted)
    started = time.monotonic()
    redis_server.kill()
    accepted += await chat_round(c, everyone)  # Redis is gone: each node's people go on
    await asyncio.to_thread(redis_server.start)  # back, empty, on the same port
    accepted += await chat_round(c, everyone)
    await all_see(list(c.people.values()), accepted)
    print(f"a Redis restart: every line everywhere {time.monotonic() - started:.1f} s after the kill")


async def test_redis_out_of_reach_for_10_s(
    cluster: Callable[[str, str], asyncio.Future[Cluster]], redis_server: RedisServer, pg_url: str
) -> None:
    """Cut between the nodes and Redis (Redis runs on, its keys expiring):
    each node's people chat on among themselves; logins and renames, which
    need Redis to keep a name unique, are refused with a reason; by the time
    the link is back, what was said on each side reaches the other (the
    nodes' sweeps of the database may bring it across even during the cut)."""
    relay = await Relay(redis_server.port).start()
    try:
        c = await cluster(relay.url(), pg_url)
        alice = await c.login("a", "alice")
        bob = await c.login("b", "bob")
        await c.login("b", "dave")
        accepted = await chat_round(c, ["alice", "bob", "dave"])
        await all_see([alice, bob, c.people["dave"]], accepted)
        relay.cut()
        cut = time.monotonic()
        during: list[str] = []
        refused_login = refused_nick = False
        while time.monotonic() - cut < 10:
            during += await chat_round(c, ["alice", "bob", "dave"])
            if not refused_login:
                late = await connect(c.nodes["a"].port, "erin")
                c.clients.append(late)
                assert await late.exit_status(timeout=WAIT) == 1, late.text
                assert "your name cannot be checked right now" in late.stderr, late.stderr
                refused_login = True
            elif not refused_nick:
                bob.line("/nick robert")
                await bob.wait_for('the name "robert" cannot be checked right now', timeout=WAIT)
                refused_nick = True
            await asyncio.sleep(0.5)  # chat at a person's pace through the outage (its length is the fault's)
        assert refused_login and refused_nick
        relay.restore()
        back = time.monotonic()
        await all_see([alice, bob, c.people["dave"]], accepted + during)
        caught_up = time.monotonic() - back
        accepted += during + await chat_round(c, ["alice", "bob", "dave"])
        await all_see([alice, bob, c.people["dave"]], accepted)
        erin = await c.login("a", "erin")  # names can be claimed again
        await names_on(erin, "alice", "bob", "dave", "erin", timeout=WAIT)
        for node in c.nodes.values():  # an outage is logged as warnings, not as faults of ours
            assert not [line for line in node.log if "Traceback" in line or "Unclosed" in line], c.logs()
        print(f"{len(during)} lines said during the cut reached the other node {caught_up:.1f} s after it ended")
    finally:
        await relay.close()


async def test_a_postgresql_restart_refuses_what_it_cannot_keep_and_chat_goes_on(
    cluster: Callable[[str, str], asyncio.Future[Cluster]], redis_server: RedisServer, own_postgres: PostgresServer
) -> None:
    c = await cluster(redis_server.url, own_postgres.new_database())
    alice = await c.login("a", "alice")
    bob = await c.login("b", "bob")
    accepted = await chat_round(c, ["alice", "bob"])
    await all_see([alice, bob], accepted)
    started = time.monotonic()
    await asyncio.to_thread(own_postgres.halt)
    lost = await c.say("alice", accepted=False)
    # Sent on a connection that went down with the server, which stays down: its fate cannot be asked.
    await alice.wait_for(MAYBE_SAVED, timeout=WAIT)
    assert f"alice: {lost}" not in alice.text
    await asyncio.to_thread(own_postgres.start)
    # The nodes reconnect by themselves: alice tries again until a line is kept.

    async def kept() -> bool:
        def refused(cl: Client) -> int:
            return cl.text.count(NOT_SAVED) + cl.text.count(MAYBE_SAVED)

        refusals = refused(alice)
        text = await c.say("alice", accepted=False)
        await alice.wait_for(lambda cl: f"alice: {text}\n" in cl.text or refused(cl) > refusals, timeout=WAIT)
        if f"alice: {text}\n" in alice.text:
            accepted.append(text)
            return True
        return False

    await eventually(kept, timeout=20, interval=0.5)
    back = time.monotonic() - started
    accepted += await chat_round(c, ["bob", "alice"])
    await all_see([alice, bob], accepted)
    assert lost not in said(bob) and lost not in said(alice)
    late = await c.login("b", "carol")  # history, from the database through the node
    await late.wait_for(lambda cl: set(accepted) <= set(said(cl)), timeout=WAIT)
    assert said(late) == [t for t in said(alice) if t in said(late)] and lost not in said(late)
    print(f"a PostgreSQL restart: lines kept again {back:.1f} s after the stop")


async def test_a_node_killed_with_sigkill(
    cluster: Callable[[str, str], asyncio.Future[Cluster]], redis_server: RedisServer, pg_url: str
) -> None:
    c = await cluster(redis_server.url, pg_url)
    alice = await c.login("a", "alice")
    bob = await c.login("b", "bob")
    carol = await c.login("b", "carol")
    accepted = await chat_round(c, ["alice", "bob", "carol"])
    await all_see([alice, bob, carol], accepted)
    killed = time.monotonic()
    c.nodes["a"].stop(signal.SIGKILL)
    accepted += await chat_round(c, ["bob", "carol"])
    await names_on(bob, "bob", "carol", absent=("alice",), timeout=WAIT)
    vanished = time.monotonic() - killed
    accepted += await chat_round(c, ["carol", "bob"])
    await all_see([bob, carol], accepted)
    again = await c.login("b", "alice")  # her name is free; the history holds all
    await again.wait_for(lambda cl: set(accepted) <= set(said(cl)), timeout=WAIT)
    print(f"a killed node's people left /names after {vanished:.1f} s")
