"""What reading the Redis bus costs a node, per entry of another node.

    python -m bench.bus_read                  # 20,000 entries, 3 rounds
    python -m bench.bus_read --entries 50000 --rounds 5

Run it from the repository root. Every node reads every entry of every other
node (sshchat/bus/redis.py), so this cost is paid once per line said
anywhere in the cluster, on each node. A child process writes ``--entries``
room lines (as another node's bus does: XADD with its node, time and
event); this process runs a RedisBus that reads them into its reorder
buffer, delivering to nobody. The figure is this process's CPU time (user
and system, from the first entry written to the last delivered) per entry:
the XREAD, its parsing, the event's decoding and the buffer, nothing of the
chat. redis-server is started by the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from sshchat.bus.codec import encode
from sshchat.bus.redis import STREAM, RedisBus
from sshchat.chat.bus import Event, RoomLine
from sshchat.chat.message import Kind, Message
from tests.support.redis import RedisServer

ROOMS = 20


class _NoStore:
    """The bus's backfill: nothing is ever missing here."""

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Message]], None]) -> None:
        done([])

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        done({})


def _write(url: str, entries: int, first: int) -> None:
    """Another node: ``entries`` room lines, ids following on from ``first`` in each room."""
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for n in range(entries):
        msg = Message(first + n // ROOMS, f"#room{n % ROOMS}", Kind.CHAT, f"user{n % 200}",
                      f"a line of chat, number {n}, of about the usual length", time.time())
        pipe.xadd(STREAM, {"n": b"elsewhere:1:0", "t": repr(time.time()), "e": encode(RoomLine(msg, True, "SHA256:x"))})
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()


async def _round(url: str, entries: int, first: int) -> float:
    """CPU microseconds this process spent per entry read."""
    got = [0]
    finished = asyncio.Event()

    def receive(_event: Event) -> None:
        got[0] += 1
        if got[0] == entries:
            finished.set()

    bus = RedisBus(url, _NoStore(), stream_cap=10 * entries, gap_wait=5.0, start_wait=5.0, sweep_every=3600)
    bus.attach(receive, {f"#room{r}": first - 1 for r in range(ROOMS)})
    await bus.start()
    writer = multiprocessing.get_context("fork").Process(target=_write, args=(url, entries, first))
    began = os.times()
    writer.start()
    await asyncio.wait_for(finished.wait(), 120)
    ended = os.times()
    writer.join()
    await bus.close()
    cpu = (ended.user - began.user) + (ended.system - began.system)  # this process only, not the writer
    return 1e6 * cpu / entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp))
        try:
            results = []
            for r in range(args.rounds):
                first = 1 + r * (args.entries // ROOMS + 1)
                results.append(asyncio.run(_round(server.url, args.entries, first)))
            print(f"bus read: {min(results):.1f} - {max(results):.1f} us of CPU per entry"
                  f" ({args.rounds} rounds of {args.entries:,})", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
