"""The cluster's store: PostgreSQL through asyncpg, shared by every node.

The same Store as SQLite, served the same way (batching.py): one thread
takes whatever queued up while its previous commit ran, commits it as one
transaction, and calls back on the event loop in commit order; a failed
batch is written again job by job. asyncpg is asynchronous, so that thread
runs an event loop of its own and waits on it for each transaction; the
chat's loop never waits on the database, and ``load`` (the one call that
blocks, at start) is a read queued like any other, so Hub's synchronous
start-up works unchanged.

Ids: a room message's id is its position in its room. Each transaction
adds its messages' count to the room's row of ``room_seq`` and takes the ids
below the new value; the row stays locked until the commit, so one room's
ids are contiguous and committed in id order across all nodes, and rooms
never wait on each other. Rows are locked in room order, so two nodes
committing to the same rooms cannot deadlock. A rolled-back transaction
rolls its increment back: no holes.

The connection: opened at start with a bounded retry (``wait`` seconds),
then an unreachable server is StoreUnreachable. Lost later (PostgreSQL
restarted), each batch opens a new one, at most one attempt a second; while
it is down, writes fail at once and their callers are told (a message is
refused to its sender, never silently dropped), and a batch that failed for
want of the server is not retried job by job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import urllib.parse
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg

from sshchat.chat.message import Message
from sshchat.chat.store import AuditEntry, Said, Snapshot
from sshchat.store.batching import BatchingStore
from sshchat.store.errors import StoreError, StoreUnreachable
from sshchat.store.jobs import Result, Save, Write
from sshchat.store.pg_schema import MIGRATION_LOCK, MIGRATIONS
from sshchat.store.pg_writers import write
from sshchat.store.reading import MESSAGE_COLUMNS, SAID_COLUMNS, STATE_QUERIES, fill_state, message, said

log = logging.getLogger("sshchat")

_T = TypeVar("_T")
_CONNECT_TIMEOUT = 2.0  # one attempt to open a connection
_COMMAND_TIMEOUT = 10.0  # a statement the server does not answer: fail it (its callers are told)
_RECONNECT_EVERY = 1.0  # while the server is down, one connection attempt a second, not one per batch
_MIGRATION_WAIT = 120.0  # for another node's schema upgrade to finish
_TRANSIENT_TRIES = 3
_TRANSIENT = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)

# The server out of reach (down, restarting, refusing connections): not the record's fault.
_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
    asyncpg.exceptions.TooManyConnectionsError,
)


def redacted(url: str) -> str:
    """``url`` without its password, for errors and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class PostgresStore(BatchingStore):
    """The Store interface on a PostgreSQL database, served by one thread."""

    _expected_errors = (asyncpg.PostgresError, *_UNREACHABLE)

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop | None = None, wait: float = 5.0) -> None:
        """Connect (retrying for ``wait`` seconds), bring the schema up to date,
        and serve. Blocks until then: a server must not start on a database it
        cannot use."""
        super().__init__(loop)
        self.url = url
        self.where = redacted(url)
        self._io = asyncio.new_event_loop()  # run only on the store thread
        self._conn: asyncpg.Connection | None = None
        self._next_attempt = 0.0
        opened: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(opened, wait), name="sshchat-store-pg", daemon=True
        )
        self._thread.start()
        try:
            opened.result()
        except BaseException:
            self._thread.join()
            raise

    # ------------------------------------------------------------- thread

    def _thread_main(self, opened: Future[None], wait: float) -> None:
        try:
            self._conn = self._wait(self._open(wait))
        except BaseException as e:
            opened.set_exception(e)
            self._io.close()
            return
        opened.set_result(None)
        try:
            self._serve_forever()
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._wait(self._conn.close(timeout=_CONNECT_TIMEOUT))
            self._io.close()

    def _wait(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run ``work`` on the store thread's own loop until it is done.

        A cancellation from inside asyncpg becomes an ordinary error: as a
        BaseException it would get past the thread's guard and end it."""
        try:
            return self._io.run_until_complete(work)
        except asyncio.CancelledError as e:
            raise ConnectionError(f"database {self.where}: the operation was cancelled") from e

    # ----------------------------------------------------- connection, schema

    async def _open(self, wait: float) -> asyncpg.Connection:
        """The first connection, retried for ``wait`` seconds; the schema migrated."""
        deadline = time.monotonic() + wait
        while True:
            try:
                conn = await self._connect(max(0.1, min(_CONNECT_TIMEOUT, deadline - time.monotonic())))
                break
            except _UNREACHABLE as e:
                if time.monotonic() >= deadline:
                    raise StoreUnreachable(
                        f"cannot reach database {self.where}: {_reason(e)} (tried for {wait:g} s)"
                    ) from None
                await asyncio.sleep(0.2)
            except (asyncpg.PostgresError, ValueError) as e:  # refused: no such database, user, password...
                raise StoreError(f"cannot use database {self.where}: {_reason(e)}") from None
        try:
            await self._migrate(conn)
        except BaseException:
            await conn.close(timeout=_CONNECT_TIMEOUT)
            raise
        return conn

    async def _connect(self, timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.url, timeout=timeout, command_timeout=_COMMAND_TIMEOUT,
            server_settings={"application_name": "sshchat"},
        )

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        """Apply the upgrades the database lacks, one transaction each, holding
        an advisory lock: of two nodes starting at once, the second waits and
        then finds nothing left to do."""
        try:
            # Another node may be migrating: wait for it longer than for a statement.
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK, timeout=_MIGRATION_WAIT)
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                version = await conn.fetchval("SELECT version FROM schema_version")
                if version is None:
                    version = 0
                    await conn.execute("INSERT INTO schema_version VALUES (0)")
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"cannot use database {self.where}: schema version {version} is newer than this"
                        f" sshchat knows ({len(MIGRATIONS)})"
                    )
                for number in range(version, len(MIGRATIONS)):
                    async with conn.transaction():
                        await conn.execute(MIGRATIONS[number])
                        await conn.execute("UPDATE schema_version SET version = $1", number + 1)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        except (asyncpg.PostgresError, *_UNREACHABLE) as e:
            raise StoreError(f"cannot use database {self.where}: {_reason(e)} (upgrading its schema)") from None
        if version < len(MIGRATIONS):
            log.info("database %s: schema version %d -> %d", self.where, version, len(MIGRATIONS))

    async def _connection(self) -> asyncpg.Connection:
        """The open connection, or a new one if the old was lost."""
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        if time.monotonic() < self._next_attempt:
            raise ConnectionError(f"database {self.where} is unreachable")
        self._next_attempt = time.monotonic() + _RECONNECT_EVERY
        self._drop()
        self._conn = await self._connect(_CONNECT_TIMEOUT)
        log.info("database %s: connected again", self.where)
        return self._conn

    def _drop(self) -> None:
        """Forget the connection (closing it without waiting): the next use opens a new one."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    def _retry_alone(self, error: Exception) -> bool:
        """Not when the server is out of reach: each job would fail the same
        way, and a commit whose answer was lost may have been made after all
        (retrying would store it twice)."""
        return not isinstance(error, _UNREACHABLE)

    # ------------------------------------------------------------- writes

    def _transaction(self, jobs: list[Write]) -> list[Result]:
        """One transaction; tried again (a few times) when PostgreSQL broke a
        deadlock by aborting it, which is nobody's fault: two nodes changed
        the same state rows in opposite orders."""
        for _ in range(_TRANSIENT_TRIES - 1):
            try:
                return self._wait(self._write(jobs))
            except _TRANSIENT:
                continue
        return self._wait(self._write(jobs))

    async def _write(self, jobs: list[Write]) -> list[Result]:
        conn = await self._connection()
        try:
            try:
                await conn.execute("BEGIN")
            except _UNREACHABLE:
                conn = await self._again()
                await conn.execute("BEGIN")
            try:
                out = await self._write_on(conn, jobs)
            except BaseException:
                with contextlib.suppress(*_UNREACHABLE):
                    await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
            return out
        except _UNREACHABLE:
            # Whatever state the connection is left in (a rollback that could not be sent), the
            # next batch starts on a new one.
            self._drop()
            raise

    async def _again(self) -> asyncpg.Connection:
        """A new connection at once, after the old one failed before anything was sent on it.

        This thread's loop runs only while it waits for a query, so a
        connection the server ended while idle (PostgreSQL restarted since
        its last use) looks open until it is used: without this, the first
        message after a restart was refused though the server was back.
        Nothing of the batch reached the server, so trying it once more on
        a new connection cannot store it twice.
        """
        self._drop()
        self._next_attempt = 0.0
        return await self._connection()

    async def _write_on(self, conn: asyncpg.Connection, jobs: list[Write]) -> list[Result]:
        """The batch's statements, inside the transaction ``_write`` began."""
        next_id = await self._take_ids(conn, jobs)
        out: list[Result] = []
        rows: list[tuple[Any, ...]] = []
        for job in jobs:
            if isinstance(job, Save):
                if rows:  # messages before the change are written before it (a /rmroom drops them)
                    await self._insert(conn, rows)
                    rows = []
                await write(conn, job.change)
                out.append((job, None))
                continue
            messages = []
            for d in job.drafts:
                msg_id = 0  # not kept: no id (a notice shown once, in the room's order)
                if d.keep:
                    msg_id = next_id[d.room]
                    next_id[d.room] += 1
                    rows.append((d.room, msg_id, d.kind.value, d.sender, d.sender_fp, d.recipient, d.text, d.time,
                                 d.sender_session))
                messages.append(d.message(msg_id))
            out.append((job, messages))
        if rows:
            await self._insert(conn, rows)
        return out

    @staticmethod
    async def _take_ids(conn: asyncpg.Connection, jobs: list[Write]) -> dict[str, int]:
        """Each room's first id for this transaction: its counter raised by
        the number of its messages here, the row locked until the commit."""
        counts: dict[str, int] = {}
        for job in jobs:
            if not isinstance(job, Save):
                for d in job.drafts:
                    if d.keep:
                        counts[d.room] = counts.get(d.room, 0) + 1
        if not counts:
            return {}
        rooms = sorted(counts)  # one locking order for every node: no deadlock
        rows = await conn.fetch(
            "INSERT INTO room_seq AS s (room, last)"
            " SELECT * FROM unnest($1::text[], $2::bigint[]) ORDER BY 1"
            " ON CONFLICT (room) DO UPDATE SET last = s.last + EXCLUDED.last RETURNING room, last",
            rooms, [counts[r] for r in rooms],
        )
        return {room: last - counts[room] + 1 for room, last in rows}

    @staticmethod
    async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        """All of a batch's messages in one statement, a column an array: one
        statement to plan and run, where executemany runs one per row."""
        await conn.execute(
            "INSERT INTO messages (room, id, kind, sender, sender_fp, recipient, text, time, sender_session)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
            " $7::text[], $8::float8[], $9::bigint[])",
            *map(list, zip(*rows, strict=True)),
        )

    # -------------------------------------------------------------- reads

    def _read_load(self, recent_per_room: int) -> Snapshot:
        return self._wait(self._load(recent_per_room))

    async def _load(self, recent_per_room: int) -> Snapshot:
        db = await self._connection()
        snap = Snapshot()
        # Each room's newest messages, by the (room, id) key: rooms come from their counters.
        # Not room "" (private messages are in no room's recent): it would read every one ever kept.
        rows = await db.fetch(
            f"SELECT m.{MESSAGE_COLUMNS.replace(', ', ', m.')} FROM room_seq r CROSS JOIN LATERAL"
            " (SELECT * FROM messages WHERE room = r.room AND recipient IS NULL ORDER BY id DESC LIMIT $1) m"
            " WHERE r.room <> '' ORDER BY m.room, m.id",
            recent_per_room,
        )
        for row in rows:
            snap.recent.setdefault(row[1], []).append(message(row))
        fill_state(snap, {part: await db.fetch(sql) for part, sql in STATE_QUERIES.items()})
        # where each room's order starts for the bus (a dropped room's counter stays: ids never repeat)
        snap.last_ids = dict(await db.fetch("SELECT room, last FROM room_seq"))
        return snap

    def _read_history(self, room: str, before_id: int | None, limit: int) -> list[Message]:
        rows = self._wait(self._fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = $1 AND recipient IS NULL"
            " AND id < $2 ORDER BY id DESC LIMIT $3",
            room, before_id if before_id is not None else 2**62, limit,
        ))
        return [message(r) for r in reversed(rows)]

    def _read_after(self, room: str, after_id: int, limit: int) -> list[Said]:
        rows = self._wait(self._fetch(
            f"SELECT {SAID_COLUMNS} FROM messages WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3",
            room, after_id, limit,
        ))
        return [said(r) for r in rows]

    def _read_last_ids(self) -> dict[str, int]:
        # the counters, not MAX(id): one row per room, and a room's counter
        # moves only when its transaction commits
        return dict(self._wait(self._fetch("SELECT room, last FROM room_seq")))

    def _read_audit_log(self, limit: int) -> list[AuditEntry]:
        rows = self._wait(self._fetch(
            "SELECT time, actor, actor_fp, action, target, detail FROM audit ORDER BY id DESC LIMIT $1", limit
        ))
        return [AuditEntry(*r) for r in reversed(rows)]

    async def _fetch(self, query: str, *args: Any) -> list[Any]:
        db = await self._connection()
        try:
            rows: list[Any] = await db.fetch(query, *args)
        except _UNREACHABLE:  # ended while idle (see _again); a read is safe to ask again
            rows = await (await self._again()).fetch(query, *args)
        return rows


def _reason(error: BaseException) -> str:
    """An error in a few words, on one line."""
    if isinstance(error, asyncio.TimeoutError):
        return "no answer (timed out)"
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
