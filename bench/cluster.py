"""The load generator against a cluster it starts: ``python -m bench.cluster --help``.

    python -m bench.cluster --setup one     --users 500 --duration 10   # one process, SQLite, no bus
    python -m bench.cluster --setup workers --users 500 --duration 10   # --workers 2 on Redis + PostgreSQL
    python -m bench.cluster --setup nodes   --users 500 --duration 10   # two `sshchat serve` on them
    python -m bench.cluster --setup nodes   --users 1000 --logins-only

Run it from the repository root. Every option after ``--setup`` (and
``--timeout``) goes to ``bench.loadgen`` as is (``--typing``,
``--ack-every-read``, ``--json``...), which is told the servers' ports and
pids: with two nodes user i connects to node i mod 2, so every line
crosses to the other node for half its readers.

``workers`` and ``nodes`` get a redis-server and a PostgreSQL of their own
(the test suite's starters, tests/support/, as bench/store_commit.py uses
them: the suite never imports bench, bench may use its helpers), on free
loopback ports in temporary folders, PostgreSQL with its own defaults
(fsync and synchronous commit on), stopped by their pids at the end.
``one`` is today's single process: SQLite, the in-process bus.

What it adds to loadgen's report: the CPU of every server process summed
(a ``--workers`` parent and its workers, or both nodes), Redis' and
PostgreSQL's CPU per delivery apart, with two nodes the latency of the
deliveries that crossed nodes, and each node's (or worker's) bus lag
(publish on one node to read on another, the RedisBus' own figure) over
the measured window: SIGUSR1 to every server as the window starts (the
bus logs its lag so far, logins included, and starts afresh) and again
once every measured line was read (the window's lag: report 2), and over
the whole run as logged at stop (the last 10,000 entries read). The
servers log at ``info`` in every setup (as they do by default; the bus
lag lines need it), so compare setups of one sitting.

The whole run is bounded by ``--timeout`` (SIGALRM); whatever happens,
everything it started is stopped by pid.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from types import FrameType

from bench import loadgen
from bench.server import ServerUnderTest
from tests.support.postgres import PostgresServer, binaries
from tests.support.redis import REDIS_SERVER, RedisServer

SETUPS = ("one", "workers", "nodes")
_LAG = re.compile(r"bus lag over the last (\d+) entries read: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms")
_WINDOW_LAG = re.compile(r"bus lag report 2: over (\d+) entries read since the last(?: \(the newest of \d+\))?: "
                         r"p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms")
SERVER_ENV = {"SSHCHAT_LOG_LEVEL": "info"}


class OutOfTime(Exception):
    """--timeout passed."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise OutOfTime


@contextmanager
def _services(stack: ExitStack) -> Iterator[tuple[RedisServer, PostgresServer, str]]:
    """A redis-server and a PostgreSQL with a fresh database, stopped on the way out."""
    pg_bin = binaries()
    if REDIS_SERVER is None or pg_bin is None:
        raise SystemExit("bench.cluster: needs redis-server and PostgreSQL's binaries (see .ci/run)")
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sshchat-bench-redis-")))
    redis = RedisServer(folder)
    stack.callback(redis.stop)
    pg = PostgresServer(pg_bin, durable=True)
    stack.callback(pg.stop)
    yield redis, pg, pg.new_database()


def _spawn(stack: ExitStack, db: str | None = None, extra: tuple[str, ...] = ()) -> ServerUnderTest:
    server = ServerUnderTest.spawn(SERVER_ENV, db=db, extra_args=extra, timeout=60)
    stack.callback(server.cleanup)
    stack.callback(server.stop)
    return server


def bus_lags(log: str) -> list[tuple[int, float, float, float]]:
    """(entries, p50, p99, max ms) of each bus-lag line in a server's log (one per node or worker)."""
    return [(int(n), float(a), float(b), float(c)) for n, a, b, c in _LAG.findall(log)]


def window_lags(log: str) -> list[tuple[int, float, float, float]]:
    """(entries, p50, p99, max ms) over the measured window: each node's or
    worker's second SIGUSR1 report (the first ends at the window's start)."""
    return [(int(n), float(a), float(b), float(c)) for n, a, b, c in _WINDOW_LAG.findall(log)]


def _report_lags(pids: list[int]) -> None:
    """SIGUSR1 to each server: each node (a --workers parent passes it on) logs its bus lag since the last."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)


def _add_to_json(rest: list[str], window: list[dict[str, float]]) -> None:
    """The window's bus lag into loadgen's --json report, if one was written."""
    path = next((b for a, b in itertools.pairwise(rest) if a == "--json"), None)
    path = path or next((a.split("=", 1)[1] for a in rest if a.startswith("--json=")), None)
    if path is None or not window or not os.path.exists(path):
        return
    with open(path) as f:
        report = json.load(f)
    report["bus_lag_window"] = window
    with open(path, "w") as f:
        json.dump(report, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0],
                                epilog="Other options are bench.loadgen's (python -m bench.loadgen --help).")
    p.add_argument("--setup", choices=SETUPS, default="one",
                   help="one process (SQLite), --workers 2, or two nodes (Redis + PostgreSQL)")
    p.add_argument("--timeout", type=float, default=600.0, help="the whole run ends by then, seconds (default 600)")
    args, rest = p.parse_known_args(argv)
    if any(a in ("--spawn", "--port", "--server-pid", "--service-pid") or a.startswith("--port=") for a in rest):
        p.error("the servers are this script's: leave out --spawn, --port, --server-pid and --service-pid")

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    servers: list[ServerUnderTest] = []
    status = 1
    try:
        with ExitStack() as stack:
            services: list[int] = []
            if args.setup == "one":
                servers.append(_spawn(stack))
            else:
                redis, pg, db = stack.enter_context(_services(stack))
                assert redis.proc is not None
                services = [redis.proc.pid, pg.proc.pid]
                bus = ("--bus", redis.url)
                if args.setup == "workers":
                    servers.append(_spawn(stack, db, (*bus, "--workers", "2")))
                else:
                    servers += [_spawn(stack, db, bus) for _ in range(2)]
            pids = [str(s.pid) for s in servers]
            ports = ",".join(str(s.port) for s in servers)
            print(f"bench.cluster: {args.setup}: servers {ports} (pids {' '.join(pids)})"
                  + (f", Redis + PostgreSQL pids {services[0]} {services[1]}" if services else ""), flush=True)
            marks = None if args.setup == "one" else (lambda _: _report_lags([s.pid for s in servers if s.pid]))
            status = loadgen.main([*rest, "--port", ports, *(a for pid in pids for a in ("--server-pid", pid)),
                                   *(a for pid in services for a in ("--service-pid", str(pid)))], marks)
            for server in servers:  # stopped now, so that each logs its bus lag
                server.stop()
            window: list[dict[str, float]] = []
            for server in servers:
                text = server.log_text()
                for n, p50, p99, most in window_lags(text):
                    window.append({"port": server.port, "entries": n, "p50_ms": p50, "p99_ms": p99, "max_ms": most})
                    print(f"bus lag, measured window (node on {server.port}, {n} entries): "
                          f"p50 {p50} ms, p99 {p99} ms, max {most} ms")
                for n, p50, p99, most in bus_lags(text):
                    print(f"bus lag, whole run (node on {server.port}, last {n} entries): "
                          f"p50 {p50} ms, p99 {p99} ms, max {most} ms")
                bad = server.log_summary()
                if bad.get("warnings_or_errors"):
                    print(f"server on {server.port}: {bad['warnings_or_errors']} warnings or errors: {bad['kinds']}")
                if server.exit_code not in (0, None):
                    print(f"server on {server.port} exited with {server.exit_code}")
            _add_to_json(rest, window)
    except OutOfTime:
        print(f"bench.cluster: out of time after {args.timeout:g} s; everything stopped", file=sys.stderr)
        status = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return status


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"bench.cluster: {time.monotonic() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
