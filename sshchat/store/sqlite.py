"""The embedded default store: SQLite in WAL mode, written from one thread.

The thread, its batches without timers and the rule that a failure stays
with its own record are batching.py's (shared with PostgreSQL); here is how
SQLite writes and reads. One thread suits SQLite, which takes one writer at
a time anyway. WAL with synchronous=NORMAL keeps every committed transaction
across a killed process (not across a power cut).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time

from sshchat.chat.message import Message
from sshchat.chat.store import AuditEntry, Ban, Draft, Said, Snapshot
from sshchat.store.batching import BatchingStore
from sshchat.store.errors import StoreError
from sshchat.store.jobs import Result, Save, Write
from sshchat.store.reading import (
    MESSAGE_COLUMNS,
    OUTSIDE_SERIAL,
    SAID_COLUMNS,
    STATE_QUERIES,
    fill_state,
    message,
    said,
)
from sshchat.store.schema import MIGRATIONS
from sshchat.store.writers import write

log = logging.getLogger("sshchat")

__all__ = ["MIGRATIONS", "SQLiteStore", "StoreError"]


def _hold(path: str, wait: float, busy_ok: bool = False) -> int | None:
    """One server per database file: an flock on it for the server's life.

    Two servers on one file would each keep their own rooms, names and
    limits in memory and write beside each other. flock does not touch the
    POSIX locks SQLite takes, so readers (the sqlite3 shell, a hot backup)
    still work while the server runs. Returns the descriptor that holds it
    (None for an in-memory database, or, with ``busy_ok``, when another
    process holds it).
    """
    if path in ("", ":memory:") or path.startswith("file:"):
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise StoreError(f"cannot use database {path}: {e.strerror}") from None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                if busy_ok:
                    return None
                raise StoreError(
                    f"cannot use database {path}: another process holds it (another sshchat server?)"
                ) from None
            time.sleep(0.05)
        except OSError as e:  # a file system without flock: go on unguarded rather than not at all
            log.warning("database %s: cannot lock it (%s); not guarded against a second server", path, e.strerror)
            return fd


class SQLiteStore(BatchingStore):
    """The Store interface on one SQLite file, served by one thread."""

    _expected_errors = (sqlite3.Error, OSError)

    def __init__(
        self, path: str, loop: asyncio.AbstractEventLoop | None = None, wait: float = 5.0, *, beside: bool = False
    ) -> None:
        """Open (or create) the file for this server alone: ``wait`` seconds
        for another server to let go of it (a restart), then refuse.

        ``beside``: opened by ``sshchat admin``, which works beside a running
        server. It holds the file only while it brings the schema up to date
        (when no server holds it), then lets go, so a server may start while
        it works; ``server_running`` says whether one held the file. Beside a
        running server, the schema must already be this sshchat's: an upgrade
        is the server's to make, at its start."""
        super().__init__(loop)
        self.path = path
        self.server_running = False
        if beside:
            self._hold = _hold(path, 0.0, busy_ok=True)
            self.server_running = self._hold is None and path not in ("", ":memory:")
        else:
            self._hold = _hold(path, wait)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate(upgrade=not self.server_running)
            if beside and self._hold is not None:
                fcntl.flock(self._hold, fcntl.LOCK_UN)  # let a server start; the descriptor closes after the connection
        except sqlite3.Error as e:
            if getattr(self, "_db", None) is not None:
                self._db.close()
            if self._hold is not None:  # after the connection: see close()
                os.close(self._hold)
            raise StoreError(f"cannot use database {path}: {e}") from None
        self._thread = threading.Thread(target=self._serve_forever, name="sshchat-store", daemon=True)
        self._thread.start()

    def _release(self) -> None:
        """Close the file (close() calls it once the thread has committed all and returned)."""
        self._db.close()
        if self._hold is not None:  # only now: closing any descriptor of the file drops SQLite's locks on it
            os.close(self._hold)

    # ------------------------------------------------------------- schema

    def _migrate(self, upgrade: bool = True) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this sshchat knows ({len(MIGRATIONS)})"
            )
        if not upgrade and version < len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is older than this sshchat's ({len(MIGRATIONS)}), and a server is"
                " running on it: stop it (the newer sshchat serve upgrades the file as it starts), then try again"
            )
        for number in range(version, len(MIGRATIONS)):
            self._db.execute("BEGIN")
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {number + 1}")
            self._db.execute("COMMIT")
        if version < len(MIGRATIONS):
            log.info("database %s: schema version %d -> %d", self.path, version, len(MIGRATIONS))

    # ------------------------------------------------------------- writes

    def _transaction(self, jobs: list[Write]) -> list[Result]:
        """Write ``jobs`` in one transaction: all of them, or (raising) none."""
        db = self._db
        if db.in_transaction:  # left open by a rollback that failed
            db.execute("ROLLBACK")
        db.execute("BEGIN")
        try:
            out: list[Result] = []
            for job in jobs:
                if isinstance(job, Save):
                    write(db, job.change)
                    out.append((job, None))
                else:
                    out.append((job, self._insert(job.drafts)))
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                if db.in_transaction:
                    db.execute("ROLLBACK")
            raise
        return out

    def _insert(self, drafts: list[Draft]) -> list[Message]:
        messages = []
        for d in drafts:
            msg_id = 0  # not kept: no id (a notice shown once, in the room's order)
            if d.keep:
                row_id = self._db.execute(
                    "INSERT INTO messages (room, kind, sender, sender_fp, recipient, text, time, sender_session)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (d.room, d.kind.value, d.sender, d.sender_fp, d.recipient, d.text, d.time, d.sender_session),
                ).lastrowid
                assert row_id is not None  # an INSERT into a rowid table always gives one
                msg_id = row_id
            messages.append(d.message(msg_id))
        return messages

    # -------------------------------------------------------------- reads

    def _read_load(self, recent_per_room: int) -> Snapshot:
        db = self._db
        snap = Snapshot()
        snap.last_ids = self._read_last_ids()
        # Not room "": private messages are in no room's recent, and asking for its
        # room messages would step through every private message ever kept.
        for room in [r for r in snap.last_ids if r != ""]:
            rows = db.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL"
                " ORDER BY id DESC LIMIT ?",
                (room, recent_per_room),
            ).fetchall()
            snap.recent[room] = [message(r) for r in reversed(rows)]
        # the counter first: a ban lifted after it is read is found by the next poll (chat/outside.py)
        snap.outside_serial = self._read_outside_serial()
        fill_state(snap, {part: db.execute(sql).fetchall() for part, sql in STATE_QUERIES.items()})
        return snap

    def _read_last_ids(self) -> dict[str, int]:
        """Each room's highest id, in two index lookups a room.

        GROUP BY room (and SELECT DISTINCT room) read the whole index, every
        message ever kept: 1.4 s at start for 2 million messages. Stepping from
        each room to the next (MIN(room) > the last) reads a few index pages
        per room, whatever the history's size (2 ms)."""
        return dict(self._db.execute(
            "WITH RECURSIVE r(room) AS (SELECT (SELECT MIN(room) FROM messages) UNION ALL"
            " SELECT (SELECT MIN(room) FROM messages WHERE room > r.room) FROM r WHERE r.room IS NOT NULL)"
            " SELECT room, (SELECT MAX(id) FROM messages WHERE room = r.room) FROM r WHERE room IS NOT NULL"
        ))

    def _read_history(self, room: str, before_id: int | None, limit: int) -> list[Message]:
        rows = self._db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL"
            " AND id < ? ORDER BY id DESC LIMIT ?",
            (room, before_id if before_id is not None else 2**62, limit),
        ).fetchall()
        return [message(r) for r in reversed(rows)]

    def _read_after(self, room: str, after_id: int, limit: int) -> list[Said]:
        private = "IS NOT NULL" if room == "" else "IS NULL"
        rows = self._db.execute(
            f"SELECT {SAID_COLUMNS} FROM messages WHERE room = ? AND recipient {private}"
            " AND id > ? ORDER BY id LIMIT ?",
            (room, after_id, limit),
        ).fetchall()
        return [said(r) for r in rows]

    def _read_audit_log(self, limit: int) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT time, actor, actor_fp, action, target, detail FROM audit"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [AuditEntry(*r) for r in reversed(rows)]

    def _read_outside_serial(self) -> int:
        row = self._db.execute(OUTSIDE_SERIAL).fetchone()
        return int(row[0]) if row else 0

    def _read_bans(self) -> list[Ban]:
        return [Ban(*row) for row in self._db.execute(STATE_QUERIES["bans"])]
