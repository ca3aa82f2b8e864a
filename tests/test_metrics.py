"""--metrics: what a scrape of /metrics shows after people's actions.

Real servers, real SSH clients, a real HTTP scrape (urllib), read back with
prometheus-client's own parser of the text format.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sshchat.chat.refusals import Refusal
from sshchat.chat.telemetry import ChatCounts
from sshchat.cli import main
from sshchat.config import UsageError, load, metrics_address, metrics_address_of_worker
from sshchat.metrics import Metrics
from sshchat.ssh.stats import SessionStats
from tests.support.clients import Client
from tests.support.server import Server, ServerProcess, connect
from tests.support.waiting import eventually

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape_now(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


async def scrape(port: int) -> Samples:
    """The samples of one scrape of /metrics, by (name, labels)."""
    _text, samples = await asyncio.to_thread(_scrape_now, port)
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def metered(start_server) -> Server:
    server: Server = await start_server(metrics="127.0.0.1:0", shutdown_grace=0.5)
    assert server.app.metrics_port
    return server


async def test_every_name_starts_with_sshchat(start_server) -> None:
    server = await metered(start_server)
    text, _ = await asyncio.to_thread(_scrape_now, server.app.metrics_port)
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names >= {
        "sshchat_sessions", "sshchat_logins_refused_total", "sshchat_messages_total", "sshchat_deliveries_total",
        "sshchat_slow_readers_cut_total", "sshchat_delivery_latency_seconds", "sshchat_store_commit_seconds",
    }
    assert all(name.startswith("sshchat_") for name in names), names


async def test_sessions_by_kind_and_a_refused_name(start_server) -> None:
    server = await metered(start_server)
    port = server.app.metrics_port
    alice = await server.connect("alice", pty=True)
    await server.connect("bob")  # a script: no PTY
    follower = await server.connect("carol", command="tail --follow")
    await follower.wait_for(lambda c: server.app.ctx.stats.sessions["bot"] == 1)
    samples = await scrape(port)
    assert value(samples, "sshchat_sessions", kind="pty") == 1
    assert value(samples, "sshchat_sessions", kind="line") == 1
    assert value(samples, "sshchat_sessions", kind="bot") == 1
    assert value(samples, "sshchat_logins_refused_total", reason="name_taken") == 0

    again = await server.connect("alice")  # the name is in use: refused
    assert await again.exit_status() == 1
    bad = await server.connect("no spaces allowed")
    assert await bad.exit_status() == 1
    await alice.close()

    async def counted() -> bool:
        s = await scrape(port)
        return (
            value(s, "sshchat_logins_refused_total", reason="name_taken") == 1
            and value(s, "sshchat_logins_refused_total", reason="invalid_name") == 1
            and value(s, "sshchat_sessions", kind="pty") == 0
            and value(s, "sshchat_sessions", kind="line") == 1
        )

    await eventually(counted, message="refusals by reason, and alice's session gone")
    samples = await scrape(port)
    assert value(samples, "sshchat_logins_refused_total", reason="other") == 0


async def test_refusals_never_label_by_what_a_client_sent(start_server) -> None:
    """Names a client makes up are refused under the fixed codes: the series do not grow with them."""
    server = await metered(start_server)
    for name in ("bad name one", "bad/name", "x" * 200):
        client = await server.connect(name)
        assert await client.exit_status() == 1
    samples = await scrape(server.app.metrics_port)
    refused = {
        dict(labels)["reason"]: v for (name, labels), v in samples.items() if name == "sshchat_logins_refused_total"
    }
    assert set(refused) == {r.value for r in Refusal}
    assert refused["invalid_name"] == 3


async def test_connections_refused_by_the_limits_are_counted_by_reason(start_server) -> None:
    server: Server = await start_server(metrics="127.0.0.1:0", max_per_address=1, shutdown_grace=0.5)
    await server.connect("alice")
    with pytest.raises(Exception):  # noqa: B017 - asyncssh's word on a disconnect during the handshake varies
        await server.connect("bob")
    samples = await scrape(server.app.metrics_port)
    assert value(samples, "sshchat_logins_refused_total", reason="per_address") == 1


async def test_messages_and_deliveries_grow_with_the_readers(start_server) -> None:
    server = await metered(start_server)
    port = server.app.metrics_port
    alice = await server.connect("alice", pty=True)
    bob = await server.connect("bob")
    carol = await server.connect("carol", pty=True)
    await alice.wait_for("carol joined")
    await bob.wait_for("carol joined")
    before = await scrape(port)
    for n in range(5):
        alice.line(f"hello {n}")
    for client in (alice, bob, carol):
        await client.wait_for("alice: hello 4")

    async def grown() -> bool:
        s = await scrape(port)
        return value(s, "sshchat_deliveries_total") - value(before, "sshchat_deliveries_total") == 15

    await eventually(grown, message="three readers, five messages: 15 deliveries")
    after = await scrape(port)
    chat = value(after, "sshchat_messages_total", kind="chat") - value(before, "sshchat_messages_total", kind="chat")
    assert chat == 5
    latency = "sshchat_delivery_latency_seconds"
    timed = value(after, f"{latency}_count") - value(before, f"{latency}_count")
    assert timed == 15  # each delivery counted, with the age of the oldest line of its write
    assert 0 <= value(after, f"{latency}_sum") - value(before, f"{latency}_sum") < 15 * 5.0
    # the store committed the five lines (and the joins) in transactions it timed
    assert value(after, "sshchat_store_commit_seconds_count") > value(before, "sshchat_store_commit_seconds_count")

    bob.line("/msg alice psst")
    await alice.wait_for("psst")
    await eventually(
        lambda: server.app.hub.counts.messages["private"] == 1, message="the private message counted"
    )
    assert value(await scrape(port), "sshchat_messages_total", kind="private") == 1


async def test_history_replayed_on_join_is_not_timed(start_server) -> None:
    """A welcome's history is hours old for all the server knows: its write
    starts with the welcome notice and is not timed, nor is the replay a
    latency of the server."""
    server = await metered(start_server)
    alice = await server.connect("alice")
    alice.line("before you came")
    await alice.wait_for("alice: before you came")
    before = await scrape(server.app.metrics_port)
    bob = await server.connect("bob")
    await bob.wait_for("alice: before you came")
    latency = "sshchat_delivery_latency_seconds_count"
    # bob's welcome (with the replayed line) is not timed; "bob joined", to alice and to bob, is
    await eventually(lambda: "bob joined" in alice.text and "bob joined" in bob.text)
    after = await scrape(server.app.metrics_port)
    assert value(after, latency) - value(before, latency) == 2
    deliveries = "sshchat_deliveries_total"
    assert value(after, deliveries) - value(before, deliveries) == 3  # the replay is a delivery all the same


async def test_a_slow_reader_cut_off_is_counted(start_server) -> None:
    server: Server = await start_server(metrics="127.0.0.1:0", outbox_limit=32 * 1024, shutdown_grace=0.5)
    slow = await server.connect("slow", window=16 * 1024)
    for reader in slow._readers:
        reader.cancel()
    slow.process.channel.pause_reading()
    talker = await server.connect("talker")
    assert value(await scrape(server.app.metrics_port), "sshchat_slow_readers_cut_total") == 0
    for n in range(120):
        talker.line(f"{n} " + "p" * 900)
    await talker.wait_for("slow left (too slow to keep up; disconnected)", timeout=10)
    assert value(await scrape(server.app.metrics_port), "sshchat_slow_readers_cut_total") == 1


def test_plugin_hooks_time_and_failures_by_plugin_and_hook() -> None:
    """What the plugin host reports through ``on_hook`` (wired by the app)."""
    metrics = Metrics(ChatCounts(), SessionStats(), store=None, bus=None)
    metrics.on_hook("dice", "on_message", 0.002, "ok")
    metrics.on_hook("dice", "on_message", 0.004, "error")
    metrics.on_hook("wordfilter", "on_message", 1.5, "timeout")
    metrics.on_hook("wordfilter", "on_message", 0.001, "no such outcome")
    from prometheus_client import generate_latest

    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    hook = "sshchat_plugin_hook_seconds"
    assert value(samples, f"{hook}_count", plugin="dice", hook="on_message") == 2
    assert value(samples, f"{hook}_sum", plugin="dice", hook="on_message") == pytest.approx(0.006)
    assert value(samples, f"{hook}_count", plugin="wordfilter", hook="on_message") == 2
    failures = "sshchat_plugin_hook_failures_total"
    assert value(samples, failures, plugin="dice", hook="on_message", outcome="error") == 1
    assert value(samples, failures, plugin="wordfilter", hook="on_message", outcome="timeout") == 1
    assert value(samples, failures, plugin="wordfilter", hook="on_message", outcome="error") == 1  # unknown: error
    assert value(samples, failures, plugin="dice", hook="on_message", outcome="timeout") == 0


def test_metrics_address_is_host_and_port() -> None:
    assert metrics_address("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert metrics_address("[::1]:0") == ("::1", 0)
    assert load(None, {"SSHCHAT_METRICS": "127.0.0.1:9100"}, {}).metrics == "127.0.0.1:9100"
    for bad in ("9100", "127.0.0.1", ":9100", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="metrics must be HOST:PORT"):
            load(None, {}, {"metrics": bad})


def test_a_bad_metrics_address_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    status = main(["serve", "--metrics", "localhost", "--host-key", str(tmp_path / "k"), "--db", ":memory:"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics must be HOST:PORT" in err


def test_workers_serve_on_consecutive_ports() -> None:
    assert metrics_address_of_worker("127.0.0.1:9100", 1) == "127.0.0.1:9100"
    assert metrics_address_of_worker("127.0.0.1:9100", 3) == "127.0.0.1:9102"
    assert metrics_address_of_worker("[::1]:9100", 2) == "[::1]:9101"
    assert metrics_address_of_worker("127.0.0.1:0", 4) == "127.0.0.1:0"  # each picks a free one, and logs it
    with pytest.raises(UsageError, match="past 65535"):
        metrics_address_of_worker("127.0.0.1:65535", 2)


def test_workers_past_the_last_port_are_one_line_before_any_starts(tmp_path: Path, capsys) -> None:
    """Worker k serves on PORT+k-1: a port range past 65535 is refused at
    once by the supervisor (status 2, one line), not by its last worker."""
    status = main([
        "serve", "--workers", "3", "--bus", "redis://127.0.0.1:1", "--db", "postgresql://sshchat@127.0.0.1:1/chat",
        "--metrics", "127.0.0.1:65534", "--host-key", str(tmp_path / "k"),
    ])
    assert status == 2
    err = capsys.readouterr().err
    assert err == "sshchat: metrics: worker 3 would serve on port 65536, past 65535\n"


async def test_without_metrics_nothing_is_served_or_timed(start_server) -> None:
    server: Server = await start_server(shutdown_grace=0.5)
    assert server.app.metrics is None and server.app.metrics_port == 0
    assert server.app.ctx.stats.latency is None  # the writes are not timed


def test_a_busy_metrics_port_is_one_line(tmp_path: Path) -> None:
    """A port another process holds: the server says so and exits, as for a busy SSH port."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sshchat", "serve", "--host", "127.0.0.1", "--port", "0",
             "--host-key", str(tmp_path / "k"), "--db", str(tmp_path / "c.db"), "--metrics", f"127.0.0.1:{busy}"],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sshchat: cannot serve metrics on 127.0.0.1:{busy}"), result.stderr


def test_a_server_process_logs_where_metrics_are(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--metrics", "127.0.0.1:0")
    try:
        line = next(line for line in server.log if "metrics at http://127.0.0.1:" in line)
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        _text, samples = _scrape_now(port)
        assert value(samples, "sshchat_sessions", kind="pty") == 0
    finally:
        assert server.stop() == 0


def _free_pair() -> int:
    """A port P with P+1 free too (both checked by binding them)."""
    import socket

    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return int(port)
    raise AssertionError("no two free ports in a row")


async def test_each_worker_serves_its_own_figures_on_the_next_port(tmp_path: Path, redis_server, pg_url) -> None:
    """--workers 2 --metrics HOST:P: worker 1 on P, worker 2 on P+1, each its
    own sessions; on a bus, the bus's figures too."""
    port = _free_pair()
    server = ServerProcess(
        tmp_path, "--workers", "2", "--bus", redis_server.url, "--db", pg_url, "--metrics", f"127.0.0.1:{port}"
    )
    clients: list[Client] = []
    try:
        await eventually(lambda: "".join(server.log).count("metrics at http://127.0.0.1:") == 2, timeout=10)
        log = "".join(server.log)
        assert f"worker 1: metrics at http://127.0.0.1:{port}/metrics" in log
        assert f"worker 2: metrics at http://127.0.0.1:{port + 1}/metrics" in log
        for n in range(4):  # the kernel spreads them over the two workers
            clients.append(await connect(server.port, f"u{n}"))

        async def sessions() -> list[float]:
            return [value(await scrape(p), "sshchat_sessions", kind="line") for p in (port, port + 1)]

        await eventually(lambda: _summed(sessions, 4), timeout=10, message="four sessions over the two workers")
        clients[0].line("hello from u0")
        for client in clients:
            await client.wait_for("u0: hello from u0", timeout=10)
        both = [await scrape(p) for p in (port, port + 1)]
        assert all(("sshchat_bus_lag_seconds_count", ()) in s for s in both)
        assert sum(value(s, "sshchat_messages_total", kind="chat") for s in both) == 1
    finally:
        for client in clients:
            await client.close()
        assert server.stop() == 0


async def _summed(get, total: float) -> bool:
    return sum(await get()) == total


async def test_a_failing_plugin_hook_is_timed_and_counted(start_server) -> None:
    """A plugin whose message hook raises: the line still reaches the room, and
    /metrics shows the hook's runs and failures under the plugin's name."""
    server = await start_server(metrics="127.0.0.1:0", plugins=("tests.support.plugins:Grumpy",), shutdown_grace=0.5)
    port = server.app.metrics_port
    alice = await server.connect("alice")
    for n in range(3):
        alice.line(f"hello {n}")
    await alice.wait_for("alice: hello 2")
    labels = {"plugin": "tests.support.plugins:Grumpy", "hook": "on_message"}

    async def counted() -> bool:
        s = await scrape(port)
        return value(s, "sshchat_plugin_hook_failures_total", outcome="error", **labels) == 3

    await eventually(counted, message="three failed message hooks counted")
    assert value(await scrape(port), "sshchat_plugin_hook_seconds_count", **labels) == 3
