"""The server's own cost per delivery, without the kernel and the clients.

``python -m bench.hotpath [--users N] [--pty] [--messages M] [--rounds R] [--batch B] [--without PATCH] [--metrics]``

A real server (in this process, 127.0.0.1, port 0) and N real SSH
sessions (asyncssh clients, also in this process) are set up; then every
server connection's socket transport is swapped for one that counts and
drops bytes, and M chat messages are fanned out to all N through the same
path a typed line takes after the store has committed it: room, outlets,
one flush per loop turn, rendering, packet building, encryption, in R
rounds. What it prints is the CPU time per delivery of exactly that path
(best and median round), the part that is
ours to make cheaper; the full benchmark (``bench.loadgen``) adds the
socket writes, the clients, the store, and a machine shared with the
generator. Figures vary less than a full run's, so this is the one to
compare before and after a change to the output path. ``--without`` takes
asyncssh patches (sshchat/ssh/patches/) out after the server started, to
measure what one of them buys on this path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from typing import Any

import asyncssh

from bench.client import KeylessClient
from sshchat.app import App
from sshchat.chat.message import Kind, Message
from sshchat.config import Config
from sshchat.ssh import patches


class _NullTransport:
    """Stands in for a socket transport: counts what it is given."""

    def __init__(self, real: asyncio.BaseTransport) -> None:
        self.real = real
        self.bytes = 0
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def _measure(
    users: int, messages: int, rounds: int, batch: int, pty: bool, ciphers: str, gap: float, without: list[str],
    metrics: bool = False,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sshchat-hotpath-") as tmp:
        config = Config(
            host="127.0.0.1", port=0, host_key=os.path.join(tmp, "host"), db=os.path.join(tmp, "chat.db"),
            log_level="warning", rate_burst=10**6, max_per_address=users + 10, max_startups=users + 10,
            new_connections_burst=users + 10, notice_burst=10**6, ciphers=ciphers,
            metrics="127.0.0.1:0" if metrics else "",
        )
        app = App(config)
        (_, port), *_ = await app.start()
        for patch in patches.ALL:
            if patches.name(patch) in without:
                patch.uninstall()
        clients = []
        try:
            for n in range(users):
                conn = await asyncssh.connect(
                    "127.0.0.1", port, username=f"u{n}", known_hosts=None, client_keys=None,
                    agent_path=None, client_factory=KeylessClient,
                )
                process = await conn.create_process(term_type="xterm" if pty else None, encoding=None)
                clients.append((conn, process))
            while len(app.ctx.connections) < users or len(app.hub.rooms["#lobby"].members) < users:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # join notices flushed
            nulls = []
            for conn in app.ctx.connections:
                null = _NullTransport(conn._transport)
                conn._transport = null
                nulls.append(null)
            room = app.hub.rooms["#lobby"]
            text = "~bench m1 " + "x" * 54
            cpu: list[float] = []
            for r in range(rounds):  # the machine's speed wanders: the best round is the figure to compare
                msgs = [
                    Message(10**9 + r * messages + i, "#lobby", Kind.CHAT, f"u{i % users}", text, time.time())
                    for i in range(messages)
                ]
                await asyncio.sleep(0)
                cpu0 = time.process_time()
                for at in range(0, messages, batch):
                    for msg in msgs[at:at + batch]:
                        room.publish(msg, keep=False)
                    await asyncio.sleep(gap)  # the flush runs in the next loop turn: `batch` messages per write
                cpu.append((time.process_time() - cpu0) * 1e6 / (messages * users))
            writes = sum(n.writes for n in nulls)
            for conn, null in zip(app.ctx.connections, nulls, strict=False):
                conn._transport = null.real  # let the sessions end cleanly
            cpu.sort()
            return {
                "users": users,
                "deliveries": messages * users * rounds,
                "packets": writes,
                "bytes_per_packet": sum(n.bytes for n in nulls) / max(writes, 1),
                "cpu_us_per_delivery_best": cpu[0],
                "cpu_us_per_delivery_median": cpu[len(cpu) // 2],
            }
        finally:
            for conn, _ in clients:
                conn.abort()
            await app.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--messages", type=int, default=200, help="messages per round")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch", type=int, default=1,
                   help="messages per loop turn (1: light load; 500 users at 0.8 msg/s batch about 10-40)")
    p.add_argument("--pty", action="store_true", help="sessions with a terminal (rendered, input line redrawn)")
    p.add_argument("--ciphers", default=Config().ciphers, help="ciphers the server offers (default: its default)")
    p.add_argument("--gap", type=float, default=0.0,
                   help="seconds idle after each turn (0.01: 100 users at 0.8 msg/s, where the core idles between "
                        "messages and every one finds it cold)")
    p.add_argument("--metrics", action="store_true", help="with --metrics (on a free port): what its counting costs")
    names = [patches.name(patch) for patch in patches.ALL]
    p.add_argument("--without", action="append", default=[], choices=names, metavar="PATCH",
                   help="take this asyncssh patch out (repeatable; without ignore_only_for_cbc, direct_write "
                        "goes too, as it writes what asyncssh writes with it): " + ", ".join(names))
    args = p.parse_args(argv)
    if "ignore_only_for_cbc" in args.without:
        args.without.append("direct_write")
    if (not 1 <= args.users <= 1000 or not 1 <= args.messages <= 100_000 or not 1 <= args.rounds <= 100
            or not 1 <= args.batch <= args.messages or not 0 <= args.gap <= 1):
        p.error("--users 1..1000, --messages 1..100000, --rounds 1..100, --batch 1..--messages, --gap 0..1")
    result = asyncio.run(_measure(
        args.users, args.messages, args.rounds, args.batch, args.pty, args.ciphers, args.gap, args.without,
        args.metrics,
    ))
    for key, value in result.items():
        print(f"{key:24s} {value:,.2f}" if isinstance(value, float) else f"{key:24s} {value:,}")
    return 0 if result["packets"] >= result["deliveries"] // args.batch else 1


if __name__ == "__main__":
    sys.exit(main())
