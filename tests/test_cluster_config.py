"""--bus on the command line: a cluster's settings that cannot work are one
line and exit 2; a server without --bus is what it was (no Redis client loaded)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from sshchat.app import App, StartError
from sshchat.bus.redis import RedisBus
from sshchat.config import CLUSTER_NEEDS_SHARED_DB, ConfigError, UsageError, load
from sshchat.store import StoreError, open_store
from tests.support.redis import RedisServer, free_port
from tests.support.server import Server, make_config
from tests.support.waiting import eventually

SSHCHAT = [sys.executable, "-m", "sshchat"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SSHCHAT, *args], capture_output=True, text=True, cwd=cwd, timeout=30)


@pytest.mark.parametrize("db", [[], ["--db", "chat.db"], ["--db", ":memory:"]])
def test_a_bus_with_a_sqlite_database_is_one_line_and_exit_2(tmp_path: Path, db: list[str]) -> None:
    r = run("serve", "--port", "0", "--host-key", "k", "--bus", "redis://127.0.0.1:6379/0", *db, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"sshchat: {CLUSTER_NEEDS_SHARED_DB}"]
    assert not (tmp_path / "chat.db").exists() and not (tmp_path / "k").exists()  # refused before anything


def test_a_bus_that_is_not_a_redis_url_is_one_line(tmp_path: Path) -> None:
    r = run("serve", "--port", "0", "--bus", "localhost:6379", "--db", "postgresql://u@h:5432/d", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["sshchat: bus must be redis://HOST:PORT/DB, not 'localhost:6379'"]


def test_the_bus_setting_comes_from_every_layer() -> None:
    assert load().bus == ""
    env = {"SSHCHAT_BUS": "redis://10.0.0.5:6380/2", "SSHCHAT_DB": "postgresql://chat@10.0.0.4:5432/chat"}
    assert load(env=env).bus == "redis://10.0.0.5:6380/2"
    with pytest.raises(UsageError):
        load(env={"SSHCHAT_BUS": "redis://h:1/0"})
    with pytest.raises(ConfigError, match="bus_gap_wait must be positive"):
        load(env={**env, "SSHCHAT_BUS_GAP_WAIT": "0"})


def test_a_server_without_a_bus_loads_no_redis_client() -> None:
    code = "import sys, sshchat.cli, sshchat.app; print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "[]", r.stderr


async def test_an_unreachable_redis_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """(The App is given the settings directly: a shared database is the
    PostgreSQL store's part; here only Redis is missing.)"""
    port = free_port()  # nothing listens there
    app = App(make_config(tmp_path, bus=f"redis://127.0.0.1:{port}/0", bus_start_wait=0.3))
    began = time.monotonic()
    with pytest.raises(StartError) as refused:
        await app.start()
    assert time.monotonic() - began < 3.0
    assert refused.value.status == 2
    assert str(refused.value).startswith(f"cannot reach Redis at 127.0.0.1:{port}: ")
    assert "\n" not in str(refused.value)
    await app.stop()


async def test_a_server_on_a_redis_bus_delivers_through_it(tmp_path: Path, redis_server: RedisServer) -> None:
    app = App(make_config(tmp_path, bus=redis_server.url, shutdown_grace=0.2))
    (_, port), *_ = await app.start()
    server = Server(app, port, tmp_path)
    try:
        alice, bob = await server.connect("alice"), await server.connect("bob")
        alice.line("hello over the bus")
        await bob.wait_for("alice: hello over the bus")
        bus = app._bus
        assert isinstance(bus, RedisBus)
        await eventually(lambda: bus.published >= 1)  # (on the stream for other nodes, too)
    finally:
        for client in server.clients:
            await client.close()
        await app.stop()


def test_a_postgresql_database_without_asyncpg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one line names a package that exists: asyncpg (there is no
    'sshchat' to install from an index: sshchat installs from its folder)."""
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg: ImportError
    monkeypatch.delitem(sys.modules, "sshchat.store.postgres", raising=False)
    with pytest.raises(StoreError) as refused:
        open_store("postgresql://chat@127.0.0.1:5432/chat", None, wait=0.0, connect_wait=0.0)
    assert str(refused.value).endswith(": pip install asyncpg"), refused.value
