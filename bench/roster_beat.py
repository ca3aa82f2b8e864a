"""Redis time of one roster heartbeat, by people online on the node.

    python -m bench.roster_beat                      # 0, 1000 and 10000 names
    python -m bench.roster_beat --names 1000 --beats 50
    PYTHONPATH=/path/to/old/checkout python -m bench.roster_beat   # another version's roster

Run it from the repository root. A redis-server of its own is started (as
the tests do, tests/support/redis.py). A node's roster claims N names, one
other node beats beside it (so the beat also looks at a node), then
``--beats`` beats are run back to back; the figure is Redis's own time for
them (INFO commandstats, every command, summed, reset after the claims) per
beat, and the wall time per beat seen by the node. The first beat (which
writes the node's people once) is counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from sshchat.bus.roster import RedisRoster
from sshchat.chat.bus import Arrived
from tests.support.redis import RedisServer


class Node:
    """The hub's side: N people, nobody lost, no mirror to check."""

    def __init__(self, names: int) -> None:
        self.held: list[tuple[str, str | None]] = [(f"user{n}", f"SHA256:{n:043d}") for n in range(names)]

    def held_names(self) -> list[tuple[str, str | None]]:
        return list(self.held)

    def mirrored_nodes(self) -> list[str]:
        return ["other"]

    def node_gone(self, node: str) -> None:
        pass

    def node_forgotten(self) -> None:
        pass

    def name_lost(self, name: str, fingerprint: str | None) -> None:
        pass

    def people(self) -> tuple[int, list[Arrived]]:
        return len(self.held), [Arrived("bench", n, name, fp, "10.0.0.1", "#lobby", ["#lobby"], None, 1.0, 2.0, n)
                                for n, (name, fp) in enumerate(self.held)]

    def mirror_seq(self, node: str) -> int:
        return 1 << 40

    def reconcile(self, node: str, people: list[Arrived], seq: int) -> None:
        pass


async def redis_usec(client: aioredis.Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return sum(int(v["usec"]) for v in stats.values())


async def measure(url: str, names: int, beats: int) -> dict[str, float]:
    client = aioredis.Redis.from_url(url)
    await client.flushall()
    other = RedisRoster(url, "other")  # beats on its own
    other.attach(Node(0))  # type: ignore[arg-type]
    await other.start()
    node = Node(names)
    roster = RedisRoster(url, "bench", ttl=3600, every=3600)  # beats run here, not by its loop
    roster.attach(node)  # type: ignore[arg-type]
    await roster.start()
    answers: list[Any] = []
    for name, fp in node.held:
        roster.claim(name, fp, True, answers.append)
    while len(answers) < names:
        await asyncio.sleep(0.01)
    await roster._beat()
    await client.config_resetstat()
    start = time.perf_counter()
    for _ in range(beats):
        await roster._beat()
    wall = time.perf_counter() - start
    used = await redis_usec(client)
    await client.delete("sshchat:node:bench")
    await client.config_resetstat()
    await roster._beat()
    lost = await redis_usec(client)
    await roster.close()
    await other.close()
    await client.aclose()
    return {"names": names, "lost_beat_ms": lost / 1000, "redis_ms_per_beat": used / beats / 1000,
            "wall_ms_per_beat": wall / beats * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, action="append", help="names held (repeatable); 0, 1000, 10000")
    parser.add_argument("--beats", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder))
        try:
            for names in args.names or [0, 1000, 10000]:
                r = await measure(server.url, names, args.beats)
                print(f"{r['names']:>6} names: Redis {r['redis_ms_per_beat']:.3f} ms/beat, "
                      f"wall {r['wall_ms_per_beat']:.3f} ms/beat "
                      f"(the beat that finds its heartbeat lost: Redis {r['lost_beat_ms']:.3f} ms)")
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
