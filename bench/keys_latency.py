"""Chat latency of two people while a third sends its input limit of the worst keys.

``python -m bench.keys_latency [--seconds S] [--attack BYTES]``

A real server and three real SSH clients, all in this process on
127.0.0.1: alice says a numbered line every 20 ms and bob times each from
alice's write to its arrival on bob's screen, first with nobody else busy
(the baseline), then while mallory (with a terminal) sends, at once, its
whole input budget (``input_bytes_per_minute``, 256 KB by default) of the
dearest keys (``--keys``): ``combining``, Ctrl-B/Ctrl-F on "a" and 2047
combining marks (each key rescanned the line); ``cjk``, on a 2000-character
CJK line, Home, a character, End, Backspace, one group per SSH packet (each
an edit at the start of the line, the whole line redrawn). Prints bob's latency percentiles in ms for both
phases, and what happened to mallory. Issue 14 asks for p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time

import asyncssh

from bench.client import KeylessClient
from sshchat.app import App
from sshchat.config import Config

WORST = "\x01漢\x05\x7f"  # Home, a wide character, End, Backspace


Client = tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess[str]]


async def _connect(port: int, name: str, pty: bool) -> Client:
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=name, known_hosts=None, client_keys=None, agent_path=None,
        client_factory=KeylessClient,
    )
    process = await conn.create_process(term_type="xterm" if pty else None, term_size=(80, 24) if pty else None)
    return conn, process


async def _chat(alice: asyncssh.SSHClientProcess[str], bob: asyncssh.SSHClientProcess[str], seconds: float,
                tag: str) -> list[float]:
    """Latencies (ms) of alice's lines as bob sees them, for ``seconds``."""
    sent: dict[int, float] = {}
    got: list[float] = []
    pattern = re.compile(rf"{tag}(\d+)\b")
    seen = ""

    async def read() -> None:
        nonlocal seen
        while True:
            chunk = await bob.stdout.read(65536)
            if not chunk:
                return
            now = time.perf_counter()
            seen = (seen + chunk)[-4096:]
            for m in pattern.finditer(seen):
                n = int(m.group(1))
                if n in sent:
                    got.append((now - sent.pop(n)) * 1000)
            seen = seen[-32:]

    reader = asyncio.create_task(read())
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        sent[n] = time.perf_counter()
        alice.stdin.write(f"{tag}{n} \n")
        n += 1
        await asyncio.sleep(0.02)
    deadline = time.perf_counter() + 30
    while sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    reader.cancel()
    got.extend([float("inf")] * len(sent))  # never arrived
    return got


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def run(seconds: float, attack: int | None, kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sshchat-keys-") as tmp:
        config = Config(
            host="127.0.0.1", port=0, host_key=os.path.join(tmp, "host"), db=os.path.join(tmp, "chat.db"),
            log_level="error", rate_burst=10**6, rate_per_second=1000.0,
        )
        app = App(config)
        (_, port), *_ = await app.start()
        conns = []
        try:
            for name in ("alice", "bob"):
                conns.append(await _connect(port, name, pty=False))
            (_, alice), (_, bob) = conns
            base = await _chat(alice, bob, seconds, "base")
            mconn, mallory = await _connect(port, "mallory", pty=True)
            conns.append((mconn, mallory))
            await asyncio.sleep(0.5)
            line = "漢" * 2000 if kind == "cjk" else "a" + "\u0301" * 2047
            mallory.stdin.write(line)
            budget = attack or config.input_bytes_per_minute - len(line.encode()) - 1024
            group = WORST if kind == "cjk" else "\x02\x06"
            keys = group * (budget // len(group.encode()))
            started = time.perf_counter()
            if kind == "cjk":
                async def packets() -> None:
                    for at in range(0, len(keys), len(group)):
                        mallory.stdin.write(keys[at : at + len(group)])  # one group per SSH packet
                        if at % (len(group) * 64) == 0:
                            await asyncio.sleep(0)
                sender = asyncio.create_task(packets())
            else:
                mallory.stdin.write(keys)
            under = await _chat(alice, bob, seconds, "load")
            if kind == "cjk":
                sender.cancel()
            took = time.perf_counter() - started
            for label, values in (("baseline", base), ("under attack", under)):
                print(f"bob's latency, {label:13s} n={len(values):4d}  p50 {_pct(values, 50):7.1f} ms"
                      f"  p99 {_pct(values, 99):7.1f} ms  max {max(values):7.1f} ms")
            gone = mallory.exit_status is not None or mconn.is_closed()
            print(f"mallory sent {len(keys.encode())} bytes ({len(keys)} keys); after {took:.1f} s: "
                  + ("cut off" if gone else "still connected"))
        finally:
            for conn, _ in conns:
                conn.abort()
            await app.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds of chat in each phase")
    ap.add_argument("--attack", type=int, default=None, help="bytes of worst keys (default: the input budget)")
    ap.add_argument("--keys", choices=("combining", "cjk"), default="combining")
    a = ap.parse_args()
    asyncio.run(run(a.seconds, a.attack, a.keys))


if __name__ == "__main__":
    main()
