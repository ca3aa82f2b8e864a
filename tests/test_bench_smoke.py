"""Smoke tests of the benchmarks (bench/), run as processes as a person runs them.

Not a measurement: ``python -m bench.loadgen --spawn`` runs end to end,
stops by itself, writes its JSON report, and in a run this small every
message reaches every user; ``bench.hotpath`` runs; ``bench.selftest``
(checks of the generator's own parts) passes. The suite does not import
bench, so the benchmark can change without breaking the suite's imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import binaries
from tests.support.redis import REDIS_SERVER

REPO = Path(__file__).resolve().parent.parent

KEYS = {
    "mode", "server", "params", "rss_kib", "logins", "logins_per_second", "rss_per_idle_session_kib",
    "messages_sent", "expected", "received", "lost", "late", "deliveries_per_second", "latency_ms",
    "server_cpu_us_per_delivery", "generator",
}


def test_loadgen_smoke(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "--spawn", "--users", "5", "--senders", "2",
         "--rate", "5", "--duration", "1", "--warmup", "0.2", "--grace", "3", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(out.read_text())
    assert report.keys() >= KEYS, KEYS - report.keys()
    assert set(report["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert set(report["rss_kib"]) >= {"start", "idle", "end"}
    assert report["logins"]["ok"] == 5
    assert report["messages_sent"] == 2 * 5 * 1  # 2 senders x 5/s x 1 s
    assert report["expected"] == report["messages_sent"] * 5
    assert report["received"] == report["expected"]
    assert report["lost"] == 0
    assert report["server"]["exit_code"] == 0
    assert "deliveries/s" in done.stdout


def test_hotpath_smoke() -> None:
    """bench.hotpath runs end to end (25 sessions from one address: more than
    the default arrival burst, which it must raise), with a terminal and idle gaps."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.hotpath", "--users", "25", "--messages", "4", "--rounds", "2",
         "--pty", "--gap", "0.001"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    figures = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert figures["deliveries"].replace(",", "") == str(25 * 4 * 2)
    assert float(figures["cpu_us_per_delivery_best"]) > 0


def test_selftest() -> None:
    """bench's own checks (bench/selftest.py: the generator's line counting
    per dialect, its lean receive path) pass, run as bench runs them."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.selftest"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == 3, done.stdout


def test_hotpath_without_a_patch() -> None:
    """--without takes a patch out: without the IGNORE trim asyncssh sends
    two packets a write (and the direct writer goes with the trim)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.hotpath", "--users", "5", "--messages", "4", "--rounds", "1",
         "--without", "ignore_only_for_cbc"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    figures = dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    assert figures["packets"].replace(",", "") == str(2 * 5 * 4)


def test_patch_micro_benchmarks_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.patches", "--calls", "100"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    rows = done.stdout.splitlines()[1:]
    assert len(rows) == 6 and all(float(row.split()[-2]) > 0 for row in rows), done.stdout



def test_store_commit_bench_smoke(pg_url: str) -> None:
    """On the session's PostgreSQL (starting one of its own is the slow part of a real run)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.store_commit", "--messages", "200", "--seconds", "0.2", "--rounds", "1",
         "--postgres", pg_url],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "sqlite" in done.stdout and "postgresql" in done.stdout


def test_cluster_bench_smoke(tmp_path: Path) -> None:
    """bench.cluster starts its own Redis and PostgreSQL and two nodes, splits the users between them
    (so lines cross nodes), loses nothing, and reports both nodes' CPU, the services' CPU, the
    cross-node latency and each node's bus lag, over the measured window and the whole run."""
    if REDIS_SERVER is None or binaries() is None:
        pytest.skip("redis-server or PostgreSQL is not installed")
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--setup", "nodes", "--timeout", "100", "--users", "6",
         "--senders", "2", "--rate", "5", "--duration", "1", "--warmup", "0.2", "--grace", "3", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(out.read_text())
    assert len(report["server"]["pids"]) == 2 and report["logins"]["ok"] == 6
    assert report["received"] == report["expected"] == 2 * 5 * 6
    assert report["lost"] == 0
    assert report["cross_node_latency_ms"]["p50"] > 0
    assert report["server_cpu_us_per_delivery"] > 0 and report["service_cpu_us_per_delivery"] is not None
    assert done.stdout.count("bus lag, whole run (node on") == 2, done.stdout
    # each node's lag over the measured window alone (its second SIGUSR1 report), in the JSON too
    assert done.stdout.count("bus lag, measured window (node on") == 2, done.stdout
    assert len(report["bus_lag_window"]) == 2 and all(w["entries"] > 0 for w in report["bus_lag_window"])
