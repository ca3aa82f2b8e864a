"""The Redis bus (sshchat/bus/redis.py) with two nodes on one redis-server of
the test's own: what one publishes reaches both, each room in id order, once;
a Redis restart or a node cut off from it loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sshchat.bus.redis import RedisBus
from sshchat.chat.bus import BusError, Event, Private, RoomLine
from tests.support.bus import Received, SequencedStore
from tests.support.proxy import Relay
from tests.support.redis import RedisServer, free_port
from tests.support.waiting import eventually

Node = tuple[RedisBus, Received]


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Any]]:
    """Start bus nodes on a Redis URL, sharing one store; all closed at the end."""
    started: list[RedisBus] = []

    async def start(url: str, store: SequencedStore, **options: Any) -> Node:
        settings: dict[str, Any] = {"stream_cap": 10_000, "gap_wait": 0.2, "start_wait": 5.0, **options}
        bus = RedisBus(url, store, **settings)
        got = Received()
        bus.attach(got, {})
        await bus.start()
        started.append(bus)
        return bus, got

    yield start
    for bus in started:
        await bus.close(wait=0.5)


def in_order(got: Received, room: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        return got.ids(room) == list(range(1, count + 1))

    check.__name__ = f"{room} has 1..{count} in order, once each (has {got.ids(room)[-5:]}...)"
    return check


async def publish(node: RedisBus, event: Event, pause: float = 0.0) -> None:
    node.publish(event)
    await asyncio.sleep(pause)


async def _lost_with_redis(
    a: RedisBus, b: RedisBus, store: SequencedStore, relay: Relay, redis_server: RedisServer
) -> None:
    """While B is cut off (by ``relay``) after the room's first line, A
    publishes lines 2..31; Redis then restarts empty, so they are nowhere
    but in the store, and B is let back in and reconnects."""
    for n in range(30):
        await publish(a, store.line("#a", f"lost {n}"))
    await eventually(lambda: a.published == 31)
    await asyncio.to_thread(redis_server.restart)
    relay.restore()
    await eventually(lambda: b.connected, timeout=10)


async def test_what_either_node_publishes_reaches_both_in_each_rooms_order(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    store = SequencedStore()
    (a, got_a), (b, got_b) = await nodes(redis_server.url, store), await nodes(redis_server.url, store)
    for n in range(200):
        sender = a if n % 3 else b
        event = store.line("#a" if n % 2 else "#b", f"m{n}") if n % 10 else store.private(f"p{n}")
        await publish(sender, event, 0.001 if n % 7 == 0 else 0.0)
    counts = {room: len(kept) for room, kept in store.rooms.items()}
    for got in (got_a, got_b):
        for room, count in counts.items():
            await eventually(in_order(got, room, count))
    assert got_a.events[0] is not got_b.events[0]  # each node has its own copy
    assert store.reads == []  # nothing was lost on the way: no gap was read from the store
    assert len(a.lags) > 0 and len(b.lags) > 0
    assert 0 <= max([*a.lags, *b.lags]) < 2.0


async def test_events_keep_what_the_receiver_needs(redis_server: RedisServer, nodes: Callable[..., Any]) -> None:
    store = SequencedStore()
    (a, _), (_, got_b) = await nodes(redis_server.url, store), await nodes(redis_server.url, store)
    line = store.line("#a", "héllo \x1b")
    pm = Private(store.commit("", "psst", "alice", "bob"), "fingerprint:SHA256:a", "session:4")
    a.publish(line)
    a.publish(pm)
    await eventually(lambda: len(got_b.events) == 2)
    got_line, got_pm = got_b.events
    assert isinstance(got_line, RoomLine) and isinstance(got_pm, Private)
    assert (got_line.msg.id, got_line.msg.text, got_line.keep, got_line.sender) == (1, "héllo \x1b", True,
                                                                                    line.sender)
    assert (got_pm.msg.recipient, got_pm.sender, got_pm.recipient) == ("bob", "fingerprint:SHA256:a", "session:4")


async def test_a_redis_restart_while_publishing_loses_nothing_and_doubles_nothing(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    store = SequencedStore()
    (a, got_a), (b, got_b) = await nodes(redis_server.url, store), await nodes(redis_server.url, store)
    restarted = None
    for n in range(300):
        if n == 100:
            restarted = asyncio.create_task(asyncio.to_thread(redis_server.restart))
        await publish(a if n % 2 else b, store.line("#a", f"m{n}"), 0.003)
    assert restarted is not None
    await restarted
    for got in (got_a, got_b):
        await eventually(in_order(got, "#a", 300), timeout=10)
    assert got_a.ids("#a") == got_b.ids("#a") == list(range(1, 301))


async def test_a_node_cut_off_for_a_while_catches_up_from_its_last_id(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    store = SequencedStore()
    relay = await Relay(redis_server.port).start()
    try:
        (a, got_a), (b, got_b) = await nodes(redis_server.url, store), await nodes(relay.url(), store)
        for n in range(20):
            await publish(a, store.line("#a", f"before {n}"))
        await eventually(in_order(got_b, "#a", 20))
        relay.cut()
        await eventually(lambda: not b.connected)
        for n in range(100):
            await publish(a, store.line("#a", f"away {n}"), 0.002)
        b_said = store.line("#b", "said while cut off")
        b.publish(b_said)
        assert got_b.ids("#a") == list(range(1, 21))  # nothing arrived meanwhile...
        relay.restore()
        await eventually(in_order(got_b, "#a", 120), timeout=10)  # ...and all of it after, from the stream
        await eventually(in_order(got_a, "#b", 1))  # what it said meanwhile was sent once it was back
        assert store.reads == []
        assert got_b.ids("#a") == list(range(1, 121))
    finally:
        await relay.close()


async def test_what_a_restarted_empty_redis_lost_is_read_from_the_store(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    """B is cut off while A publishes; Redis then restarts empty, so what A
    published meanwhile is nowhere but in the store: B reads it from there."""
    store = SequencedStore()
    relay = await Relay(redis_server.port).start()
    try:
        (a, _), (b, got_b) = await nodes(redis_server.url, store), await nodes(relay.url(), store)
        await publish(a, store.line("#a", "first"))
        await eventually(in_order(got_b, "#a", 1))
        relay.cut()
        await _lost_with_redis(a, b, store, relay, redis_server)
        for n in range(5):
            await publish(a, store.line("#a", f"after {n}"))
        await eventually(in_order(got_b, "#a", 36), timeout=10)
        assert store.reads and store.reads[0][:2] == ("#a", 1)
    finally:
        await relay.close()


async def test_an_unreachable_redis_at_start_is_one_line_after_a_bounded_wait(tmp_path: Any) -> None:
    port = free_port()  # nothing listens there
    bus = RedisBus(f"redis://127.0.0.1:{port}/0", SequencedStore(), stream_cap=100, gap_wait=0.2, start_wait=0.5)
    bus.attach(Received(), {})
    began = time.monotonic()
    with pytest.raises(BusError) as refused:
        await bus.start()
    assert time.monotonic() - began < 3.0
    assert str(refused.value).startswith(f"cannot reach Redis at 127.0.0.1:{port}: ")
    assert "\n" not in str(refused.value)


async def test_publishing_never_waits_for_redis(redis_server: RedisServer, nodes: Callable[..., Any]) -> None:
    store = SequencedStore()
    (a, got_a), (_, got_b) = await nodes(redis_server.url, store), await nodes(redis_server.url, store)
    redis_server.kill()
    began = time.perf_counter()
    for n in range(1000):
        a.publish(store.line("#a", f"m{n}"))
    assert time.perf_counter() - began < 0.5
    assert got_a.ids("#a") == list(range(1, 1001))  # this node's people saw each at once
    await asyncio.to_thread(redis_server.start)
    await eventually(in_order(got_b, "#a", 1000), timeout=15)  # sent once Redis was back


async def test_a_message_committed_but_never_published_reaches_every_node_within_seconds(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    """Its node died between the commit and the XADD, and nothing is said in
    the room after it: the sweeps of the store's last ids find it."""
    store = SequencedStore()
    (a, got_a), (_b, got_b) = (
        await nodes(redis_server.url, store, sweep_every=0.2),
        await nodes(redis_server.url, store, sweep_every=0.2),
    )
    await publish(a, store.line("#a", "published"))
    store.line("#a", "committed, never published")
    store.commit("", "a /msg committed, never published", recipient="bob")
    for got in (got_a, got_b):
        await eventually(in_order(got, "#a", 2), timeout=3)
        await eventually(lambda got=got: got.texts("") == ["a /msg committed, never published"], timeout=3)


async def test_a_node_back_on_a_restarted_empty_redis_reads_what_it_missed_at_once(
    redis_server: RedisServer, nodes: Callable[..., Any]
) -> None:
    """What A published while B was cut off is lost with Redis, and the room
    stays silent after: B reads it from the store as soon as it is back, not
    at the next sweep (which this test puts a minute away)."""
    store = SequencedStore()
    relay = await Relay(redis_server.port).start()
    try:
        (a, _), (b, got_b) = (
            await nodes(redis_server.url, store, sweep_every=60),
            await nodes(relay.url(), store, sweep_every=60),
        )
        await publish(a, store.line("#a", "first"))
        await eventually(in_order(got_b, "#a", 1))
        relay.cut()
        await eventually(lambda: not b.connected)
        await _lost_with_redis(a, b, store, relay, redis_server)
        await eventually(in_order(got_b, "#a", 31), timeout=3)
    finally:
        await relay.close()


async def test_a_lag_report_covers_the_entries_read_since_the_last_one(
    redis_server: RedisServer, nodes: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    store = SequencedStore()
    (a, _), (b, got_b) = await nodes(redis_server.url, store), await nodes(redis_server.url, store)
    caplog.set_level(logging.INFO, logger="sshchat")
    for n in range(5):  # a burst, like the logins before a bench measures
        a.publish(store.line("#a", f"m{n}"))
    await eventually(lambda: len(got_b.events) == 5)
    b.report_lags()
    for n in range(3):  # the stretch an operator (or the bench) asks about
        a.publish(store.line("#a", f"w{n}"))
    await eventually(lambda: len(got_b.events) == 8)
    b.report_lags()
    b.report_lags()
    reports = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bus lag report")]
    assert [r.split(": p50")[0] for r in reports] == [
        "bus lag report 1: over 5 entries read since the last",
        "bus lag report 2: over 3 entries read since the last",
        "bus lag report 3: no entries read since the last",
    ]
