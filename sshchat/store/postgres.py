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
rolls its increment back: no holes. A batch of messages is one statement,
one round trip (pg_commit.py): the counters are held only for its insert
and its commit.

A connection lost while a commit's answer was on its way leaves the batch
maybe committed: the store learns which on a new connection (``_settle``,
from ``store_writes``) and tells the sender the truth; a batch known not to
be committed is sent once more.

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
import os
import threading
import time
import urllib.parse
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg

from sshchat.chat.message import Message
from sshchat.chat.store import AuditEntry, Ban, OutcomeUnknown, Said, Snapshot
from sshchat.store.batching import BatchingStore
from sshchat.store.errors import StoreError, StoreUnreachable
from sshchat.store.jobs import Append, Read, Result, Save, Write
from sshchat.store.pg_commit import COMMIT_MESSAGES, INSERT_NUMBERED, MARK, OUTCOME, TAKE_IDS, Plan, plan, results
from sshchat.store.pg_schema import MIGRATION_LOCK, MIGRATIONS
from sshchat.store.pg_writers import write
from sshchat.store.reading import (
    MESSAGE_COLUMNS,
    OUTSIDE_SERIAL,
    SAID_COLUMNS,
    STATE_QUERIES,
    fill_state,
    message,
    said,
)

log = logging.getLogger("sshchat")

_T = TypeVar("_T")
_CONNECT_TIMEOUT = 2.0  # one attempt to open a connection
_COMMAND_TIMEOUT = 10.0  # a statement the server does not answer: fail it (its callers are told)
_RECONNECT_EVERY = 1.0  # while the server is down, one connection attempt a second, not one per batch
_MIGRATION_WAIT = 120.0  # for another node's schema upgrade to finish
_TRANSIENT_TRIES = 3
_SETTLE_GRACE = 1.0  # a commit in doubt: how long the old backend may take to end by itself...
_SETTLE_WAIT = 3.0  # ...and to learn its outcome at all
_SETTLE_POLL = 0.02
_KEEP_WRITES = 7 * 86400.0  # seconds a stopped store's row of store_writes is kept (a crashed node's stays)

# This store's old backend, still running (not the connection asking): $1 its pid, $2 our application_name.
_BACKEND_RUNS = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND application_name = $2" \
    " AND pid <> pg_backend_pid()"
_TERMINATE = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND application_name = $2" \
    " AND pid <> pg_backend_pid()"
# The rooms whose counter changed in a transaction at or after $1, and the oldest transaction still running
# (from the same snapshot): every transaction below it has ended, and what it changed is in this answer.
_CHANGED_SINCE = "SELECT txid_snapshot_xmin(txid_current_snapshot()), array_agg(room), array_agg(last)" \
    " FROM room_seq WHERE changed >= $1"
# Other sshchat stores (nodes, or another sshchat admin) connected to this database now.
_OTHERS = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'sshchat %'" \
    " AND pid <> pg_backend_pid()"
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


class InDoubt(OutcomeUnknown):
    """A batch whose commit's answer was lost, and its outcome could not be learned."""


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

    def __init__(
        self, url: str, loop: asyncio.AbstractEventLoop | None = None, wait: float = 5.0, *, beside: bool = False
    ) -> None:
        """Connect (retrying for ``wait`` seconds), bring the schema up to date,
        and serve. Blocks until then: a server must not start on a database it
        cannot use.

        ``beside``: opened by ``sshchat admin``, which must not upgrade the
        schema under running nodes (an upgrade is theirs to make as they start)."""
        super().__init__(loop)
        self._beside = beside
        self.url = url
        self.where = redacted(url)
        self._io = asyncio.new_event_loop()  # run only on the store thread
        self._conn: asyncpg.Connection | None = None
        self._next_attempt = 0.0
        # Who this store is in store_writes and pg_stat_activity (application_name: at most 63 bytes).
        self._writer = os.urandom(8).hex()
        self._name = f"sshchat {self._writer}"
        self._batches = 0  # batches sent: the number of the last one is in store_writes once committed
        self._swept = 0  # the oldest transaction running at the last read of last_ids (see _read_last_ids)
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
                    # every batch of this store is answered: its row in store_writes has no more use
                    self._wait(self._conn.execute("DELETE FROM store_writes WHERE writer = $1", self._writer))
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
            # the rows of stores long gone (a node killed cannot remove its own)
            await conn.execute(
                "DELETE FROM store_writes WHERE time < extract(epoch from now()) - $1", _KEEP_WRITES
            )
        except BaseException:
            await conn.close(timeout=_CONNECT_TIMEOUT)
            raise
        return conn

    async def _connect(self, timeout: float) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.url, timeout=timeout, command_timeout=_COMMAND_TIMEOUT,
            server_settings={"application_name": self._name},
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
                if self._beside and version < len(MIGRATIONS) and await conn.fetchval(_OTHERS):
                    raise StoreError(
                        f"cannot use database {self.where}: schema version {version} is older than this"
                        f" sshchat's ({len(MIGRATIONS)}), and sshchat nodes are connected to it: stop them"
                        " (the newer sshchat serve upgrades it as it starts), then try again"
                    )
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
        way (a batch whose commit was in doubt was settled by ``_write``)."""
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
        """Commit the batch and answer with the truth, even when the connection
        is lost while the commit's answer is on its way.

        Then the batch may have been committed or not; saying "not saved"
        when it was would show others a line its sender was told was lost.
        ``_settle`` learns which on a new connection. Not committed, the
        batch is tried once more on that connection (it cannot be stored
        twice: it is known not to be); the first use of a connection the
        server ended while idle (PostgreSQL restarted since) fails so, and
        the message is kept, not refused, once the server is back.
        """
        work = plan(jobs)
        if not work.counts and not work.changes:
            return results(jobs, {})  # notices only: nothing to keep
        lost: BaseException | None = None
        for _ in range(2):
            conn = await self._connection()
            self._batches += 1
            batch = self._batches
            try:
                if work.changes:
                    return await self._in_transaction(conn, jobs, work, batch)
                return results(jobs, work.firsts(await self._one_statement(conn, work, batch)))
            except _UNREACHABLE as e:
                lost = e
                pid = conn.get_server_pid()
                self._drop()
            settled = await self._settle(pid, batch, lost)
            if settled is not None:
                log.warning("database %s: the connection was lost as a batch committed; it was saved", self.where)
                return results(jobs, work.firsts(settled))
        assert lost is not None
        raise lost

    async def _one_statement(self, conn: asyncpg.Connection, work: Plan, batch: int) -> dict[str, int]:
        """A batch of messages alone: one statement, one round trip (pg_commit.py)."""
        rooms = work.rooms
        rows = await conn.fetch(
            COMMIT_MESSAGES, rooms, [work.counts[r] for r in rooms], *work.columns(), self._writer, batch
        )
        return {room: last for room, last in rows}

    async def _in_transaction(
        self, conn: asyncpg.Connection, jobs: list[Write], work: Plan, batch: int
    ) -> list[Result]:
        """A batch with state changes: one explicit transaction, the changes and
        the messages in the batch's order (a /rmroom drops what was said before it).
        Answers what each job's caller hears: the messages numbered here, not
        built a second time by the caller (a join's SetMemberships puts many
        a busy batch on this path)."""
        await conn.execute("BEGIN")
        try:
            lasts: dict[str, int] = {}
            if work.counts:
                rooms = work.rooms
                lasts = {r: last for r, last in await conn.fetch(TAKE_IDS, rooms, [work.counts[r] for r in rooms])}
            rows: list[tuple[Any, ...]] = []
            out = results(jobs, work.firsts(lasts))
            for job, value in out:
                if isinstance(job, Save):
                    if rows:  # messages before the change are written before it
                        await self._insert(conn, rows)
                        rows = []
                    await write(conn, job.change)
                    continue
                assert isinstance(job, Append)
                for d, m in zip(job.drafts, value, strict=True):
                    if d.keep:
                        rows.append((d.room, m.id, d.kind.value, d.sender, d.sender_fp, d.recipient, d.text, d.time,
                                     d.sender_session))
            if rows:
                await self._insert(conn, rows)
            await conn.execute(MARK, self._writer, batch, list(lasts), list(lasts.values()))
        except BaseException:
            with contextlib.suppress(*_UNREACHABLE):
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        return out

    @staticmethod
    async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Numbered messages in one statement, a column an array: one statement
        to plan and run, where executemany runs one per row."""
        await conn.execute(INSERT_NUMBERED, *map(list, zip(*rows, strict=True)))

    async def _again(self) -> asyncpg.Connection:
        """A new connection at once, after the old one failed a read.

        This thread's loop runs only while it waits for a query, so a
        connection the server ended while idle (PostgreSQL restarted since
        its last use) looks open until it is used. A read is safe to ask
        again.
        """
        self._drop()
        self._next_attempt = 0.0
        return await self._connection()

    async def _settle(self, pid: int, batch: int, lost: BaseException) -> dict[str, int] | None:
        """Whether ``batch``, sent on the connection to backend ``pid`` just
        lost, was committed: its room counters if so, None if not.

        Asked on a new connection (kept for what follows). The old backend may
        still be running the batch (waiting for a lock, or for its commit to
        reach the disk), and could commit it after any answer read now; so
        first it must be gone: given ``_SETTLE_GRACE`` to end by itself (a
        backend that has begun its commit completes it), then terminated
        (one that has not is rolled back). Then ``store_writes``, written in
        the batch's own transaction, holds the truth. If the server cannot
        be asked within ``_SETTLE_WAIT``, InDoubt: the sender hears that
        whether it was kept is unknown, not that it was lost.
        """
        deadline = time.monotonic() + _SETTLE_WAIT
        grace = time.monotonic() + _SETTLE_GRACE
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect(max(0.1, min(_CONNECT_TIMEOUT, deadline - time.monotonic())))
                while await conn.fetchval(_BACKEND_RUNS, pid, self._name):
                    if time.monotonic() >= deadline:
                        break
                    if time.monotonic() >= grace:
                        with contextlib.suppress(asyncpg.PostgresError):
                            await conn.fetchval(_TERMINATE, pid, self._name)
                    await asyncio.sleep(_SETTLE_POLL)
                else:
                    row = await conn.fetchrow(OUTCOME, self._writer)
                    self._conn, self._next_attempt = conn, 0.0
                    break
                conn.terminate()  # the old backend outlived the deadline
            except _UNREACHABLE:
                if conn is not None:
                    conn.terminate()
                if time.monotonic() + _SETTLE_POLL * 10 < deadline:
                    await asyncio.sleep(_SETTLE_POLL * 10)
                    continue
            self._next_attempt = time.monotonic() + _RECONNECT_EVERY
            raise InDoubt(
                f"the connection to database {self.where} was lost as it committed ({_reason(lost)}),"
                " and whether it was kept could not be learned"
            ) from lost
        if row is None or row["batch"] != batch:
            return None
        return dict(zip(row["rooms"], row["lasts"], strict=True))

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
        # the counter first: a ban lifted after it is read is found by the next poll (chat/outside.py)
        snap.outside_serial = int(await db.fetchval(OUTSIDE_SERIAL) or 0)
        fill_state(snap, {part: await db.fetch(sql) for part, sql in STATE_QUERIES.items()})
        # where each room's order starts for the bus (a dropped room's counter stays: ids never repeat)
        snap.last_ids = await self._changed_since(0)
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
        """The rooms whose counter changed since the previous call (or ``load``).

        The bus's sweep asks every 2 s; reading every room's counter made its
        cost grow with the rooms ever made, most of them long silent. Each
        counter raise records its transaction's id (``changed``, indexed);
        each read keeps the oldest transaction then still running, and the
        next read takes every row changed by it or later. A transaction that
        took its id before a read but committed after it is therefore still
        found (a timestamp or a sequence, taken before the commit, would miss
        it). The counters, not MAX(id): a room's counter moves only when its
        transaction commits.
        """
        return self._wait(self._changed_since(self._swept))

    async def _changed_since(self, since: int) -> dict[str, int]:
        """Rooms' last ids changed at or after transaction ``since``; moves the mark on."""
        ((horizon, rooms, lasts),) = await self._fetch(_CHANGED_SINCE, since)  # (an aggregate: one row)
        self._swept = max(self._swept, horizon)
        return dict(zip(rooms, lasts, strict=True)) if rooms is not None else {}

    def _read_audit_log(self, limit: int) -> list[AuditEntry]:
        rows = self._wait(self._fetch(
            "SELECT time, actor, actor_fp, action, target, detail FROM audit ORDER BY id DESC LIMIT $1", limit
        ))
        return [AuditEntry(*r) for r in reversed(rows)]

    def _read_outside_serial(self) -> int:
        rows = self._wait(self._fetch(OUTSIDE_SERIAL))
        return int(rows[0][0]) if rows else 0

    def _read_bans(self) -> list[Ban]:
        return [Ban(*row) for row in self._wait(self._fetch(STATE_QUERIES["bans"]))]

    def others_connected(self) -> int:
        """How many other sshchat stores are connected to the database now
        (blocks): ``sshchat admin`` tells whether nodes are running, whose
        memory its changes reach only at their restart."""
        future: Future[Any] = Future()
        self._queue.put(Read(lambda: self._wait(self._fetch(_OTHERS))[0][0], future))
        count: int = future.result()
        return count

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
