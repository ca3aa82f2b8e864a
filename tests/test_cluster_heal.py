"""Presence heals itself across the nodes of a cluster: two hubs, each with
the cluster's roster on a real Redis, on a bus that a test makes lose an
event. A node that misses someone's departure (the stream was trimmed
while it was away, Redis restarted empty, a reconnect gap) stops showing
them within seconds, because each node keeps its people in Redis with a
count of its changes, and a node whose mirror falls behind that count reads
them again."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sshchat.bus.roster import RedisRoster
from sshchat.chat.bus import Arrived, Departed, Event
from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.member import Member
from sshchat.store.memory import MemoryStore
from tests.support.bus import LossyNet
from tests.support.chat import Recorder, person
from tests.support.cluster import names_on, node_logs, start_node
from tests.support.proxy import Relay
from tests.support.redis import RedisServer
from tests.support.server import ServerProcess, connect
from tests.support.settings import chat_settings
from tests.support.waiting import eventually

TTL, EVERY = 0.6, 0.1


class Pair:
    def __init__(self, url: str) -> None:
        self.net = LossyNet()
        store = MemoryStore()
        self.rosters = [RedisRoster(url, "a", ttl=TTL, every=EVERY), RedisRoster(url, "b", ttl=TTL, every=EVERY)]
        # /names asked every 0.1 s while waiting: above the default burst
        self.a, self.b = (Hub(store, chat_settings(rate_burst=1000), bus=self.net.bus(), roster=r)
                          for r in self.rosters)

    async def start(self) -> None:
        for roster in self.rosters:
            await roster.start()

    async def close(self) -> None:
        for roster in self.rosters:
            await roster.close()


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[Pair]:
    nodes = Pair(redis_server.url)
    await nodes.start()
    yield nodes
    await nodes.close()


async def login(hub: Hub, name: str) -> tuple[Member, Recorder]:
    """What the transport does: claim (an answer from Redis), then join."""
    answer: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    hub.claim(name, None, answer.set_result)
    refusal = await asyncio.wait_for(answer, 5)
    if refusal is not None:
        raise JoinRefused(refusal)
    return person(hub, name)


def names(hub: Hub, member: Member, seen: Recorder) -> str:
    hub.handle_line(member, "/names")
    return seen.notices[-1]


async def test_a_departure_a_node_missed_leaves_no_ghost(pair: Pair) -> None:
    alice, _ = await login(pair.a, "alice")
    bob, bob_sees = await login(pair.b, "bob")
    assert names(pair.b, bob, bob_sees) == "2 in #lobby: alice, bob"
    lost: list[Event] = []

    def departures(event: Event) -> bool:
        if type(event) is Departed:
            lost.append(event)
            return True
        return False

    pair.net.lose[pair.b.receive] = departures  # b's reader misses what a says of alice leaving
    pair.a.leave(alice)
    assert lost and names(pair.b, bob, bob_sees) == "2 in #lobby: alice, bob"  # a ghost, for now
    await eventually(lambda: names(pair.b, bob, bob_sees) == "1 in #lobby: bob", timeout=5)
    assert "alice left" in bob_sees.texts()
    # what b hears afterwards applies as before, and is not undone
    del pair.net.lose[pair.b.receive]
    await login(pair.a, "carol")
    assert names(pair.b, bob, bob_sees) == "2 in #lobby: bob, carol"


async def test_a_node_that_missed_an_arrival_and_a_departure_catches_up(pair: Pair) -> None:
    """Every event of a's missed for a while (a reconnect gap): b then hears
    one more, sees its count skipped, and reads a's people."""
    bob, bob_sees = await login(pair.b, "bob")
    pair.net.lose[pair.b.receive] = lambda event: isinstance(event, (Arrived, Departed))
    dave, _ = await login(pair.a, "dave")
    await login(pair.a, "erin")
    pair.a.leave(dave)
    del pair.net.lose[pair.b.receive]
    await login(pair.a, "fred")
    await eventually(lambda: names(pair.b, bob, bob_sees) == "3 in #lobby: bob, erin, fred", timeout=5)


async def test_a_departure_trimmed_from_the_stream_while_a_node_was_cut_off(
    tmp_path: Path, redis_server: RedisServer, pg_url: str
) -> None:
    """Two real nodes; b reaches Redis through a relay that is cut. While it
    is cut, quinn leaves a and sam says 300 lines: the stream (capped at 10,
    so trimmed by whole blocks of 100 entries) no longer holds quinn's
    departure when b reads on. b's /names must still lose quinn."""
    relay = await Relay(redis_server.port).start()
    settings = {"SSHCHAT_BUS_STREAM_CAP": "10"}
    nodes: dict[str, ServerProcess] = {}
    clients = []
    try:
        # In threads: the relay on this test's loop must relay while b starts.
        # sam says 300 lines at once: above the default burst of 10.
        nodes["a"], nodes["b"] = await asyncio.gather(
            asyncio.to_thread(start_node, tmp_path / "a", redis_server.url, pg_url, rate_burst=1000, env=settings),
            asyncio.to_thread(start_node, tmp_path / "b", relay.url(), pg_url, rate_burst=1000, env=settings),
        )
        quinn = await connect(nodes["a"].port, "quinn")
        sam = await connect(nodes["a"].port, "sam")
        rita = await connect(nodes["b"].port, "rita")
        clients += [quinn, sam, rita]
        await names_on(rita, "quinn", "rita", "sam", timeout=10)
        relay.cut()
        await quinn.close()
        await sam.wait_for("quinn left", timeout=10)
        for n in range(300):
            sam.line(f"line {n}")
        await sam.wait_for("sam: line 299\n", timeout=30)
        relay.restore()
        await names_on(rita, "rita", "sam", absent=("quinn",), timeout=15)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{node_logs(nodes)}") from None
    finally:
        for client in clients:
            await client.close()
        await asyncio.gather(*(asyncio.to_thread(s.stop, signal.SIGTERM) for s in nodes.values()))
        await relay.close()
