"""What survives a restart, and what a SIGKILL cannot take away."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
from pathlib import Path

import asyncssh

from sshchat.app import App
from tests.support.clients import KeylessClient
from tests.support.server import Server, ServerProcess, make_config
from tests.support.stores import Backend


async def restart(server: Server, **overrides) -> Server:
    """Stop ``server`` and start a new one on the same files (and database)."""
    for client in server.clients:
        await client.close()
    await server.app.stop()
    overrides.setdefault("db", server.app.config.db)
    app = App(make_config(server.tmp, shutdown_grace=0.5, **overrides))
    (_, port), *_ = await app.start()
    return Server(app, port, server.tmp)


async def test_history_bindings_bans_ops_and_mutes_come_back(tmp_path: Path, keys, backend: Backend) -> None:
    """On SQLite and on PostgreSQL alike."""
    admin_file = tmp_path / "admins"
    admin_file.write_text(keys["carol"].export_public_key().decode())
    app = App(make_config(tmp_path, db=backend.db, admin_keys=str(admin_file), shutdown_grace=0.5))
    (_, port), *_ = await app.start()
    server = Server(app, port, tmp_path)
    try:
        boss = await server.connect("boss", key=keys["carol"])
        alice = await server.connect("alice", key=keys["alice"])
        # From an address of its own: /ban NAME bans the address too.
        mallory = await server.connect("mallory", key=keys["mallory"], local_addr=("127.0.0.2", 0))
        bob = await server.connect("bob", key=keys["bob"])
        for n in range(25):
            alice.line(f"before restart {n}")
        await boss.wait_for("before restart 24")
        boss.line("/op alice")
        boss.line("/mute bob")
        boss.line("/ban mallory spamming")
        boss.line("/motd remember the rules")
        await mallory.exit_status()
        await boss.wait_for("message of the day set")

        server = await restart(server, admin_keys=str(admin_file))
        # History: the last 20 of the room, in order.
        late = await server.connect("late")
        await late.wait_for("before restart 24")
        assert "before restart 4" not in late.text
        shown = re.findall(r"before restart (\d+)", late.text)
        assert shown == [str(n) for n in range(5, 25)]
        assert "remember the rules" in late.text
        # Binding: nobody else can be alice.
        impostor = await server.connect("alice", key=keys["bob"])
        assert await impostor.exit_status() == 1
        assert "registered to another key" in impostor.stderr
        # Ban: mallory is still turned away, with the reason.
        again = await server.connect("mallory2", key=keys["mallory"])
        assert await again.exit_status() == 1
        assert "you are banned: spamming" in again.stderr
        # Op: alice can still moderate; mute: bob is still unheard.
        alice = await server.connect("alice", key=keys["alice"])
        bob = await server.connect("bob", key=keys["bob"])
        bob.line("hello after restart")
        await bob.wait_for("bob: hello after restart")
        alice.line("/kick late")
        assert await late.exit_status() == 0
        alice.line("marker")
        await alice.wait_for("alice: marker")
        assert "hello after restart" not in alice.text
    finally:
        for client in server.clients:
            await client.close()
        await server.app.stop()


_NO_LIMITS = {"SSHCHAT_RATE_BURST": "1000000", "SSHCHAT_INPUT_BYTES_PER_MINUTE": "1000000000"}


async def _connect(port: int, name: str) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientProcess]:
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=name, known_hosts=None, client_keys=None,
        agent_path=None, client_factory=KeylessClient,
    )
    return conn, await conn.create_process(encoding="utf-8")


async def test_sigkill_loses_nothing_a_client_saw(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, env=_NO_LIMITS)
    proc, port = server.proc, server.port
    seen: list[int] = []
    try:
        _, reader = await _connect(port, "reader")
        _, writer = await _connect(port, "writer")
        await reader.stdout.readuntil("writer joined")

        async def read() -> None:
            while True:
                line = await reader.stdout.readline()
                if not line:
                    return
                m = re.match(r"writer: n(\d+)$", line.strip())
                if m:
                    seen.append(int(m.group(1)))
                    if len(seen) == 150:
                        proc.send_signal(signal.SIGKILL)  # mid-stream

        async def write() -> None:
            for n in range(100_000):
                try:
                    writer.stdin.write(f"n{n}\n")
                except Exception:
                    return
                if n % 10 == 0:
                    await asyncio.sleep(0.001)  # pacing: a steady stream the kill falls into

        await asyncio.wait_for(asyncio.gather(read(), write(), return_exceptions=True), 30)
    finally:
        proc.kill()
        proc.wait()
    assert len(seen) >= 150
    # Read the file the killed server left behind, as the next start will.
    db = sqlite3.connect(tmp_path / "chat.db")
    stored = {int(t[1:]) for (t,) in db.execute("SELECT text FROM messages WHERE sender = 'writer'")}
    db.close()
    assert set(seen) <= stored, sorted(set(seen) - stored)[:10]

    server = ServerProcess(tmp_path, env=_NO_LIMITS)  # and the server starts on it
    proc, port = server.proc, server.port
    try:
        conn, checker = await _connect(port, "checker")
        checker.stdin.write("/history 1\n")
        out = await asyncio.wait_for(checker.stdout.readuntil("the last 1 messages"), 10)
        assert "checker joined" in out
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


async def test_serve_on_postgresql_keeps_history_and_names_across_a_restart(tmp_path: Path, pg_url: str, keys) -> None:
    """``sshchat serve --db postgresql://...``: what was said and who owns a
    name are there when the server comes back."""
    server = ServerProcess(tmp_path, "--db", pg_url, env=_NO_LIMITS)
    try:
        conn = await asyncssh.connect(
            "127.0.0.1", server.port, username="alice", known_hosts=None, client_keys=[keys["alice"]],
            agent_path=None,
        )
        alice = await conn.create_process(encoding="utf-8")
        await alice.stdout.readuntil("Welcome")
        for n in range(3):
            alice.stdin.write(f"kept {n}\n")
        await asyncio.wait_for(alice.stdout.readuntil("alice: kept 2"), 10)
        conn.close()
    finally:
        assert server.stop() == 0, "".join(server.log)

    server = ServerProcess(tmp_path, "--db", pg_url, env=_NO_LIMITS)
    try:
        conn, late = await _connect(server.port, "late")
        out = await asyncio.wait_for(late.stdout.readuntil("alice: kept 2"), 10)
        assert re.findall(r"alice: (kept \d)", out) == ["kept 0", "kept 1", "kept 2"]
        conn.close()
        impostor, process = await _connect(server.port, "alice")  # a keyless alice: the name is a key's
        assert await asyncio.wait_for(process.wait_closed(), 10) is None
        assert process.exit_status == 1 and "is registered to a key" in (await process.stderr.read())
        impostor.close()
    finally:
        assert server.stop() == 0, "".join(server.log)
