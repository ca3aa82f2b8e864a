"""``--metrics HOST:PORT``: the server's numbers in Prometheus text format at /metrics.

One registry per server (not prometheus-client's global one: tests run
several servers in one process). Most numbers already exist as plain ints
where things happen (chat/telemetry.py, ssh/stats.py, the store's and the
bus's buckets): one collector reads them at scrape time, so the chat pays
nothing per message for them, and nothing at all without --metrics (this
module, and prometheus-client, are imported only with it). Only the plugin
hooks' figures are prometheus-client metrics of their own, fed through
``on_hook``.

Served by prometheus-client's HTTP server on a thread of its own: a scrape
never waits for the event loop, and a busy loop never delays a scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from sshchat.chat.telemetry import Buckets, ChatCounts
from sshchat.ssh.stats import LATENCY_BOUNDS, SessionStats

log = logging.getLogger("sshchat")

# Seconds a store transaction takes: tens of microseconds (SQLite, WAL) to
# the round trips of a PostgreSQL a network away.
COMMIT_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Seconds from a node publishing on the bus to another node reading it.
BUS_LAG_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds one plugin hook call took (a hook runs on the event loop: anything near 10 ms is felt by everyone).
HOOK_BOUNDS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
HOOK_OUTCOMES = ("ok", "error", "timeout")


def _histogram(name: str, doc: str, buckets: Buckets) -> HistogramMetricFamily:
    cumulative = buckets.cumulative()
    family = HistogramMetricFamily(name, doc)
    # the count is the +Inf bucket's, read in the same copy as the buckets (the writer may go on meanwhile)
    family.add_metric([], cumulative, sum_value=buckets.sum)
    return family


class _Numbers(Collector):
    """Reads the server's plain counts at scrape time (on the metrics thread:
    every dict it reads has all its keys from the start, so none changes size)."""

    def __init__(self, counts: ChatCounts, stats: SessionStats, commits: Buckets | None, bus: Any) -> None:
        self._counts = counts
        self._stats = stats
        self._commits = commits
        self._bus = bus  # a RedisBus (lag, entries), or None

    def collect(self) -> Iterator[Metric]:
        stats, counts = self._stats, self._counts
        sessions = GaugeMetricFamily(
            "sshchat_sessions", "Open SSH sessions by kind: pty (a terminal), line (a script, no PTY), bot (a command)",
            labels=["kind"],
        )
        for kind, n in dict(stats.sessions).items():
            sessions.add_metric([kind], n)
        yield sessions
        refused = CounterMetricFamily(
            "sshchat_logins_refused", "Connections and logins turned away, by reason code", labels=["reason"]
        )
        for reason, n in dict(counts.refused).items():
            refused.add_metric([reason], n)
        yield refused
        messages = CounterMetricFamily(
            "sshchat_messages", "Messages this server accepted (committed), by kind", labels=["kind"]
        )
        for kind, n in dict(counts.messages).items():
            messages.add_metric([kind], n)
        yield messages
        yield CounterMetricFamily(
            "sshchat_deliveries", "Messages written to people's sessions (one per reader)", value=stats.deliveries
        )
        yield CounterMetricFamily(
            "sshchat_slow_readers_cut", "Sessions cut off for not reading (outbox_limit bytes unsent)",
            value=stats.slow_cut,
        )
        if stats.latency is not None:
            yield _histogram(
                "sshchat_delivery_latency_seconds",
                "Seconds from the server accepting a message to its write to a reader's channel "
                "(each write timed by its oldest message)",
                stats.latency,
            )
        if self._commits is not None:
            yield _histogram("sshchat_store_commit_seconds", "Seconds each store transaction took", self._commits)
        bus = self._bus
        if bus is not None:
            lags = getattr(bus, "lag_buckets", None)
            if lags is not None:
                yield _histogram(
                    "sshchat_bus_lag_seconds",
                    "Seconds from another node publishing on the bus to this node reading it",
                    lags,
                )
            yield CounterMetricFamily(
                "sshchat_bus_published", "Entries this node wrote to the bus", value=bus.published
            )
            yield CounterMetricFamily(
                "sshchat_bus_dropped", "Events lost while the bus's Redis was away too long", value=bus.dropped
            )


class Metrics:
    """One server's registry, its plugin-hook metrics, and the HTTP server."""

    def __init__(self, counts: ChatCounts, stats: SessionStats, store: Any, bus: Any) -> None:
        """``store``: its ``commit_seconds`` is set if it has one (a batching
        store); ``bus``: a RedisBus gets lag buckets, the in-process bus none."""
        self.registry = CollectorRegistry(auto_describe=False)
        stats.latency = Buckets(LATENCY_BOUNDS)
        commits: Buckets | None = None
        if hasattr(store, "commit_seconds"):
            commits = store.commit_seconds = Buckets(COMMIT_BOUNDS)
        if not getattr(bus, "crosses_processes", False):
            bus = None
        elif hasattr(bus, "lag_buckets"):
            bus.lag_buckets = Buckets(BUS_LAG_BOUNDS)
        self.registry.register(_Numbers(counts, stats, commits, bus))
        self.hook_seconds = Histogram(
            "sshchat_plugin_hook_seconds", "Seconds each plugin hook call took", ["plugin", "hook"],
            registry=self.registry, buckets=HOOK_BOUNDS,
        )
        self.hook_failures = Counter(
            "sshchat_plugin_hook_failures", "Plugin hook calls that raised (error) or ran out of time (timeout)",
            ["plugin", "hook", "outcome"], registry=self.registry,
        )
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def on_hook(self, plugin: str, hook: str, seconds: float, outcome: str) -> None:
        """The plugin host's word on one hook call: how long it took, and
        ``outcome``: ok, error or timeout (anything else counts as error).
        ``plugin`` and ``hook`` are the operator's plugins and the API's
        hook names: a bounded set, never anything a client sends."""
        self.hook_seconds.labels(plugin, hook).observe(seconds)
        if outcome != "ok":
            self.hook_failures.labels(plugin, hook, outcome if outcome in HOOK_OUTCOMES else "error").inc()

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on ``host``:``port`` (0: a free port); the port bound."""
        self._server, self._thread = start_http_server(port, host, self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
