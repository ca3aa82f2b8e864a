"""Wiring: config -> host key + store + hub + SSH listener; start and stop.

Nothing else lives here: behaviour belongs in chat/, term/, ssh/ or store/.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING

import asyncssh

from sshchat import logs
from sshchat.bus.local import LocalBus
from sshchat.chat.bus import Bus, BusError
from sshchat.chat.hub import Hub
from sshchat.chat.logged import event
from sshchat.chat.plugin_host import PluginHost
from sshchat.chat.plugins import PluginError
from sshchat.chat.sanitize import clean
from sshchat.chat.store import Store
from sshchat.config import Config, chat_settings
from sshchat.plugins.loader import load as load_plugins
from sshchat.ssh import patches
from sshchat.ssh.context import ServerContext
from sshchat.ssh.hostkey import load_or_create
from sshchat.ssh.keyfiles import read_key_file
from sshchat.ssh.server import listen
from sshchat.store import open_store
from sshchat.workers.link import ParentLink

if TYPE_CHECKING:
    from sshchat.bus.roster import RedisRoster
    from sshchat.metrics import Metrics

log = logging.getLogger("sshchat")

SHUTDOWN_REASON = "the server is shutting down; see you soon"


class StartError(Exception):
    """The server could not start; ``str()`` says why in one line.

    ``status``: the exit status (2 for a service the settings name that
    cannot be reached, such as the bus's Redis)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def read_motd(path: str) -> str:
    """The message of the day from a file, each line cleaned."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [clean(line) for line in f.read().splitlines()]
    except OSError as e:
        raise StartError(f"cannot read MOTD file {path}: {e.strerror}") from None
    return "\n".join(line for line in lines if line)


def start_plugins(config: Config) -> PluginHost | None:
    """The enabled plugins, loaded and checked; StartError (status 2) with
    the one line that says what is wrong with one."""
    try:
        return load_plugins(config.plugins, config.plugin, config.plugin_timeout, config.plugin_task_timeout)
    except PluginError as e:
        raise StartError(str(e), status=2) from None


class App:
    """One running sshchat server."""

    def __init__(self, config: Config, *, worker: bool = False) -> None:
        """``worker``: one of several of --workers, sharing the port and the host key."""
        self.config = config
        self.worker = worker
        self._ctx: ServerContext | None = None
        self._store: Store | None = None
        self._bus: Bus | None = None
        self._roster: RedisRoster | None = None
        self.node = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"  # in a cluster
        self._listener: asyncssh.SSHAcceptor | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # The enabled plugins (None: none); ``plugins.on_hook`` hears each hook's time and outcome.
        self.plugins: PluginHost | None = None
        # --metrics: the registry and its HTTP server (plugin hooks report to metrics.on_hook)
        self.metrics: Metrics | None = None
        self.metrics_port = 0  # the port /metrics is served on (--metrics with port 0: the one picked)

    @property
    def ctx(self) -> ServerContext:
        assert self._ctx is not None, "start() first"
        return self._ctx

    @property
    def hub(self) -> Hub:
        return self.ctx.hub

    async def start(self) -> list[tuple[str, int]]:
        """Open the store, listen; return the (host, port) pairs bound."""
        config = self.config
        self.plugins = plugins = start_plugins(config)  # first: a plugin that cannot be used leaves nothing made
        # A worker never makes a key: the supervisor made it, and a worker
        # with a key of its own would show 1 in N clients another host.
        key = load_or_create(config.host_key, create=not self.worker)
        patches.install(trims=config.fast_path)
        admin_file = read_key_file(config.admin_keys) if config.admin_keys else None
        allow_file = read_key_file(config.allowlist) if config.allowlist else None
        key_files = [f for f in (admin_file, allow_file) if f is not None]
        admins = admin_file.fingerprints() if admin_file else set()
        allowlist = allow_file.fingerprints() if allow_file else None
        motd = read_motd(config.motd) if config.motd else None
        # a restart: the old server may take its shutdown grace to let go of a SQLite file
        self._store = open_store(
            config.db, asyncio.get_running_loop(), wait=config.shutdown_grace + 5.0, connect_wait=config.db_connect_wait
        )
        self._bus = bus = self._make_bus(self._store)
        self._roster = roster = self._make_roster()
        hub = Hub(
            self._store, chat_settings(config), admins=admins, allowlist=allowlist, motd=motd, bus=bus, roster=roster,
            plugins=plugins,
        )
        await self._start_bus(bus)
        if roster is not None:
            await roster.start()
        hub.greet()  # the other nodes say who they have
        self._ctx = ServerContext(hub, config, key_files=key_files)
        try:
            self._listener = await listen(self._ctx, key, reuse_port=self.worker)
        except OSError as e:
            await self._let_go()
            where = f"{config.host}:{config.port}"
            raise StartError(f"cannot listen on {where}: {e.strerror or e}") from None
        except ValueError as e:  # asyncssh's word on a setting, e.g. an unknown cipher
            await self._let_go()
            raise StartError(f"invalid setting: {e}") from None
        if config.metrics:  # after the SSH port: a script that looks for the process's first port finds that one
            try:
                self._serve_metrics()
            except StartError:
                self._listener.close()
                await self._let_go()
                raise
        self._sweeper = asyncio.create_task(self._every_second())
        if plugins is not None:
            plugins.start()
        return [s.getsockname()[:2] for s in self._listener.sockets]

    def _serve_metrics(self) -> None:
        """--metrics: one registry over this server's counts, served on its own thread."""
        from sshchat.config import metrics_address
        from sshchat.metrics import Metrics  # prometheus-client only when metrics are asked for

        host, port = metrics_address(self.config.metrics)
        self.metrics = Metrics(self.hub.counts, self.ctx.stats, self._store, self._bus)
        self.ctx.flusher.after_turn = self.ctx.stats.settle  # the turn's writes timed together
        try:
            self.metrics_port = self.metrics.serve(host, port)
            if self.plugins is not None:  # each hook's time and outcome: sshchat_plugin_hook_*
                self.plugins.on_hook = self.metrics.on_hook
        except OSError as e:
            self.metrics = None
            raise StartError(f"cannot serve metrics on {self.config.metrics}: {e.strerror or e}") from None
        shown = f"[{host}]" if ":" in host else host
        event(logging.INFO, "metrics", f"metrics at http://{shown}:{self.metrics_port}/metrics", port=self.metrics_port)

    def report(self) -> None:
        """SIGUSR1: log the bus lag of the entries read since the last report
        (a cluster node's; the in-process bus has none), e.g. for a chosen
        stretch of time, as the bench does for its measured window."""
        report_lags = getattr(self._bus, "report_lags", None)  # RedisBus only
        if report_lags is not None:
            report_lags()

    async def _let_go(self) -> None:
        """Start failed after the bus and roster ran: stop them (their tasks
        would keep the process alive), then close the store."""
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self._roster is not None:
            await self._roster.close()
        if self._bus is not None:
            await self._bus.close()
        assert self._store is not None
        self._store.close()

    def _make_bus(self, store: Store) -> Bus:
        """In-process, or (``--bus redis://``) Redis, reading gaps from ``store``."""
        config = self.config
        if not config.bus:
            return LocalBus()
        from sshchat.bus.redis import RedisBus  # redis-py only for a node of a cluster

        return RedisBus(
            config.bus, store, stream_cap=config.bus_stream_cap, gap_wait=config.bus_gap_wait,
            start_wait=config.bus_start_wait, node=self.node,
        )

    def _make_roster(self) -> RedisRoster | None:
        """Names and people across the nodes (``--bus redis://``); None: one process."""
        if not self.config.bus:
            return None
        from sshchat.bus.roster import RedisRoster

        return RedisRoster(self.config.bus, self.node)

    async def _start_bus(self, bus: Bus) -> None:
        """Connect the bus (a bounded retry, in the bus); unreachable: exit 2."""
        try:
            await bus.start()
        except BusError as e:
            assert self._store is not None
            self._store.close()
            raise StartError(str(e), status=2) from None

    async def _every_second(self) -> None:
        """The chat's clockwork: summed-up join/leave notices, idle marks, and
        in a cluster this node's people's changes told to the others.

        A fault of ours in one turn is logged and the next turn comes: if it
        ended the task, all of that would stop for good, unseen (a task's
        error shows only once it is collected, at the stop)."""
        limits = [t for t in (self.config.idle_away, self.config.idle_kick) if t > 0]
        interval = min([1.0, *(max(0.05, t / 4) for t in limits)])
        idle_every = min(5.0, max(0.05, min(limits) / 4)) if limits else 0.0
        last_idle = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                self.hub.tick()
                if idle_every and loop.time() - last_idle >= idle_every:
                    last_idle = loop.time()
                    self.hub.sweep_idle()
            except Exception:
                log.exception("the clockwork's turn failed; the next one comes as usual")

    async def stop(self, reason: str = SHUTDOWN_REASON) -> None:
        """Stop accepting, tell everyone why, let goodbyes arrive, commit all."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.plugins is not None:
            self.plugins.close()
        if self._listener is not None:
            self._listener.close()
        if self._ctx is not None:
            self.hub.shutdown(reason)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.shutdown_grace
            while self._ctx.connections and loop.time() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(self._ctx.connections):
                conn.abort()
            self._ctx.connections.clear()
        if self._bus is not None:
            await self._bus.close()  # what was published is handed over
        if self._roster is not None:
            await self._roster.close()  # the other nodes drop this one's people
        if self._store is not None:
            self._store.close()  # everything accepted is committed before we exit
        if self.metrics is not None:
            self.metrics.close()


def announce(addresses: list[tuple[str, int]]) -> None:
    """The readiness line, printed whatever the log level: scripts and tests wait for it."""
    for host, port in addresses:
        # One write per line (logs.console): print() writes the text and its newline apart,
        # and a worker's log line written between them (they share stderr) ran into
        # the port ("34933" + "2026-12-02 ...": a reader took port 349332026).
        logs.console(f"sshchat: listening on {host}:{port}", "listening", host=host, port=port)


async def run(config: Config, parent: ParentLink | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully.

    ``parent``: this is a worker (see sshchat/workers/): it shares the port,
    tells the supervisor rather than the console that it listens, and stops
    as on SIGTERM if the supervisor goes away.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before listening: a script may signal as soon as it reads the port.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if parent is not None:
        parent.watch_parent(loop, stop.set)
    app = App(config, worker=parent is not None)
    loop.add_signal_handler(signal.SIGUSR1, app.report)  # SIGUSR1's default would end the process
    addresses = await app.start()
    if parent is None:
        announce(addresses)
    else:
        parent.ready(addresses)
    event(logging.INFO, "started", f"event loop: {type(loop).__module__.split('.')[0]}; {patches.describe()}")
    if app.plugins is not None:
        names = [p.name for p in app.plugins.plugins]
        event(logging.INFO, "plugins", f"plugins: {', '.join(names)}", plugins=names)
    await stop.wait()
    event(logging.INFO, "shutting_down", "shutting down")
    await app.stop()
    event(logging.INFO, "stopped", "stopped")
