"""One database for a test, SQLite or PostgreSQL, so a store test runs on both.

A test asks for the ``backend`` fixture (conftest.py, parametrized by
kind) and opens the store with :meth:`Backend.open` as often as it likes:
every call opens the same database again, as a restarted server would.
:meth:`Backend.refuse` makes the database itself refuse some inserts, as a
full disk would, through a door beside the store (a trigger).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from sshchat.store.postgres import PostgresStore
from sshchat.store.sqlite import SQLiteStore
from tests.support.postgres import PostgresServer

FULL = "database or disk is full"


class SQLiteBackend:
    kind = "sqlite"

    def __init__(self, tmp: Path) -> None:
        self.db = str(tmp / "c.db")

    def open(self, loop: asyncio.AbstractEventLoop | None = None) -> SQLiteStore:
        return SQLiteStore(self.db, loop=loop)

    def refuse(self, table: str, value: str | None = None) -> None:
        """Inserts into ``table`` fail (only those whose ``value`` column is ``value``, if given)."""
        if not Path(self.db).exists():  # the schema first (a store already open has made it)
            SQLiteStore(self.db).close()
        db = sqlite3.connect(self.db, isolation_level=None)
        when = f"WHEN NEW.value = '{value}'" if value is not None else ""
        db.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} {when}"
            f" BEGIN SELECT RAISE(ABORT, '{FULL}'); END"
        )
        db.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.db)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()


class PostgresBackend:
    kind = "postgres"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.db = server.new_database()
        self.name = self.db.rpartition("/")[2]

    def open(self, loop: asyncio.AbstractEventLoop | None = None) -> PostgresStore:
        return PostgresStore(self.db, loop=loop, wait=5.0)

    def refuse(self, table: str, value: str | None = None) -> None:
        PostgresStore(self.db).close()  # the schema first
        when = f"WHEN (NEW.value = '{value}')" if value is not None else ""
        self.server.psql(self.name, f"""
            CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN RAISE EXCEPTION '{FULL}'; END $$;
            CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW {when}
                EXECUTE FUNCTION refuse_{table}();
        """)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        out = self.server.psql(self.name, sql).stdout
        return [tuple(line.split("|")) for line in out.splitlines() if line]


Backend = SQLiteBackend | PostgresBackend
