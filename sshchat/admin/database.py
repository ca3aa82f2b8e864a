"""How ``sshchat admin`` opens the database: the store ``serve`` uses, without an event loop.

The same stores, migrations and queries as the server, so the tool and the
server never disagree on a table. Two differences, both because the tool
may run while a server runs on the same database:

* a SQLite file is opened ``beside`` the server (sqlite.py): the file is
  not held for the tool's life, and a schema upgrade is left to the server;
* every call blocks until the store thread answers (the tool has no event
  loop), and a failure is raised, never swallowed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sshchat.chat.message import Message
from sshchat.chat.store import Change, Draft, Said, Snapshot
from sshchat.store import StoreError, is_postgres_url
from sshchat.store.batching import BatchingStore
from sshchat.store.sqlite import SQLiteStore

_T = TypeVar("_T")
PAGE = 500  # messages read or written per round trip: what an export or an import holds in memory


class AdminError(Exception):
    """Something the person asked for cannot be done; ``str()`` says why (exit 1)."""


class Database:
    """One database (``--db``) for the length of one ``sshchat admin`` command."""

    def __init__(self, db: str, connect_wait: float, *, create: bool = False) -> None:
        """Open ``db`` (a SQLite file, or a PostgreSQL URL reached within
        ``connect_wait`` seconds). A SQLite file that does not exist is
        refused (a typo must not leave an empty database behind) unless
        ``create`` (an import into a new database)."""
        self.store: BatchingStore
        self.postgres = is_postgres_url(db)
        if self.postgres:
            try:
                from sshchat.store.postgres import PostgresStore
            except ImportError as e:
                raise StoreError(f"a postgresql:// database needs asyncpg ({e}): pip install asyncpg") from None
            pg = PostgresStore(db, None, wait=connect_wait, beside=True)
            self.store = pg
            try:
                self.server_running = pg.others_connected() > 0
            except BaseException:
                pg.close()
                raise
        else:
            if not create and db != ":memory:" and not os.path.exists(db):
                raise StoreError(f"cannot use database {db}: no such file (give --db as to sshchat serve)")
            sqlite = SQLiteStore(db, None, beside=True)
            self.store = sqlite
            self.server_running = sqlite.server_running

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- reads

    def state(self) -> Snapshot:
        """Names, operators, bans, rooms... as a server loads them at start (no history)."""
        return self.store.load(0)

    def messages(self, room: str) -> Iterator[Said]:
        """Every message of ``room`` (its name as kept), oldest first, a page at a time."""
        after = 0
        while True:
            page = self.store.messages_after(room, after, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].msg.id

    # ------------------------------------------------------------ writes

    def save(self, changes: list[Change]) -> None:
        """Write ``changes``, in order; raises the first that was not kept."""
        errors: list[Exception] = []
        for change in changes[:-1]:
            self.store.save(change, _collect(errors))
        last = self._settle(lambda done: self.store.save(changes[-1], done))
        if last is not None:
            errors.append(last)
        if errors:
            raise AdminError(f"not saved: {errors[0]}")

    def append(self, drafts: list[Draft]) -> list[Message]:
        """Commit ``drafts`` (one room's or several), in order; their messages with ids."""
        result: list[Message] | Exception = self._settle(lambda done: self.store.append(drafts, done))
        if isinstance(result, Exception):
            raise AdminError(f"not saved: {result}")
        return result

    def _settle(self, call: Callable[[Callable[[Any], None]], None]) -> Any:
        """Make a store call with a callback, and wait for its answer.

        The store answers jobs in the order they were queued, so once this
        one is answered, every job queued before it has been too."""
        answered = threading.Event()
        box: list[Any] = []

        def done(value: Any) -> None:
            box.append(value)
            answered.set()

        call(done)
        answered.wait()
        return box[0]


def _collect(errors: list[Exception]) -> Callable[[Exception | None], None]:
    def done(error: Exception | None) -> None:
        if error is not None:
            errors.append(error)

    return done
