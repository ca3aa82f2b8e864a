"""The cluster's roster on a real Redis: atomic name claims, a same-key
takeover, releases, claims renewed after Redis comes back empty, and a node
whose heartbeat stops is reported gone (short TTLs keep this quick)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sshchat.bus.roster import NAME_PREFIX, NODE_PREFIX, RedisRoster
from sshchat.chat.bus import Arrived
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

    def people(self) -> tuple[int, list[Arrived]]:
        return 0, []

    def mirror_seq(self, node: str) -> int:
        return 0

    def reconcile(self, node: str, people: list[Arrived], seq: int) -> None:
        pass


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
        # a was cut off longer than its heartbeat lasts (it expired), and
        # someone on b took a name of a's meanwhile: a's claim died with it
        assert await claim(a, "zed", None) == CLAIMED
        held_a.append(("zed", None))
        assert await claim(b, "zed", "SHA256:other") == Claim(taken=True)
        async with client.pipeline(transaction=True) as pipe:  # at once, before a's next beat
            pipe.delete(NODE_PREFIX + "a")
            pipe.set(NAME_PREFIX + "zed", b"b\nSHA256:other")
            await pipe.execute()
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


async def test_names_live_with_their_node_and_are_never_renewed(redis_server: RedisServer) -> None:
    """A beat renews one key per node, whatever its people: no name has a
    TTL to renew, and none is touched by the beats. A node that stops
    beating (killed) loses every name at once when its heartbeat expires."""
    url = redis_server.url
    held_a = [(f"user{n}", None) for n in range(200)]
    a = await started(url, "a", [])
    gone: list[str] = []
    b = await started(url, "b", [], others=["a"], gone=gone)
    client = aioredis.Redis.from_url(url)
    try:
        assert await asyncio.gather(*(claim(a, name, fp) for name, fp in held_a)) == [CLAIMED] * 200
        a._listener.held = held_a  # type: ignore[union-attr]
        await asyncio.sleep(2.2)  # 20 beats
        assert await client.pttl(NAME_PREFIX + "user7") == -1  # no TTL: nothing to renew
        assert await client.object("idletime", NAME_PREFIX + "user7") >= 2  # untouched since claimed
        assert await claim(b, "user7", None) == Claim(taken=True)
        assert a._loop_task is not None
        a._loop_task.cancel()  # a stops beating, as if killed
        await eventually(lambda: gone == ["a"], timeout=5)
        assert await claim(b, "user7", None) == CLAIMED
        assert await claim(b, "user8", "SHA256:other") == CLAIMED
        # a's claims are cleaned up once by whoever saw it gone
        await eventually(_holds(client, "user9", None), timeout=5)
    finally:
        await b.close()
        await a.close()
        await client.aclose()


async def test_a_claim_whose_person_has_not_joined_yet_survives_a_lost_heartbeat(redis_server: RedisServer) -> None:
    """Between a login's claim and its join the name is not among the hub's
    held names; a node that finds its heartbeat lost just then claims its
    names again and lets go of the rest, but not of that one."""
    url = redis_server.url
    a = await started(url, "a", [])
    b = await started(url, "b", [])
    client = aioredis.Redis.from_url(url)
    try:
        assert await claim(a, "zoe", None) == CLAIMED  # not joined yet: held_names() lacks it
        assert await claim(a, "yan", None) == CLAIMED
        a.release("yan", None)
        await client.delete(NODE_PREFIX + "a")  # as if a was cut off longer than its heartbeat lasts
        await eventually(lambda: client.exists(NODE_PREFIX + "a"), timeout=5)  # a's beat claimed again
        assert await claim(b, "zoe", None) == Claim(taken=True)
        assert await claim(b, "yan", None) == CLAIMED
    finally:
        await b.close()
        await a.close()
        await client.aclose()
