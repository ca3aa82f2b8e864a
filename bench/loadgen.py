"""Load generator for SSH chat servers: ``python -m bench.loadgen --help``.

N users are N real SSH connections (asyncssh, keyless, no PTY unless
asked), each from its own 127.x source address. S of them send R messages a
second, each line carrying a sequence number and a CLOCK_MONOTONIC send
time (``--typing``: typed a key per packet at a terminal, timed from
Enter); everyone reads everything, so a run measures delivery rate, loss,
latency, and (from /proc) the server's CPU per delivery and memory per
session. ``--logins-only`` measures logins alone. The options are in
``bench.options``.

This module is the CLI and the timeline; the users live in worker processes
(``bench.worker``), so ``--processes`` can take the generator off the
critical path. Every step has a deadline: a run always ends by itself.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import secrets
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, cast

from bench import procstats
from bench.options import parse_args
from bench.report import from_enter, percentiles, scaled, table, write_json
from bench.server import ServerError, ServerUnderTest
from bench.worker import WorkerSpec, worker_main

BUSY_SATURATED = 0.85  # a generator process this busy may be what limits the run
HOST_SATURATED = 90.0  # % of all cores busy: the machine itself is the limit
LAG_SATURATED_MS = 50.0  # or whose event loop wakes this late (p99)


class BenchError(Exception):
    """The run could not be completed; ``str()`` says why."""


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
                    got = cast(Connection, pipe).recv()
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


def settle(cpu: Callable[[], float | None], timeout: float, quiet: float = 0.05, window: float = 0.5) -> float:
    """Wait until the server uses under ``quiet`` of a core; return seconds waited.

    After logins the server still fans join notices out to everyone (N^2/2
    lines); "idle" must mean after that. ``cpu``: the CPU seconds of all the
    server's processes (a ``--workers`` parent does no chat work itself), or
    None when unknown: then wait a fixed 2 s.
    """
    began = time.monotonic()
    last = cpu()
    if last is None:
        time.sleep(min(2.0, timeout))
        return time.monotonic() - began
    while time.monotonic() - began < timeout:
        time.sleep(window)
        now = cpu()
        if now is None or (now - last) / window < quiet:
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

    def __init__(self, args: argparse.Namespace, marks: Callable[[str], None] | None = None) -> None:
        """``marks``: told "measure" as the window starts and "drained" once
        every measured line was read (bench.cluster asks the servers for
        their bus lag at each)."""
        self.args = args
        self._marks = marks
        self.server: ServerUnderTest | None = None
        self.fleet: Fleet | None = None
        self.token = secrets.token_hex(3)
        self.report: dict[str, Any] = {}

    # -- server measurements, None when the pid is unknown --------------------

    def _pids(self) -> list[int]:
        """The server's pids: the spawned one, or every ``--server-pid`` (nodes of one cluster)."""
        s = self.server
        pids = list(self.args.server_pid) if s and not s.spawned else []
        if s and s.pid and s.pid not in pids:
            pids.insert(0, s.pid)
        return [pid for pid in pids if procstats.alive(pid)]

    def _cpu(self) -> float | None:
        """CPU seconds of every server process (a ``--workers`` parent's workers included)."""
        pids = self._pids()
        return procstats.family_cpu_seconds(pids) if pids else None

    def _rss(self) -> int | None:
        pids = self._pids()
        return procstats.family_rss_kib(pids) if pids else None

    def _service_cpu(self) -> float | None:
        """CPU seconds of the services (Redis, PostgreSQL and its backends), if their pids were given."""
        pids = [pid for pid in self.args.service_pid if procstats.alive(pid)]
        return procstats.family_cpu_seconds(pids) if pids else None

    # -------------------------------------------------------------------------

    def _specs(self, port: int) -> list[WorkerSpec]:
        a, P = self.args, self.args.processes
        login_phase = a.login_timeout * math.ceil(a.users / a.concurrency) + 60
        lifetime = login_phase + a.settle_timeout * 2 + a.warmup + a.duration + a.grace + 300
        self.login_phase = login_phase
        return [
            WorkerSpec(
                worker=w, host=a.host, port=port, ports=tuple(a.ports), users=tuple(range(w, a.users, P)),
                senders=a.senders,
                name_prefix=a.name_prefix, token=self.token, rate=a.rate, size=a.size,
                concurrency=max(1, math.ceil(a.concurrency / P)), login_timeout=a.login_timeout,
                addresses=a.addresses, cipher=a.cipher, kex=a.kex, lifetime=lifetime, sample_every=a.sample_every,
                lean_clients=not a.plain_clients, dialect=a.dialect, pty=a.pty, typing=a.typing,
                keys_per_second=a.keys_per_second, ack_every_read=a.ack_every_read,
            )
            for w in range(P)
        ]

    def execute(self) -> dict[str, Any]:
        a = self.args
        if a.spawn:
            extra = dict(item.split("=", 1) for item in a.server_env)
            self.server = ServerUnderTest.spawn(extra, a.server_src)
        else:
            self.server = ServerUnderTest(a.host, a.port, a.server_pid[0] if a.server_pid else None)
        server = self.server
        report = self.report
        report["mode"] = "logins" if a.logins_only or a.senders == 0 or a.duration == 0 else "messages"
        ports = ",".join(map(str, a.ports)) if a.ports else str(server.port)
        report["server"] = {"target": f"{server.host}:{ports}", "pids": self._pids(), "spawned": server.spawned,
                            "src": a.server_src if a.spawn else None}
        report["params"] = {
            "users": a.users, "senders": a.senders if report["mode"] == "messages" else 0, "rate": a.rate,
            "duration": a.duration, "warmup": a.warmup, "size": a.size, "processes": a.processes,
            "concurrency": a.concurrency, "late_ms": a.late_ms, "sample_every": a.sample_every,
            "lean_clients": not a.plain_clients, "grace": a.grace, "addresses": a.addresses,
            "cipher": a.cipher or "default", "kex": a.kex or "default", "cpu_count": os.cpu_count(),
            "dialect": a.dialect, "pty": a.pty, "typing": a.typing,
            "keys_per_second": a.keys_per_second if a.typing else None, "ack_every_read": a.ack_every_read,
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
        settle(self._cpu, a.settle_timeout)
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
        waited = settle(self._cpu, a.settle_timeout)
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
            "server_cpu_ms_per_login": (
                round((cpu1 - cpu0) / ok * 1000, 3) if ok and cpu0 is not None and cpu1 is not None else None
            ),
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
        # typists begin a line size / keys_per_second before its Enter is due
        start = time.monotonic() + 0.5 + (a.size / a.keys_per_second if a.typing else 0.0)
        measure = start + a.warmup
        end = measure + a.duration
        fleet.send(("run", start, measure, end))
        time.sleep(max(0.0, measure - time.monotonic()))
        if self._marks is not None:
            self._marks("measure")
        cpu0, t0, host0 = self._cpu(), time.monotonic(), procstats.host_cpu()
        service0 = self._service_cpu()
        sent_replies = fleet.gather("sent", end - time.monotonic() + 60)
        host1, cpu_end = procstats.host_cpu(), self._cpu()
        sent: dict[int, int] = {}
        enter_late_us: dict[int, array[int]] = {}
        for r in sent_replies:
            sent.update(r["sent"])
            enter_late_us.update(r["enter_late_us"])
        per_receiver = sum(sent.values())
        fleet.send(("drain", per_receiver, time.monotonic() + a.grace))
        results = fleet.gather("result", a.grace + 60)
        cpu1, t1 = self._cpu(), max(r["drained"] for r in results)
        service1 = self._service_cpu()
        if self._marks is not None:
            self._marks("drained")
        self.results = results

        latencies = array("q")
        keys = array("q")
        cross = array("q")
        notices: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for r in results:
            latencies.extend(r["latencies_us"])
            keys.extend(r["latency_keys"])
            cross.extend(r["cross_node_latencies_us"])
            notices.update(r["notices"])
            reasons.update(r["disconnect_reasons"])
        uncorrected = 0
        if a.typing:  # typed lines carry the time Enter was due: count from when it went out
            latencies, uncorrected = from_enter(latencies, keys, enter_late_us)
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
            # several nodes: deliveries whose sender was on another node than the receiver
            "cross_node_latency_ms": scaled(percentiles(cross), 0.001, 2) if len(a.ports) > 1 else None,
            # Busy share of all cores while senders ran: near 100 % means the
            # machine (server + generator together) was the limit.
            "host_cpu_percent": round((host1[0] - host0[0]) / max(1e-9, host1[1] - host0[1]) * 100, 1),
            "other_load_cores": _other_load(host0, host1, cpu0, cpu_end, sum(r["cpu"] for r in results)),
        })
        packet_seconds = max(r["packet_seconds"] for r in sent_replies)
        report["generator_packets_per_second"] = (
            round(sum(r["packets"] for r in sent_replies) / packet_seconds, 1) if packet_seconds > 0 else None
        )
        if a.typing:
            keys_typed = sum(r["keys"] for r in sent_replies)
            window_keys = sum(r["window_keys"] for r in sent_replies)
            report["typing"] = {
                # keys sent while measuring, by all typists: the input load
                "keys_per_second": round(window_keys / a.duration, 1) if a.duration else None,
                "keys_typed": keys_typed,  # of measured lines, Enter included
                # packets the typists sent while typing those lines: one per key, plus any acks
                "key_packets": sum(r["key_packets"] for r in sent_replies),
                "latencies_not_from_enter": uncorrected,
            }
        if cpu0 is not None and cpu1 is not None:
            report["server_cpu_seconds"] = round(cpu1 - cpu0, 3)
            report["server_cpu_percent"] = round((cpu1 - cpu0) / max(1e-9, t1 - t0) * 100, 1)
            report["server_cpu_us_per_delivery"] = round((cpu1 - cpu0) / received * 1e6, 2) if received else None
        else:
            report["server_cpu_seconds"] = report["server_cpu_percent"] = report["server_cpu_us_per_delivery"] = None
        if service0 is not None and service1 is not None:
            report["service_cpu_seconds"] = round(service1 - service0, 3)
            report["service_cpu_us_per_delivery"] = (
                round((service1 - service0) / received * 1e6, 2) if received else None
            )

    def _generator_summary(self) -> None:
        workers = []
        for login in getattr(self, "login_replies", []):
            span = login["done"] - login["began"]
            busy = round(login["cpu"] / span, 2) if span > 0 else None
            workers.append({"worker": login["worker"], "login_busy": busy})
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


def main(argv: list[str] | None = None, marks: Callable[[str], None] | None = None) -> int:
    """``marks``: see Run."""
    args = parse_args(argv)
    run = Run(args, marks)
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
