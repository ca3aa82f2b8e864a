"""Rate limits and address blocks across nodes, on a real Redis and PostgreSQL:
two hubs in this process, each with its own store connection and its own
Redis bus, as two nodes are. A flooder gains nothing by opening sessions on
two nodes: lines said on one node empty the same person's bucket on the
other, and an address blocked on one is turned away by the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sshchat.bus.redis import RedisBus
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.store import open_store
from tests.support.chat import person
from tests.support.redis import RedisServer
from tests.support.settings import chat_settings
from tests.support.waiting import eventually, stays_false

BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")


@pytest.fixture
async def nodes(redis_server: RedisServer, pg_url: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Hub, RedisBus]] = []

    async def start(**settings: Any) -> Hub:
        store = open_store(pg_url, asyncio.get_running_loop(), wait=5.0, connect_wait=5.0)
        bus = RedisBus(redis_server.url, store, stream_cap=10_000, gap_wait=0.2, start_wait=5.0)
        hub = Hub(store, chat_settings(**settings), bus=bus)
        await bus.start()
        started.append((hub, bus))
        return hub

    yield start
    for hub, bus in started:
        await bus.close(wait=0.5)
        hub._store.close()


async def test_a_person_on_two_nodes_has_one_rate_limit(nodes: Callable[..., Any]) -> None:
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


async def test_an_address_blocked_on_one_node_is_turned_away_by_the_other(nodes: Callable[..., Any]) -> None:
    settings = {"rate_burst": 1, "rate_per_second": 0.001, "offence_threshold": 2}
    a, b = await nodes(**settings), await nodes(**settings)
    address = "198.51.100.66"
    for n in range(2):
        flooder, _ = person(a, f"flood{n}", None, address)
        a.handle_line(flooder, "x")
        a.handle_line(flooder, "y")
    assert a.screen_address(address) is not None
    await eventually(lambda: b.screen_address(address) is not None)
