"""Commit throughput of the stores: SQLite vs PostgreSQL, one node and two.

    python -m bench.store_commit                 # both stores, about 30 s
    python -m bench.store_commit --messages 5000 --seconds 1

Run it from the repository root. PostgreSQL is started by the benchmark (as
the tests do, tests/support/postgres.py) with its own defaults, fsync and
synchronous commit on, so a commit waits for the disk as in production.

Two loads, each a message per append as the chat makes them:

* flood: ``--messages`` appends queued at once; messages committed a second
  from the first append to the last callback. Batches grow by themselves:
  this is the most a store commits.
* one at a time: append, wait for its callback, again, for ``--seconds``;
  commits a second and the mean time of one (a batch of one: the latency
  under light load).

"two nodes" are two PostgreSQL stores on one database, each in a process of
its own as nodes are, writing at once to the same room (the worst case: both
take that room's counter row, held until the commit) or to a room each; the
figure is their total. SQLite is one
server per file, so it has one node only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sshchat.chat.message import Kind
from sshchat.chat.store import Draft
from sshchat.store.postgres import PostgresStore
from sshchat.store.sqlite import SQLiteStore
from tests.support.postgres import PostgresServer, binaries

ROOM = ["#lobby"]  # the room a node writes to (set per node process)


def _draft(n: int) -> Draft:
    return Draft(ROOM[0], Kind.CHAT, "alice", f"message number {n} of the benchmark", time.time())


def flood(stores: list[Any], messages: int) -> float:
    """Messages committed a second, all stores together, ``messages`` queued on each at once."""
    left = [messages * len(stores)]
    lock = threading.Lock()
    finished = threading.Event()

    def done(result: object) -> None:
        assert isinstance(result, list), result
        with lock:
            left[0] -= 1
            if left[0] == 0:
                finished.set()

    start = time.perf_counter()
    for n in range(messages):
        for store in stores:
            store.append([_draft(n)], done)
    assert finished.wait(300)
    return messages * len(stores) / (time.perf_counter() - start)


def one_at_a_time(stores: list[Any], seconds: float) -> tuple[float, float]:
    """(commits a second, all stores together; mean ms a commit) with one append in flight per store."""
    counts = [0] * len(stores)
    end = time.perf_counter() + seconds

    def run(i: int) -> None:
        answered = threading.Event()
        while time.perf_counter() < end:
            answered.clear()
            stores[i].append([_draft(counts[i])], lambda _r: answered.set())
            answered.wait(30)
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    total = sum(counts)
    return total / wall, 1000 * wall * len(stores) / total


def _node(open_store: Callable[[], Any], room: str, args: argparse.Namespace, start: Any, out: Any) -> None:
    """One node (a process): open its store, then the two loads, each begun with the others."""
    ROOM[0] = room
    store = open_store()
    try:
        start.wait()
        began = time.perf_counter()
        flood([store], args.messages)
        ended = time.perf_counter()
        start.wait()
        per_second, ms = one_at_a_time([store], args.seconds)
        out.put((began, ended, per_second, ms))
    finally:
        store.close()


def measure(name: str, open_store: Callable[[], Any], rooms: list[str], args: argparse.Namespace) -> None:
    """One node per entry of ``rooms``, writing to that room."""
    nodes = len(rooms)
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(nodes), ctx.Queue()
    procs = [ctx.Process(target=_node, args=(open_store, room, args, start, out)) for room in rooms]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    rate = args.messages * nodes / wall
    per_second = sum(r[2] for r in results)
    ms = sum(r[3] for r in results) / nodes
    print(f"{name:<34} {rate:>12,.0f} {per_second:>14,.0f} {ms:>10.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="appends queued at once, per store")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the one-at-a-time run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of every case")
    parser.add_argument(
        "--postgres", metavar="URL", help="use this database for every PostgreSQL case instead of starting a server"
    )
    args = parser.parse_args()
    bin_dir = binaries()
    pg = PostgresServer(bin_dir, durable=True) if bin_dir and not args.postgres else None

    def database() -> str | None:
        return args.postgres or (pg.new_database() if pg is not None else None)

    with tempfile.TemporaryDirectory() as tmp:
        try:
            print(f"{'store':<34} {'flood msg/s':>12} {'1-at-a-time/s':>14} {'ms/commit':>10}")
            for r in range(args.rounds):
                path = str(Path(tmp) / f"bench{r}.db")
                measure("sqlite (WAL, synchronous=NORMAL)", lambda path=path: SQLiteStore(path), ["#a"], args)
                one = database()
                if one is None:
                    print("postgresql: not installed, skipped")
                    continue
                measure("postgresql, one node", lambda one=one: PostgresStore(one), ["#a"], args)
                two = database()
                measure("postgresql, two nodes, one room", lambda two=two: PostgresStore(two), ["#a", "#a"], args)
                apart = database()
                measure("postgresql, two nodes, two rooms", lambda u=apart: PostgresStore(u), ["#a", "#b"], args)
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    main()
