"""Load generator for SSH chat servers: ``python -m bench.loadgen --help``.

N users are N real SSH connections (asyncssh, keyless, no PTY), each from
its own 127.x source address. S of them send R messages a second, each line
carrying a sequence number and a CLOCK_MONOTONIC send time; everyone reads
everything, so a run measures delivery rate, loss, latency, and (from /proc)
the server's CPU per delivery and memory per session. ``--logins-only``
measures logins alone.

This module is the CLI and the timeline; the users live in worker processes
(``bench.worker``), so ``--processes`` can take the generator off the
critical path. Every step has a deadline: a run always ends by itself.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import multiprocessing
import os
import secrets
import sys
import time
from array import array
from collections import Counter
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from bench import procstats
from bench.client import DIALECTS
from bench.report import percentiles, scaled, table, write_json
from bench.server import ServerError, ServerUnderTest
from bench.worker import WorkerSpec, worker_main

TIMED_PER_SECOND = 10_000  # lines a second the generator parses and times, by default
SSH_CHAT_COLUMNS = 80  # ssh-chat's terminal width without a PTY
BUSY_SATURATED = 0.85  # a generator process this busy may be what limits the run
HOST_SATURATED = 90.0  # % of all cores busy: the machine itself is the limit
LAG_SATURATED_MS = 50.0  # or whose event loop wakes this late (p99)


class BenchError(Exception):
    """The run could not be completed; ``str()`` says why."""


def _loopback(host: str) -> str:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{host!r}: give an IPv4 address in 127.0.0.0/8") from None
    if addr.version != 4 or not addr.is_loopback:
        raise argparse.ArgumentTypeError(f"{host}: only 127.0.0.0/8 is allowed (this is a local benchmark)")
    return host


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description="Measure an SSH chat server with N simulated users over real SSH connections.",
    )
    where = p.add_argument_group("server")
    where.add_argument("--spawn", action="store_true",
                       help="start `python -m sshchat serve` on 127.0.0.1:0 in a temp dir and stop it at the end")
    where.add_argument("--host", type=_loopback, default="127.0.0.1", help="server address (127.x only)")
    where.add_argument("--port", type=int, help="port of an already running server")
    where.add_argument("--server-pid", type=int, help="pid of the attached server, for CPU and RSS")
    where.add_argument("--server-src", metavar="DIR",
                       help="with --spawn: run the server from this source tree (e.g. `git archive` of a commit)")
    where.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                       help="extra environment for --spawn, e.g. SSHCHAT_HISTORY_ON_JOIN=0")
    load = p.add_argument_group("load")
    load.add_argument("--users", type=int, default=100, help="SSH connections (default 100)")
    load.add_argument("--senders", type=int, help="how many of them send (default all)")
    load.add_argument("--rate", type=float, default=0.8, help="messages per second per sender (default 0.8)")
    load.add_argument("--duration", type=float, default=20.0, help="measured seconds (default 20)")
    load.add_argument("--warmup", type=float, default=3.0, help="seconds of sending before measuring (default 3)")
    load.add_argument("--size", type=int, default=64, help="characters per message (default 64)")
    load.add_argument("--logins-only", action="store_true",
                      help="only log N users in as fast as --concurrency allows; report logins/s")
    load.add_argument("--concurrency", type=int, default=50, help="logins in flight at once (default 50)")
    load.add_argument("--addresses", type=int, default=0,
                      help="distinct 127.x source addresses (default: one per user)")
    load.add_argument("--name-prefix", default="u", help="login names are PREFIX0, PREFIX1, ... (default u)")
    load.add_argument("--cipher", help="SSH cipher (default: the first of asyncssh's order the server offers)")
    load.add_argument("--kex", help="SSH key exchange, e.g. curve25519-sha256 (default: asyncssh's order, "
                                    "mlkem768x25519-sha256 first)")
    load.add_argument("--dialect", choices=sorted(DIALECTS), default="sshchat",
                      help="how the server takes and shows lines: sshchat (LF ends a line) or ssh-chat (CR "
                           "ends it; typed text is echoed)")
    gen = p.add_argument_group("generator and report")
    gen.add_argument("--processes", type=int, default=1, help="generator processes to split users over (default 1)")
    gen.add_argument("--sample-every", type=int, default=0, metavar="K",
                     help="time every line at 1 in K users, count at the others (default: K so that about "
                          "10k lines a second are timed)")
    gen.add_argument("--plain-clients", action="store_true",
                     help="asyncssh's clients as they are, without the generator's speed-ups (bench/fastrecv.py)")
    gen.add_argument("--late-ms", type=float, default=1000.0, help="a delivery later than this is late (default 1000)")
    gen.add_argument("--grace", type=float, default=5.0, help="seconds after the last send for stragglers (default 5)")
    gen.add_argument("--login-timeout", type=float, default=30.0, help="seconds per login (default 30)")
    gen.add_argument("--settle-timeout", type=float, default=30.0,
                     help="longest wait for the server to go idle after logins (default 30)")
    gen.add_argument("--json", metavar="PATH", help="write the report here as one JSON object")
    args = p.parse_args(argv)
    if args.spawn == (args.port is not None):
        p.error("give either --spawn or --port")
    if args.users < 1 or args.users > 60000:
        p.error("--users must be 1..60000")
    args.senders = args.users if args.senders is None else args.senders
    if not 0 <= args.senders <= args.users:
        p.error("--senders must be 0..--users")
    if args.rate <= 0 or args.duration < 0 or args.warmup < 0 or args.grace < 0:
        p.error("--rate must be > 0; --duration, --warmup and --grace >= 0")
    if not 1 <= args.processes <= args.users:
        p.error("--processes must be 1..--users")
    if args.concurrency < 1 or args.size < 40:
        p.error("--concurrency must be >= 1 and --size >= 40")
    if args.dialect == "ssh-chat":
        if args.spawn:
            p.error("--dialect ssh-chat measures ssh-chat: give its --port (--spawn starts sshchat)")
        # its echo of the typed line wraps at 80 columns with a newline, which would count as a delivery
        widest = len(f"[{args.name_prefix}{args.users - 1}] ") + args.size
        if widest >= SSH_CHAT_COLUMNS:
            p.error(f"--dialect ssh-chat: '[NAME] ' and --size must stay under {SSH_CHAT_COLUMNS} columns "
                    f"(ssh-chat wraps its echo there); here {widest}")
    if args.addresses <= 0:
        args.addresses = args.users
    if args.sample_every <= 0:
        deliveries = args.senders * args.rate * args.users
        args.sample_every = max(1, math.ceil(deliveries / TIMED_PER_SECOND))
    for item in args.server_env:
        if "=" not in item:
            p.error(f"--server-env {item!r}: expected NAME=VALUE")
    if args.server_src is not None and not (args.spawn and os.path.isdir(os.path.join(args.server_src, "sshchat"))):
        p.error("--server-src needs --spawn and a directory that holds sshchat/")
    if args.server_pid is not None and not procstats.alive(args.server_pid):
        p.error(f"--server-pid {args.server_pid}: no such process")
    return args


class Fleet:
    """The generator processes and a pipe to each; every wait has a deadline."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        ctx = multiprocessing.get_context("spawn")  # nothing inherited but the spec
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for spec in specs:
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(spec, theirs), daemon=True,
                               name=f"bench-worker-{spec.worker}")
            proc.start()
            theirs.close()
            self.pipes.append(ours)
            self.procs.append(proc)

    def send(self, message: tuple[Any, ...]) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def gather(self, kind: str, timeout: float) -> list[Any]:
        """One ``kind`` reply from every worker, or BenchError after ``timeout``."""
        deadline = time.monotonic() + timeout
        replies: dict[int, Any] = {}
        while len(replies) < len(self.pipes):
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"workers did not answer {kind!r} within {timeout:.0f} s")
            for pipe in wait([p for i, p in enumerate(self.pipes) if i not in replies], left):
                i = self.pipes.index(pipe)  # type: ignore[arg-type]
                try:
                    got = pipe.recv()  # type: ignore[union-attr]
                except EOFError:
                    raise BenchError(f"generator process {i} died (exit code {self.procs[i].exitcode})") from None
                if got[0] != kind:
                    raise BenchError(f"worker {i} answered {got[0]!r}, expected {kind!r}")
                replies[i] = got[1]
        return [replies[i] for i in range(len(self.pipes))]

    def stop(self, timeout: float = 10.0) -> None:
        """Join our own worker processes; kill (by Process object) any still running."""
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        for pipe in self.pipes:
            pipe.close()


def settle(pid: int | None, timeout: float, quiet: float = 0.05, window: float = 0.5) -> float:
    """Wait until the server uses under ``quiet`` of a core; return seconds waited.

    After logins the server still fans join notices out to everyone (N^2/2
    lines); "idle" must mean after that. Without a pid, wait a fixed 2 s.
    """
    began = time.monotonic()
    if pid is None or not procstats.alive(pid):
        time.sleep(min(2.0, timeout))
        return time.monotonic() - began
    last = procstats.cpu_seconds(pid)
    while time.monotonic() - began < timeout:
        time.sleep(window)
        now = procstats.cpu_seconds(pid)
        if (now - last) / window < quiet:
            break
        last = now
    return time.monotonic() - began


def _other_load(host0: tuple[float, float], host1: tuple[float, float], server0: float | None,
                server1: float | None, generator: float) -> float | None:
    """Cores busy with neither the server nor the generator over a window.

    Well above 0 means something else ran on the machine (another test
    suite, say) and the figures of that run are suspect.
    """
    if server0 is None or server1 is None:
        return None
    cores = os.cpu_count() or 1
    wall = (host1[1] - host0[1]) / cores
    other = (host1[0] - host0[0]) - (server1 - server0) - generator
    return round(other / wall, 2) if wall > 0 else None


class Run:
    """One benchmark run: the timeline, the measurements, the report."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: ServerUnderTest | None = None
        self.fleet: Fleet | None = None
        self.token = secrets.token_hex(3)
        self.report: dict[str, Any] = {}

    # -- server measurements, None when the pid is unknown --------------------

    def _cpu(self) -> float | None:
        s = self.server
        return procstats.cpu_seconds(s.pid) if s and s.pid and procstats.alive(s.pid) else None

    def _rss(self) -> int | None:
        s = self.server
        return procstats.rss_kib(s.pid) if s and s.pid and procstats.alive(s.pid) else None

    # -------------------------------------------------------------------------

    def _specs(self, port: int) -> list[WorkerSpec]:
        a, P = self.args, self.args.processes
        login_phase = a.login_timeout * math.ceil(a.users / a.concurrency) + 60
        lifetime = login_phase + a.settle_timeout * 2 + a.warmup + a.duration + a.grace + 300
        self.login_phase = login_phase
        return [
            WorkerSpec(
                worker=w, host=a.host, port=port, users=tuple(range(w, a.users, P)), senders=a.senders,
                name_prefix=a.name_prefix, token=self.token, rate=a.rate, size=a.size,
                concurrency=max(1, math.ceil(a.concurrency / P)), login_timeout=a.login_timeout,
                addresses=a.addresses, cipher=a.cipher, kex=a.kex, lifetime=lifetime, sample_every=a.sample_every,
                lean_clients=not a.plain_clients, dialect=a.dialect,
            )
            for w in range(P)
        ]

    def execute(self) -> dict[str, Any]:
        a = self.args
        if a.spawn:
            extra = dict(item.split("=", 1) for item in a.server_env)
            self.server = ServerUnderTest.spawn(extra, a.server_src)
        else:
            self.server = ServerUnderTest(a.host, a.port, a.server_pid)
        server = self.server
        report = self.report
        report["mode"] = "logins" if a.logins_only or a.senders == 0 or a.duration == 0 else "messages"
        report["server"] = {"target": f"{server.host}:{server.port}", "pid": server.pid, "spawned": server.spawned,
                            "src": a.server_src if a.spawn else None}
        report["params"] = {
            "users": a.users, "senders": a.senders if report["mode"] == "messages" else 0, "rate": a.rate,
            "duration": a.duration, "warmup": a.warmup, "size": a.size, "processes": a.processes,
            "concurrency": a.concurrency, "late_ms": a.late_ms, "sample_every": a.sample_every, "lean_clients": not a.plain_clients, "grace": a.grace,
            "addresses": a.addresses, "cipher": a.cipher or "default", "kex": a.kex or "default", "cpu_count": os.cpu_count(),
        }
        rss: dict[str, int | None] = {"start": self._rss()}
        report["rss_kib"] = rss

        self.fleet = fleet = Fleet(self._specs(server.port))
        fleet.gather("hello", 60)
        self._logins(fleet, rss)
        if report["mode"] == "messages":
            self._messages(fleet)
            rss["end"] = self._rss()
        fleet.send(("close", 30.0))
        fleet.gather("closed", 60)
        settle(server.pid, a.settle_timeout)
        rss["after_close"] = self._rss()
        self._generator_summary()
        return report

    def _logins(self, fleet: Fleet, rss: dict[str, int | None]) -> None:
        a, report = self.args, self.report
        cpu0, host0 = self._cpu(), procstats.host_cpu()
        fleet.send(("login",))
        replies = fleet.gather("logged_in", self.login_phase)
        ok = sum(r["ok"] for r in replies)
        seconds = max(r["done"] for r in replies) - min(r["began"] for r in replies)
        durations = array("d")
        failures: Counter[str] = Counter()
        for r in replies:
            durations.extend(r["durations"])
            failures.update(r["failures"])
        host1, cpu_done = procstats.host_cpu(), self._cpu()  # logins done; join notices may still fan out
        waited = settle(self.server.pid if self.server else None, a.settle_timeout)
        cpu1 = self._cpu()
        rss["idle"] = self._rss()
        self.login_replies = replies
        report["logins"] = {
            "ok": ok,
            "failed": sum(r["failed"] for r in replies),
            "failures": dict(failures.most_common(5)),
            "seconds": round(seconds, 3),
            "per_second": round(ok / seconds, 1) if seconds > 0 else None,
            "latency_ms": scaled(percentiles(durations), 1000.0, 1),
            "settle_seconds": round(waited, 2),
            "host_cpu_percent": round((host1[0] - host0[0]) / max(1e-9, host1[1] - host0[1]) * 100, 1),
            "other_load_cores": _other_load(host0, host1, cpu0, cpu_done, sum(r["cpu"] for r in replies)),
            # Includes the join notices fanned out to everyone already online.
            "server_cpu_ms_per_login": round((cpu1 - cpu0) / ok * 1000, 3) if ok and cpu0 is not None and cpu1 is not None else None,
        }
        report["logins_per_second"] = report["logins"]["per_second"]
        if rss.get("idle") is not None and rss.get("start") is not None and ok:
            report["rss_per_idle_session_kib"] = round((rss["idle"] - rss["start"]) / ok, 2)  # type: ignore[operator]
        else:
            report["rss_per_idle_session_kib"] = None
        if ok == 0:
            raise BenchError(f"no user could log in: {dict(failures.most_common(3))}")

    def _messages(self, fleet: Fleet) -> None:
        a, report = self.args, self.report
        start = time.monotonic() + 0.5
        measure = start + a.warmup
        end = measure + a.duration
        fleet.send(("run", start, measure, end))
        time.sleep(max(0.0, measure - time.monotonic()))
        cpu0, t0, host0 = self._cpu(), time.monotonic(), procstats.host_cpu()
        sent_replies = fleet.gather("sent", end - time.monotonic() + 60)
        host1, cpu_end = procstats.host_cpu(), self._cpu()
        sent: dict[int, int] = {}
        for r in sent_replies:
            sent.update(r["sent"])
        per_receiver = sum(sent.values())
        fleet.send(("drain", per_receiver, time.monotonic() + a.grace))
        results = fleet.gather("result", a.grace + 60)
        cpu1, t1 = self._cpu(), max(r["drained"] for r in results)
        self.results = results

        latencies = array("q")
        notices: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for r in results:
            latencies.extend(r["latencies_us"])
            notices.update(r["notices"])
            reasons.update(r["disconnect_reasons"])
        receivers = sum(r["receivers"] for r in results)
        received = sum(r["received"] for r in results)
        late_limit = a.late_ms * 1000
        report.update({
            "messages_sent": per_receiver,
            "receivers": receivers,
            "expected": per_receiver * receivers,
            "received": received,
            "lost": sum(r["short"] for r in results),
            "late": sum(1 for v in latencies if v > late_limit),
            "timed_receivers": sum(r["timed_receivers"] for r in results),
            "timed_deliveries": len(latencies),
            "gaps": sum(r["gaps"] for r in results),
            "out_of_order": sum(r["disorder"] for r in results),
            "incomplete_receivers": sum(r["incomplete"] for r in results),
            "disconnected": sum(r["disconnected"] for r in results),
            "disconnect_reasons": dict(reasons.most_common(5)),
            "notices": dict(notices.most_common(10)),
            "deliveries_per_second": round(received / a.duration, 1) if a.duration else None,
            "latency_ms": scaled(percentiles(latencies), 0.001, 2),
            # Busy share of all cores while senders ran: near 100 % means the
            # machine (server + generator together) was the limit.
            "host_cpu_percent": round((host1[0] - host0[0]) / max(1e-9, host1[1] - host0[1]) * 100, 1),
            "other_load_cores": _other_load(host0, host1, cpu0, cpu_end, sum(r["cpu"] for r in results)),
        })
        if cpu0 is not None and cpu1 is not None:
            report["server_cpu_seconds"] = round(cpu1 - cpu0, 3)
            report["server_cpu_percent"] = round((cpu1 - cpu0) / max(1e-9, t1 - t0) * 100, 1)
            report["server_cpu_us_per_delivery"] = round((cpu1 - cpu0) / received * 1e6, 2) if received else None
        else:
            report["server_cpu_seconds"] = report["server_cpu_percent"] = report["server_cpu_us_per_delivery"] = None

    def _generator_summary(self) -> None:
        workers = []
        for login in getattr(self, "login_replies", []):
            span = login["done"] - login["began"]
            workers.append({"worker": login["worker"], "login_busy": round(login["cpu"] / span, 2) if span > 0 else None})
        for r in getattr(self, "results", []):
            w = workers[r["worker"]]
            w.update({
                "cpu_seconds": round(r["cpu"], 2), "wall_seconds": round(r["wall"], 2),
                "busy": round(r["cpu"] / r["wall"], 2) if r["wall"] > 0 else None,
                "loop_lag": r["loop_lag"], "send_lag": r["send_lag"],
            })
        busiest = max((w.get("busy") or w.get("login_busy") or 0.0 for w in workers), default=0.0)
        lag = max((w.get("loop_lag", {}).get("p99_ms", 0.0) for w in workers), default=0.0)
        self.report["generator"] = {
            "workers": workers,
            "max_busy": busiest,
            "max_loop_lag_p99_ms": lag,
            "saturated": busiest >= BUSY_SATURATED or lag >= LAG_SATURATED_MS,
        }
        host = self.report.get("host_cpu_percent", self.report.get("logins", {}).get("host_cpu_percent"))
        self.report["host_saturated"] = host is not None and host >= HOST_SATURATED

    def close(self) -> None:
        """Stop our workers and, if we spawned it, the server; record its log."""
        if self.fleet is not None:
            self.fleet.stop()
        if self.server is not None:
            if self.server.spawned:
                code = self.server.stop()
                self.report.setdefault("server", {})["exit_code"] = code
                self.report["server"]["log"] = self.server.log_summary()
            self.server.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(args)
    status = 0
    try:
        run.execute()
    except (BenchError, ServerError) as e:
        print(f"loadgen: {e}", file=sys.stderr)
        run.report["error"] = str(e)
        status = 1
    except KeyboardInterrupt:
        run.report["error"] = "interrupted"
        status = 130
    finally:
        run.close()
    if status == 0:
        print(table(run.report))
    if args.json:
        write_json(args.json, run.report)
    return status


if __name__ == "__main__":
    sys.exit(main())
