"""Smoke test of the load generator's typing mode (``bench.loadgen --typing``).

Not a measurement: a tiny run against a spawned server, as a subprocess (the
tests do not import bench/). It checks what the mode promises: every user
has a terminal, every key of a typed line reaches the server as its own SSH
packet, every posted line is found among the line editor's escape codes by
every user, and the JSON report carries the typing figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

USERS, SIZE, KEYS_PER_SECOND, DURATION = 3, 40, 40, 2
# 40 characters at 40 keys/s take 1 s: a line a second per sender, typed without a pause
TYPED = ["--typing", "--size", str(SIZE), "--keys-per-second", str(KEYS_PER_SECOND), "--rate", "1"]


def _loadgen(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_typed_lines_arrive_whole_at_everyone(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = _loadgen("--spawn", "--users", str(USERS), *TYPED, "--duration", str(DURATION),
                    "--warmup", "0.5", "--grace", "3", "--json", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(out.read_text())
    assert report["params"]["typing"] is True
    assert report["params"]["pty"] == "all"  # readers have terminals too, as people do

    # Enter is due once a second per sender: exactly DURATION lines each in the window
    sent = USERS * DURATION
    assert report["messages_sent"] == sent
    assert report["expected"] == sent * USERS
    assert report["received"] == report["expected"], report
    assert (report["lost"], report["gaps"], report["out_of_order"], report["disconnected"]) == (0, 0, 0, 0)

    typing = report["typing"]
    keys = sent * (SIZE + 1)  # the characters, then Enter
    assert typing["keys_typed"] == keys
    assert typing["key_packets"] == keys, "keys were merged into fewer SSH packets (or others slipped in)"
    # keys counted by when they were due: (SIZE + 1) a second per sender, give or take one at each edge
    assert abs(typing["keys_per_second"] - USERS * (SIZE + 1)) <= 2 * USERS / DURATION, typing
    assert typing["latencies_not_from_enter"] == 0
    assert report["generator_packets_per_second"] > 0

    assert report["timed_deliveries"] == report["received"]  # 3 users: everyone times every line
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert report["server_cpu_us_per_delivery"] is not None
    assert report["server"]["exit_code"] == 0
    assert "keys typed/s" in done.stdout


def test_typing_faster_than_the_schedule_allows_is_refused() -> None:
    """A line that takes longer to type than the time between lines would
    silently lower the rate: the generator says so instead."""
    done = _loadgen("--spawn", "--typing", "--size", "64", "--keys-per-second", "10", "--rate", "0.5", timeout=30)
    assert done.returncode == 2
    assert "--typing: a 64-character line takes 6.40 s" in done.stderr


def test_typing_against_ssh_chat_is_refused() -> None:
    """Its terminal output was never checked against the parser."""
    done = _loadgen("--port", "2022", "--dialect", "ssh-chat", "--typing", timeout=30)
    assert done.returncode == 2
    assert "for --dialect sshchat only" in done.stderr
