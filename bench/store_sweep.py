"""The cost of the bus's sweep with many rooms: PostgreSQL's ``last_ids``.

    python -m bench.store_sweep                      # 10,000 rooms, 40 sweeps
    python -m bench.store_sweep --rooms 50000 --sweeps 20 --postgres URL

Run it from the repository root. A cluster node asks the store for the
rooms' last ids every 2 s (sshchat/bus/redis.py) and its reorder buffer
compares them with what it has delivered. A cluster keeps a counter row
for every room ever made, most of them silent; this makes ``--rooms`` rooms
of one message each, then times sweeps while one room is written between
two sweeps, as in a chat where a few rooms are busy:

* read: ms from the ask to the answer (the store thread's query);
* buffer: ms of the reorder buffer's ``sweep`` on that answer (the event
  loop's share, the chat waits for it);
* rooms: how many rooms the answer listed.

PostgreSQL is started by the benchmark (fsync off: no commit is timed here)
unless ``--postgres`` names a database.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from sshchat.bus.order import ReorderBuffer
from sshchat.chat.bus import RoomLine
from sshchat.chat.message import Kind
from sshchat.chat.store import Draft
from sshchat.store.postgres import PostgresStore
from tests.support.postgres import PostgresServer, binaries


def _wait(ask: Any) -> Any:
    """Call ``ask(done)`` and wait for its answer (on the store thread: no event loop here)."""
    got: list[Any] = []
    answered = threading.Event()
    ask(lambda value: (got.append(value), answered.set()))
    assert answered.wait(60)
    return got[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--sweeps", type=int, default=40)
    parser.add_argument("--postgres", metavar="URL", help="a database to use instead of starting a server")
    args = parser.parse_args()
    pg = None
    url = args.postgres
    if url is None:
        bin_dir = binaries()
        if bin_dir is None:
            raise SystemExit("postgresql: not installed")
        pg = PostgresServer(bin_dir)
        url = pg.new_database()
    try:
        store = PostgresStore(url)
        try:
            made = _wait(lambda done: store.append(
                [Draft(f"#r{n}", Kind.CHAT, "alice", "hello", time.time()) for n in range(args.rooms)], done
            ))
            assert isinstance(made, list), made
            snap = store.load(1)
            buffer = ReorderBuffer(lambda _e: None, store, 0.2, snap.last_ids, call_later=lambda _d, _c: _NoTimer())
            reads, sweeps, listed = [], [], []
            for n in range(args.sweeps):
                said = _wait(lambda done, n=n: store.append(
                    [Draft(f"#r{n % 10}", Kind.CHAT, "bob", f"busy {n}", time.time())], done
                ))
                for msg in said:  # delivered by the bus, as it would be
                    buffer.push(RoomLine(msg, True, None))
                began = time.perf_counter()
                last_ids = _wait(store.last_ids)
                read = time.perf_counter()
                buffer.sweep(last_ids)
                reads.append(1000 * (read - began))
                sweeps.append(1000 * (time.perf_counter() - read))
                listed.append(len(last_ids))
            print(f"{args.rooms:,} rooms, {args.sweeps} sweeps (median, max):"
                  f" read {statistics.median(reads):.2f} / {max(reads):.2f} ms,"
                  f" buffer {statistics.median(sweeps):.3f} / {max(sweeps):.3f} ms,"
                  f" rooms listed {statistics.median(listed):.0f} / {max(listed)}", flush=True)
        finally:
            store.close()
    finally:
        if pg is not None:
            pg.stop()


class _NoTimer:
    def cancel(self) -> None:
        pass


if __name__ == "__main__":
    main()
