"""The parent of ``--workers N``: starts N worker processes of this node on
one port, restarts a crashed one, stops them all on SIGTERM or SIGINT.

It does no chat work. Each worker is a whole ``sshchat serve`` (its own
event loop, hub and SSH listener) started as ``python -m sshchat serve
--worker K`` with the parent's settings on its stdin (see link.py); they
share the port through SO_REUSEPORT and the kernel spreads new connections
among them. Rooms span the workers through the bus, as they span nodes.

- The port: the parent binds it (SO_REUSEPORT, never listening: a bound
  socket that does not listen gets no connections) before any worker
  starts, and holds it to the end. ``--port 0`` thus becomes one free port
  for all, a restarted worker always finds its port free to share, and a
  port taken by another program is one clear error before anything starts.
- The host key is loaded, or made, here once: N workers making a missing
  key at once would each make a different one.
- "listening on" is printed once every worker listens. The first worker
  starts alone, so that settings no worker can start with (an unknown
  cipher, an unreadable MOTD) are told once, by it, and the rest do not
  start.
- A worker that ends while the parent is not stopping (killed, crashed, or
  even exit 0) is restarted and logged. Restarts back off: one that ran
  less than STABLE seconds waits twice as long as the last time (from
  FIRST_DELAY up to MAX_DELAY), so a worker failing at once spins nothing.
- Workers run in process groups of their own, so that Ctrl-C in a terminal
  reaches only the parent, which then stops each worker once, gracefully.
  If the parent is killed outright, each worker sees its stdin close and
  stops as on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys

from sshchat import logs
from sshchat.app import StartError, announce
from sshchat.chat.logged import event
from sshchat.config import Config
from sshchat.ssh.hostkey import load_or_create
from sshchat.workers.link import Address, config_line, parse_ready

log = logging.getLogger("sshchat")

STABLE = 10.0  # a worker that ran this long before failing is restarted at once
FIRST_DELAY = 0.5
MAX_DELAY = 30.0
STOP_MARGIN = 10.0  # beyond shutdown_grace, before workers that do not stop are killed


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind (not listen on) host:port with SO_REUSEPORT; port 0: a free one.

    StartError (one line) if it is taken by a program that does not share it.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise StartError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise StartError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def describe_exit(status: int) -> str:
    """How a worker ended, as the log says it."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-status).name}"
        return f"was killed by signal {-status}"
    return f"exited with status {status}"


@dataclasses.dataclass
class Worker:
    """One place of N: the process in it now, and its restart history."""

    index: int
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    delay: float = 0.0  # the wait before its last restart
    listening: bool = False  # its process said it listens: it handles SIGUSR1 by then

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0


class Supervisor:
    """Runs the workers of one node until told to stop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.workers = [Worker(i + 1) for i in range(config.workers)]
        self._stopping = asyncio.Event()
        self._line = b""  # the settings each worker is started with

    async def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status (0: stopped as asked)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop)
        loop.add_signal_handler(signal.SIGUSR1, self._report)
        load_or_create(self.config.host_key)
        with reserve_port(self.config.host, self.config.port) as sock:
            port = sock.getsockname()[1]
            self._line = config_line(dataclasses.replace(self.config, port=port, workers=1))
            status = await self._start_all()
            if status is not None:
                self._stop(quiet=True)
                await self._wait_all()
                return status
            keepers = [asyncio.create_task(self._keep(w)) for w in self.workers]
            await self._stopping.wait()
            await self._wait_all()
            await asyncio.gather(*keepers)
        event(logging.INFO, "stopped", "stopped")
        return 0

    def _stop(self, quiet: bool = False) -> None:
        """SIGTERM to every worker, even one still starting: each tells its people."""
        if not self._stopping.is_set() and not quiet:
            event(logging.INFO, "shutting_down", f"shutting down {len(self.workers)} workers")
        self._stopping.set()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.terminate()

    def _report(self) -> None:
        """SIGUSR1 to every listening worker: each logs its bus lag since its
        last report (a worker still starting could die of it: not yet)."""
        for worker in self.workers:
            if worker.listening and worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGUSR1)

    async def _wait_all(self) -> None:
        """Wait for the workers to end; SIGKILL to any still there after the grace."""
        alive = [w.process for w in self.workers if w.process and w.process.returncode is None]
        try:
            async with asyncio.timeout(self.config.shutdown_grace + STOP_MARGIN):
                await asyncio.gather(*(p.wait() for p in alive))
        except TimeoutError:
            for process in alive:
                if process.returncode is None:
                    log.warning("worker (pid %d) did not stop in time; killing it", process.pid)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in alive))

    async def _start_all(self) -> int | None:
        """Start every worker; None once all listen, else the exit status."""
        first, *rest = self.workers
        addresses = await self._start(first)
        if addresses is None:
            return self._start_failed(first)
        for worker, result in zip(rest, await asyncio.gather(*(self._start(w) for w in rest)), strict=True):
            if result is None:
                return self._start_failed(worker)
        if self._stopping.is_set():
            return 0
        announce(addresses)
        return None

    def _start_failed(self, worker: Worker) -> int:
        """A worker that could not start: the exit status of the whole node.

        A worker that said why itself (the command line's one-line errors,
        status 1, or 2 for a Redis or PostgreSQL that does not answer) gives
        its status as it is, so that ``--workers N`` fails as one process
        does; anything else is one line here and status 1.
        """
        if self._stopping.is_set():
            return 0
        status = worker.process.returncode if worker.process else None
        if status in (1, 2):  # the worker's own one-line error is on stderr already
            return status
        if status is None:  # not even started: _start logged why
            logs.console(f"sshchat: worker {worker.index} could not be started", "start_failed", logging.ERROR,
                         index=worker.index)
        else:
            logs.console(f"sshchat: worker {worker.index} did not start: it {describe_exit(status)}", "start_failed",
                         logging.ERROR, index=worker.index, status=describe_exit(status))
        return 1

    async def _start(self, worker: Worker) -> list[Address] | None:
        """Start ``worker``'s process; its addresses once it listens, None if it ended first."""
        worker.started = asyncio.get_running_loop().time()
        worker.listening = False
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sshchat", "serve", "--worker", str(worker.index),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, process_group=0,
            )
        except OSError as e:  # no process at all (fork refused): _keep retries with back-off
            event(logging.ERROR, "worker_start_failed", f"cannot start worker {worker.index}: {e.strerror or e}",
                  index=worker.index, error=str(e.strerror or e))
            worker.process = None
            return None
        worker.process = process
        if self._stopping.is_set():  # told to stop while it was being started: _stop did not see it
            process.terminate()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(self._line)  # and never closed: see link.py
        line = await process.stdout.readline()
        addresses = parse_ready(line)
        if addresses is None:  # it ended (or, against link.py, said something else)
            if line:  # something else, and running: it is no worker of ours
                process.kill()
            # Its stdout closed: it is ending, and its exit status says why (1 or 2:
            # it said so itself). Not killed: a kill polls the process first, and
            # that poll could reap it before asyncio's watcher, which then reports
            # status 255 ("Unknown child process") and the reason is lost.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.shutdown_grace + STOP_MARGIN):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            return None
        worker.listening = True
        event(logging.INFO, "worker_started", f"worker {worker.index} listening (pid {process.pid})",
              index=worker.index, pid=process.pid)
        return addresses

    async def _keep(self, worker: Worker) -> None:
        """Restart ``worker`` whenever it ends, until the parent stops."""
        loop = asyncio.get_running_loop()
        while True:
            status = await worker.process.wait() if worker.process else None
            if self._stopping.is_set():
                return
            ran = loop.time() - worker.started
            worker.delay = 0.0 if ran >= STABLE else min(MAX_DELAY, max(FIRST_DELAY, 2 * worker.delay))
            how = "could not be started" if status is None else describe_exit(status)
            event(
                logging.WARNING, "worker_exited",
                f"worker {worker.index} (pid {worker.pid}) {how} after {ran:.1f} s; "
                f"restarting it in {worker.delay:.1f} s",
                index=worker.index, pid=worker.pid, status=how, seconds=round(ran, 3), restart_in=worker.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), worker.delay)
            if self._stopping.is_set():
                return
            await self._start(worker)


async def supervise(config: Config) -> int:
    """Run ``config.workers`` workers until SIGTERM or SIGINT; the exit status."""
    return await Supervisor(config).run()
