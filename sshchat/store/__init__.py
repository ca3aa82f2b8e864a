"""Durable state behind the small interface of ``sshchat.chat.store``.

SQLite is the default, for a file or ":memory:"; PostgreSQL (postgres.py)
for a ``postgresql://`` URL, shared by the nodes of a cluster; memory.py is a
twin for tests.
"""

from __future__ import annotations

import asyncio

from sshchat.chat.store import Store
from sshchat.store.errors import StoreError, StoreUnreachable
from sshchat.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "StoreError", "StoreUnreachable", "is_postgres_url", "open_store"]

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(db: str) -> bool:
    """Whether a ``--db`` value names a PostgreSQL database (anything else is a SQLite file)."""
    return db.startswith(_PG_SCHEMES)


def open_store(db: str, loop: asyncio.AbstractEventLoop | None, wait: float, connect_wait: float) -> Store:
    """The store ``db`` names: a PostgreSQL URL (reached within ``connect_wait``
    seconds), else a SQLite file (``wait`` seconds for a previous server to let
    go of it). asyncpg is imported only here: a single server never loads it."""
    if not is_postgres_url(db):
        return SQLiteStore(db, loop, wait=wait)
    try:
        from sshchat.store.postgres import PostgresStore
    except ImportError as e:
        raise StoreError(f"a postgresql:// database needs asyncpg ({e}): pip install asyncpg") from None
    return PostgresStore(db, loop, wait=connect_wait)
