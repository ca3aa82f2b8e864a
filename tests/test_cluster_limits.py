"""Rate limits and address blocks across nodes, on a real Redis and PostgreSQL:
two hubs in this process, each with its own store connection and its own
Redis bus, as two nodes are. A flooder gains nothing by opening sessions on
two nodes: lines said on one node empty the same person's bucket on the
other, and an address blocked on one is turned away by the other. And what
a person ignores stays hidden when a line reaches their node only from the
database (its node never got it onto Redis)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sshchat.bus.redis import RedisBus
from sshchat.chat.admission import JoinRefused
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.store import open_store
from tests.support.chat import Recorder, person
from tests.support.redis import RedisServer
from tests.support.settings import chat_settings
from tests.support.waiting import eventually, stays_false

BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")


class Nodes:
    """Starts hubs as nodes (each its own store connection and Redis bus); ``buses`` by hub."""

    def __init__(self, redis_url: str, pg_url: str) -> None:
        self.redis_url, self.pg_url = redis_url, pg_url
        self.buses: dict[Hub, RedisBus] = {}

    async def __call__(self, admins: frozenset[str] = frozenset(), **settings: Any) -> Hub:
        store = open_store(self.pg_url, asyncio.get_running_loop(), wait=5.0, connect_wait=5.0)
        bus = RedisBus(self.redis_url, store, stream_cap=10_000, gap_wait=0.2, start_wait=5.0)
        hub = Hub(store, chat_settings(**settings), bus=bus, admins=admins)
        await bus.start()
        self.buses[hub] = bus
        return hub


@pytest.fixture
async def nodes(redis_server: RedisServer, pg_url: str) -> AsyncIterator[Nodes]:
    started = Nodes(redis_server.url, pg_url)
    yield started
    for hub, bus in started.buses.items():
        await bus.close(wait=0.5)
        hub._store.close()


async def test_a_person_on_two_nodes_has_one_rate_limit(nodes: Nodes) -> None:
    a = await nodes(rate_burst=5, rate_per_second=0.01)
    b = await nodes(rate_burst=5, rate_per_second=0.01)
    bob_a, _ = person(a, "bob", BOB, "198.51.100.7")
    bob_b, bob_b_sees = person(b, "bob2", BOB, "198.51.100.8")
    _, carol_sees = person(b, "carol")
    for n in range(5):
        a.handle_line(bob_a, f"from a {n}")
    await eventually(lambda: carol_sees.texts(Kind.CHAT) == [f"from a {n}" for n in range(5)])
    b.handle_line(bob_b, "and from b")
    assert any(n.startswith("slow down") for n in bob_b_sees.notices)
    # (nothing on its way either: 0.3 s is many loop turns and Redis round trips on loopback)
    await stays_false(lambda: "and from b" in carol_sees.texts(Kind.CHAT), for_=0.3,
                      message="a line refused for the rate limit reached carol")


async def test_an_address_blocked_on_one_node_is_turned_away_by_the_other(nodes: Nodes) -> None:
    settings = {"rate_burst": 1, "rate_per_second": 0.001, "offence_threshold": 2}
    a, b = await nodes(**settings), await nodes(**settings)
    address = "198.51.100.66"
    for n in range(2):
        flooder, _ = person(a, f"flood{n}", None, address)
        a.handle_line(flooder, "x")
        a.handle_line(flooder, "y")
    assert a.screen_address(address) is not None
    await eventually(lambda: b.screen_address(address) is not None)


async def test_an_ignored_persons_line_filled_in_from_the_database_stays_hidden(nodes: Nodes) -> None:
    """alice's first line never reaches Redis (as if her node died between
    the commit and the publish); bob's node reads it from PostgreSQL when her
    next line shows the gap. bob ignores alice (a keyless person: by her
    session), so he sees neither; carol sees both, in order."""
    a, b = await nodes(), await nodes()
    alice, alice_sees = person(a, "alice", None, "198.51.100.20")
    bob, bob_sees = person(b, "bob", BOB)
    _, carol_sees = person(b, "carol")
    bob.prefs.ignore(alice.person)  # what /ignore alice does (these nodes mirror no people: no roster)
    bus_a = nodes.buses[a]
    sending, bus_a._outbox = bus_a._outbox, deque()  # what she says now never reaches Redis
    a.handle_line(alice, "lost on the way")
    await eventually(lambda: alice_sees.texts(Kind.CHAT) == ["lost on the way"])  # committed, published
    bus_a._outbox = sending
    a.handle_line(alice, "and after it")
    await eventually(lambda: carol_sees.texts(Kind.CHAT) == ["lost on the way", "and after it"])
    assert nodes.buses[b]._buffer is not None and nodes.buses[b]._buffer.counts.filled == 1
    assert bob_sees.texts(Kind.CHAT) == []


async def test_offences_split_across_two_nodes_earn_the_block(nodes: Nodes) -> None:
    """Two refused logins on each node, four in all: the threshold's four."""
    a, b = await nodes(offence_threshold=4), await nodes(offence_threshold=4)
    address = "198.51.100.67"
    for node in (a, b, a, b):
        with pytest.raises(JoinRefused):
            node.join("not a name!", None, Recorder(), address)
    await eventually(lambda: a.screen_address(address) is not None and b.screen_address(address) is not None)


async def test_a_keyless_mute_holds_the_address_on_the_other_node(nodes: Nodes) -> None:
    admin = "SHA256:adminKeyFingerprint".ljust(50, "0")
    a, b = await nodes(admins=frozenset({admin})), await nodes()
    boss, _ = person(a, "boss", admin, "192.0.2.1")
    anon, _ = person(a, "anon", None, "198.51.100.68")
    a.handle_line(boss, "/mute anon")
    a.leave(anon)
    await eventually(lambda: b.moderation.mute_of("address:198.51.100.68") is not None)
    _, again_sees = person(b, "newname", None, "198.51.100.68")
    assert any(n.startswith("you are muted") for n in again_sees.notices)
