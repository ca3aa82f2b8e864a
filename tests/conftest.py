"""Shared fixtures: in-process servers on 127.0.0.1:0 and client keys.

The helpers they are built on live in tests/support/ (tests import them
from there, never from here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sshchat.app import App
from tests.support.postgres import PostgresServer, binaries
from tests.support.redis import REDIS_SERVER, RedisServer
from tests.support.server import Server, make_config
from tests.support.stores import Backend, PostgresBackend, SQLiteBackend


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with settings overridden; all stopped at the end."""
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        app = App(make_config(tmp_path, **overrides))
        (_host, port), *_ = await app.start()
        server = Server(app, port, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        for client in server.clients:
            await client.close()
        await server.app.stop()


@pytest.fixture
async def server(start_server: Callable[..., Any]) -> Server:
    return await start_server(shutdown_grace=0.5)


@pytest.fixture(scope="session")
def keys() -> dict[str, asyncssh.SSHKey]:
    """A few client keys, made once (ed25519 is cheap)."""
    return {n: asyncssh.generate_private_key("ssh-ed25519") for n in ("alice", "bob", "carol", "mallory")}


def _postgres() -> Iterator[PostgresServer]:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/postgres binaries)")
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the session's own (started at the first test that needs it)."""
    yield from _postgres()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: it is stopped and started, which the session's must not be."""
    yield from _postgres()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh empty PostgreSQL database of this test's own."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A database of this test's own, of each kind in turn (tests/support/stores.py)."""
    if request.param == "sqlite":
        return SQLiteBackend(tmp_path)
    return PostgresBackend(request.getfixturevalue("postgres"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (skipped only where none is installed)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    yield server
    server.stop()
