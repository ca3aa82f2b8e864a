"""One generator process: a slice of the users, driven by the parent over a pipe.

The parent (``loadgen``) owns the timeline and the server measurements; a
worker only logs its users in, sends on the shared schedule, counts what
arrives and reports. Splitting users over processes (``--processes``) keeps
the generator from being the bottleneck on a machine where one Python event
loop cannot decrypt as fast as the server encrypts.

Every wait is bounded: each step has a deadline from the parent, and the
worker exits if the parent goes away or ``lifetime`` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import asyncssh

from bench.client import (
    DIALECTS,
    ChatUser,
    Tally,
    client_options,
    connect_user,
    message_line,
    message_pattern,
    send_like_other_clients,
    source_address,
)
from bench.procstats import cpu_seconds
from bench.report import percentiles, scaled

_LAG_TICK = 0.05  # seconds between event-loop lag probes


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs; picklable, so it crosses the process boundary."""

    worker: int
    host: str
    port: int
    ports: tuple[int, ...]  # several nodes: user i connects to ports[i % len]; empty: port
    users: tuple[int, ...]  # global user indices
    senders: int  # users with an index below this send
    name_prefix: str
    token: str
    rate: float
    size: int
    concurrency: int
    login_timeout: float
    addresses: int
    cipher: str | None
    kex: str | None
    lifetime: float  # hard limit on this process, seconds
    sample_every: int = 1  # users whose index is a multiple of this time every line
    lean_clients: bool = True  # this repository's cheaper client code (see _speed_up)
    dialect: str = "sshchat"  # how the server takes and shows lines (client.DIALECTS)
    pty: str = "none"  # who asks for a terminal: none, senders or all
    typing: bool = False  # senders type one key per packet (needs a PTY), see _type
    keys_per_second: float = 15.0
    ack_every_read: bool = False  # every user acknowledges each read (client.ChatUser._acknowledge)

    def has_pty(self, user: int) -> bool:
        return self.pty == "all" or (self.pty == "senders" and user < self.senders)


def _stats(values: array[float]) -> dict[str, float]:
    """max and p99 of seconds, in milliseconds (the report's nearest rank)."""
    figures = scaled(percentiles(values, (99,)), 1000)
    return {"p99_ms": figures["p99"], "max_ms": figures["max"]}


class Worker:
    """The users of this process and the steps the parent asks for."""

    def __init__(self, spec: WorkerSpec, ctl: Connection) -> None:
        self.spec = spec
        self.ctl = ctl
        self.tally = Tally(keyed=spec.typing)
        self.dialect = DIALECTS[spec.dialect]
        self.pattern = message_pattern(spec.token, self.dialect)
        self.users: dict[int, ChatUser] = {}
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: dict[int, int] = {}  # sender -> measured messages sent
        # typed lines: sender -> (actual - planned) Enter time in us, by measured sequence number
        self.enter_late_us: dict[int, array[int]] = {}
        self.keys = 0  # keys typed (Enter included) for measured lines
        self.window_keys = 0  # keys sent while measuring (whatever line they belong to)
        self.key_packets = 0  # packets the typists sent while typing them
        self.send_lag: array[float] = array("d")
        self.loop_lag: array[float] = array("d")
        self.window: dict[str, float] = {}

    def _reply(self, message: Any) -> None:
        """Send to the parent, blocking: the event loop (uvloop) made the pipe
        non-blocking when it began watching it, and a result of megabytes
        does not fit in a pipe buffer."""
        fd = self.ctl.fileno()
        was = os.get_blocking(fd)
        os.set_blocking(fd, True)
        try:
            self.ctl.send(message)
        finally:
            os.set_blocking(fd, was)

    def _readable(self) -> None:
        try:
            while self.ctl.poll():
                self.inbox.put_nowait(self.ctl.recv())
        except (EOFError, OSError):  # the parent is gone: stop
            self.inbox.put_nowait(("close", 5.0))
            asyncio.get_running_loop().remove_reader(self.ctl.fileno())

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self.ctl.fileno(), self._readable)
        self._reply(("hello", self.spec.worker))
        while True:
            cmd = await self.inbox.get()
            if cmd[0] == "login":
                self._reply(("logged_in", await self.login()))
            elif cmd[0] == "run":
                self._reply(("sent", await self.run(*cmd[1:])))
            elif cmd[0] == "drain":
                self._reply(("result", await self.drain(*cmd[1:])))
            elif cmd[0] == "close":
                await self.close(cmd[1])
                with contextlib.suppress(OSError):
                    self._reply(("closed", self.spec.worker))
                return

    # ----------------------------------------------------------- logins

    async def login(self) -> dict[str, Any]:
        spec = self.spec
        options = client_options(spec.cipher, spec.login_timeout, spec.kex)
        gate = asyncio.Semaphore(spec.concurrency)
        durations: array[float] = array("d")
        failures: Counter[str] = Counter()

        async def one(i: int) -> None:
            async with gate:
                started = time.monotonic()
                try:
                    port = spec.ports[i % len(spec.ports)] if spec.ports else spec.port
                    self.users[i] = await connect_user(
                        spec.host, port, i, f"{spec.name_prefix}{i}",
                        source_address(i % spec.addresses), options, self.pattern, self.tally,
                        spec.login_timeout, timed=i % spec.sample_every == 0, echoes=self.dialect.echoes,
                        pty=spec.has_pty(i), ack_every_read=spec.ack_every_read,
                        nodes=len(spec.ports) or 1,
                    )
                except (OSError, asyncssh.Error, TimeoutError) as e:  # a failed login is a result, not a crash
                    failures[f"{type(e).__name__}: {e}"[:160]] += 1
                    return
                durations.append(time.monotonic() - started)

        began, cpu0 = time.monotonic(), cpu_seconds()
        await asyncio.gather(*(one(i) for i in spec.users))
        done, cpu1 = time.monotonic(), cpu_seconds()
        return {
            "worker": spec.worker,
            "ok": len(self.users),
            "failures": dict(failures.most_common(5)),
            "failed": sum(failures.values()),
            "durations": durations,
            "began": began,
            "done": done,
            "cpu": cpu1 - cpu0,
        }

    # -------------------------------------------------------- messages

    async def _probe_loop(self, until: float) -> None:
        """Event-loop lag: how late a short sleep wakes up (saturation sign)."""
        while (now := time.monotonic()) < until:
            await asyncio.sleep(_LAG_TICK)
            if now >= self.window.get("measure", until):
                self.loop_lag.append(time.monotonic() - now - _LAG_TICK)

    async def _send(self, user: ChatUser, offset: float, start: float, measure: float, end: float) -> None:
        """One sender on an absolute schedule, so a slow turn does not lower the rate."""
        interval = 1.0 / self.spec.rate
        # Enter on a terminal is CR; without one, a script ends its lines with LF
        line_end = b"\r" if self.spec.has_pty(user.index) else self.dialect.line_end
        first, stop = _slots(start + offset, interval, measure, end)
        seq = {True: 0, False: 0}
        for k in range(stop):
            due = start + offset + k * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            measured = k >= first
            if measured:
                self.send_lag.append(max(0.0, time.monotonic() - due))
            user.send(message_line(self.spec.token, user.index, seq[measured], measured, self.spec.size, line_end))
            seq[measured] += 1
        self.sent[user.index] = seq[True]

    async def _type(self, user: ChatUser, offset: float, start: float, measure: float, end: float) -> None:
        """One typist: each line typed a key per packet, then Enter, on an absolute schedule.

        Keys go out ``1 / keys_per_second`` apart and Enter one step after the
        last key; Enter is due every ``1 / rate`` seconds from ``start +
        offset``, as the lines of ``_send`` (the parent starts the run early
        enough for the first line's typing). Typing goes on until ``end``: a
        line whose Enter would come later is left half-typed, so the measured
        window holds the steady rate of keys, not fewer at its end.

        The text is fixed before the first key, so it carries the time Enter
        is *due*; the time it actually went out is kept here, by sequence
        number, and the parent subtracts the difference from every latency
        of that line: latency is measured from Enter.
        """
        spec = self.spec
        interval, step = 1.0 / spec.rate, 1.0 / spec.keys_per_second
        first, _ = _slots(start + offset, interval, measure, end)
        seq = {True: 0, False: 0}
        late = self.enter_late_us[user.index] = array("q")
        lag = self.send_lag
        send = user.send
        k = 0
        while (enter_due := start + offset + k * interval) - spec.size * step < end:
            measured = k >= first
            planned_us = round(enter_due * 1_000_000)
            text = message_line(spec.token, user.index, seq[measured], measured, spec.size, b"", planned_us)
            keys = [text[k : k + 1] for k in range(len(text))] + [b"\r"]
            packets0 = user.packets_sent()
            due = enter_due - len(text) * step
            for key in keys:
                if due >= end:
                    break  # the run is over: this line stays unsent
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if due >= measure:
                    lag.append(max(0.0, time.monotonic() - due))
                    self.window_keys += 1
                send(key)
                due += step
            else:
                if measured:
                    late.append(time.monotonic_ns() // 1000 - planned_us)
                    self.keys += len(keys)
                    self.key_packets += user.packets_sent() - packets0
                seq[measured] += 1
            k += 1
        self.sent[user.index] = seq[True]

    async def run(self, start: float, measure: float, end: float) -> dict[str, Any]:
        senders = [u for i, u in sorted(self.users.items()) if i < self.spec.senders]
        probe = asyncio.create_task(self._probe_loop(end))
        self.window["measure"] = measure

        async def mark() -> None:
            await asyncio.sleep(max(0.0, measure - time.monotonic()))
            self.window["cpu0"], self.window["t0"] = cpu_seconds(), time.monotonic()
            self.window["packets0"] = self._packets()

        marker = asyncio.create_task(mark())
        interval = 1.0 / self.spec.rate
        sender = self._type if self.spec.typing else self._send
        # Spread first sends over one interval (golden ratio steps), so the
        # senders do not all fire in the same event-loop turn.
        await asyncio.gather(*(
            sender(u, (u.index * 0.6180339887) % 1.0 * interval, start, measure, end)
            for u in senders
        ))
        await marker
        self.window["cpu1"], self.window["t1"] = cpu_seconds(), time.monotonic()
        packets = self._packets() - self.window["packets0"]
        await probe
        return {
            "worker": self.spec.worker, "sent": dict(self.sent), "enter_late_us": self.enter_late_us,
            "keys": self.keys, "key_packets": self.key_packets, "window_keys": self.window_keys,
            "packets": packets,
            "packet_seconds": self.window["t1"] - self.window["t0"],
        }

    def _packets(self) -> int:
        """SSH packets all our users have sent the server so far."""
        return sum(u.packets_sent() for u in self.users.values())

    async def drain(self, per_receiver: int, deadline: float) -> dict[str, Any]:
        """Wait until every user has every measured message, or the deadline."""
        live = list(self.users.values())
        while time.monotonic() < deadline:
            if all(u.received >= per_receiver for u in live if u.lost_at is None):
                break
            await asyncio.sleep(0.02)
        drained = time.monotonic()
        reasons = Counter(u.lost_reason for u in live if u.lost_at is not None)
        return {
            "worker": self.spec.worker,
            "receivers": len(live),
            "timed_receivers": sum(1 for u in live if u.timed),
            "received": sum(u.received for u in live),
            "short": sum(max(0, per_receiver - u.received) for u in live),
            "incomplete": sum(1 for u in live if u.received < per_receiver),
            "gaps": sum(u.gaps for u in live),
            "disorder": sum(u.disorder for u in live),
            "disconnected": sum(1 for u in live if u.lost_at is not None),
            "disconnect_reasons": dict(reasons.most_common(5)),
            "notices": {k.decode(errors="replace"): v for k, v in self.tally.notices.items()},
            "latencies_us": self.tally.latencies_us,
            "latency_keys": self.tally.keys,
            "cross_node_latencies_us": self.tally.cross_us,
            "cpu": self.window.get("cpu1", 0.0) - self.window.get("cpu0", 0.0),
            "wall": self.window.get("t1", 0.0) - self.window.get("t0", 0.0),
            "send_lag": _stats(self.send_lag),
            "loop_lag": _stats(self.loop_lag),
            "drained": drained,
        }

    # ------------------------------------------------------------- end

    async def close(self, timeout: float) -> None:
        conns = [u.conn for u in self.users.values() if u.conn is not None]
        for conn in conns:
            conn.close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)
        except TimeoutError:
            for conn in conns:
                conn.abort()


def worker_main(spec: WorkerSpec, ctl: Connection) -> None:
    """Process entry point: serve the parent's steps, within ``spec.lifetime``."""

    async def main() -> None:
        try:
            async with asyncio.timeout(spec.lifetime):
                await Worker(spec, ctl).serve()
        except TimeoutError:
            pass

    if spec.lean_clients:
        _speed_up()
        if spec.typing or spec.ack_every_read:  # packets counted as a person's client sends them
            send_like_other_clients()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())


def _speed_up() -> None:
    """The generator must not be what limits a run: a leaner receive path
    for AES-GCM (bench.fastrecv) and the server package's cheaper cipher and
    logging code (byte for byte the same packets)."""
    from bench import fastrecv
    from sshchat.ssh import patches

    fastrecv.install()
    patches.install(patches=patches.FOR_CLIENTS)  # gated like the server's: none on an unchecked asyncssh


def _loop_factory() -> Any:
    """uvloop where installed: the generator's event loop costs less."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _slots(first_due: float, interval: float, measure: float, end: float) -> tuple[int, int]:
    """For sends due at ``first_due + k * interval``: the first k in the
    measured window and the first k at or past its end. Counted by index,
    not by adding up intervals (whose rounding could let one more send in
    when the window's edges fall on send times)."""
    slack = 1e-9 * interval
    first = max(0, math.ceil((measure - first_due) / interval - slack))
    stop = max(0, math.ceil((end - first_due) / interval - slack))
    return first, stop
