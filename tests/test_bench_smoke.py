"""Smoke test of the load generator (bench/): a tiny run against a spawned server.

Not a measurement: it checks that ``python -m bench.loadgen --spawn`` runs
end to end, stops by itself, writes its JSON report, and that in a run this
small every message reaches every user.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
         "--rate", "5", "--duration", "2", "--warmup", "0.5", "--grace", "3", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(out.read_text())
    assert KEYS <= report.keys(), KEYS - report.keys()
    assert set(report["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert set(report["rss_kib"]) >= {"start", "idle", "end"}
    assert report["logins"]["ok"] == 5
    assert report["messages_sent"] == 2 * 5 * 2  # 2 senders x 5/s x 2 s
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


def test_dialects_count_each_posted_line_once() -> None:
    """What the generator counts as a delivery, in each server's output."""
    from bench.client import DIALECTS, message_line, message_pattern

    line = message_line("tok", 1, 7, True, 40).rstrip(b"\n")
    ours = message_pattern("tok", DIALECTS["sshchat"])
    assert len(ours.findall(b"u1: " + line + b"\n\x1b[33mu2\x1b[0m: " + line + b"\n")) == 2
    # ssh-chat: the typed text echoed (no newline), the sender's own line, another's line in colour
    theirs = message_pattern("tok", DIALECTS["ssh-chat"])
    echo = b"[u1] " + line + b"\x1b[2K\x1b[J"
    output = echo + b"\r[u1] " + line + b"\r\n\x1b[38;05;2mu2\x1b[0m: " + line + b"\r\n"
    assert [m[1] for m in theirs.findall(output)] == [b"7", b"7"]
    assert message_line("tok", 1, 7, True, 40, DIALECTS["ssh-chat"].line_end).endswith(b"x\r")
