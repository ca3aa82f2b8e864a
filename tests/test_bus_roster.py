"""The cluster's roster on a real Redis: atomic name claims, a same-key
takeover, releases, claims renewed after Redis comes back empty, and a node
whose heartbeat stops is reported gone (short TTLs keep this quick)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sshchat.bus.roster import NAME_PREFIX, RedisRoster
from sshchat.chat.roster import CLAIMED, Claim
from tests.support.redis import RedisServer
from tests.support.waiting import eventually, stays_false

TTL, EVERY = 0.6, 0.1


async def claim(roster: RedisRoster, name: str, fp: str | None, take_over: bool = True) -> Claim:
    answer: asyncio.Future[Claim] = asyncio.get_running_loop().create_future()
    roster.claim(name, fp, take_over, answer.set_result)
    return await asyncio.wait_for(answer, 5)


class Listener:
    """The hub's side, as lists the test reads and changes."""

    def __init__(self, held: list[tuple[str, str | None]], others: Iterable[str], gone: list[str]) -> None:
        self.held, self.others, self.gone = held, others, gone
        self.lost: list[str] = []

    def held_names(self) -> list[tuple[str, str | None]]:
        return list(self.held)

    def mirrored_nodes(self) -> Iterable[str]:
        return self.others

    def node_gone(self, node: str) -> None:
        self.gone.append(node)

    def node_forgotten(self) -> None:
        pass

    def name_lost(self, name: str, fingerprint: str | None) -> None:
        self.lost.append(name)


async def started(url: str, node: str, held: list[tuple[str, str | None]], others: Iterable[str] = (),
                  gone: list[str] | None = None) -> RedisRoster:
    roster = RedisRoster(url, node, ttl=TTL, every=EVERY)
    roster.attach(Listener(held, others, gone if gone is not None else []))
    await roster.start()
    return roster


async def test_claims_renewals_and_a_silent_node(redis_server: RedisServer) -> None:
    url = redis_server.url
    held_a: list[tuple[str, str | None]] = []
    held_b: list[tuple[str, str | None]] = []
    gone: list[str] = []
    a = await started(url, "a", held_a)
    b = await started(url, "b", held_b, others=["a"], gone=gone)
    client = aioredis.Redis.from_url(url)
    try:
        assert await claim(a, "Alice", "K") == CLAIMED
        held_a.append(("Alice", "K"))
        assert await claim(b, "alice", None) == Claim(taken=True)  # keyless: another person
        assert await claim(b, "ALICE", "K", take_over=False) == Claim(taken=True)  # a rename never takes over
        assert await claim(a, "alice", "K") == CLAIMED  # this node's own: the hub decides
        assert await claim(a, "bob", None) == CLAIMED
        a.release("bob", None)
        await eventually(_holds(client, "bob", None))
        # longer than a claim lasts unrenewed: a keeps renewing it
        await stays_false(_holds(client, "alice", None), for_=TTL * 2, interval=0.05)
        redis_server.restart()  # back empty: a's next renewal claims its names again
        await eventually(_holds(client, "alice", b"a\nK"), timeout=5)
        assert await claim(b, "alice", "K") == Claim(displaced="a")  # the same key logs in on b
        held_b.append(("alice", "K"))
        await stays_false(_holds(client, "alice", b"a\nK"), for_=TTL * 2, interval=0.05)  # a does not take it back
        assert not gone
        # a was cut off longer than a claim lasts, and someone on b took a name of a's meanwhile:
        assert await claim(a, "zed", None) == CLAIMED
        held_a.append(("zed", None))
        await client.set(NAME_PREFIX + "zed", b"b\nSHA256:other", px=5000)
        lost = a._listener.lost  # type: ignore[union-attr]
        await eventually(lambda: lost == ["zed"])  # a's hub is told, and its person gives the name up
        await a.close()  # its heartbeat goes: b reports it gone
        await eventually(lambda: gone == ["a"], timeout=5)
    finally:
        await b.close()
        await a.close()
        await client.aclose()


def _holds(client: aioredis.Redis, key: str, value: bytes | None) -> Callable[[], Awaitable[bool]]:
    """Does the claim of ``key`` hold ``value`` (None: nobody holds it)?"""

    async def check() -> bool:
        try:
            return bool(await client.get(NAME_PREFIX + key) == value)
        except (OSError, RedisError):
            return False

    return check


async def test_a_burst_of_300_logins_claims_every_name(redis_server: RedisServer) -> None:
    """300 people arriving at once: each claim is its own task, and all of them
    must get an answer from Redis (a pool that fails past 100 connections
    refused logins with "your name cannot be checked right now")."""
    roster = await started(redis_server.url, "node-a", [])
    try:
        answers = await asyncio.gather(*(claim(roster, f"user{n}", None) for n in range(300)))
        assert [a for a in answers if a is not CLAIMED] == []
    finally:
        await roster.close()
