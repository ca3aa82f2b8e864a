"""The embedded default store: SQLite in WAL mode, written from one thread.

Why a thread: the event loop must never wait on the disk. Why one: SQLite
takes one writer at a time anyway, and a single queue keeps every write,
and every read, in the order the chat made them.

Batching without timers: the thread takes whatever queued up while its
previous commit ran and commits it as one transaction. Under light load a
message is committed alone and at once; under heavy load batches grow by
themselves. WAL with synchronous=NORMAL keeps every committed transaction
across a killed process (not across a power cut).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sshchat.chat.message import Kind, Message
from sshchat.chat.names import name_key
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import (
    AuditEntry,
    Ban,
    Binding,
    Change,
    Committed,
    Draft,
    Mute,
    Snapshot,
)
from sshchat.store.schema import MIGRATIONS

log = logging.getLogger("sshchat")

_MESSAGE_COLUMNS = "id, room, kind, sender, text, time, recipient"
_STOP = object()


class StoreError(Exception):
    """The database cannot be used; ``str()`` says which and why."""


def _message(row: tuple[Any, ...]) -> Message:
    return Message(row[0], row[1], Kind(row[2]), row[3], row[4], row[5], row[6])


def _hold(path: str, wait: float) -> int | None:
    """One server per database file: an flock on it for the server's life.

    Two servers on one file would each keep their own rooms, names and
    limits in memory and write beside each other. flock does not touch the
    POSIX locks SQLite takes, so readers (the sqlite3 shell, a hot backup)
    still work while the server runs. Returns the descriptor that holds it
    (None for an in-memory database).
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
                raise StoreError(
                    f"cannot use database {path}: another process holds it (another sshchat server?)"
                ) from None
            time.sleep(0.05)
        except OSError as e:  # a file system without flock: go on unguarded rather than not at all
            log.warning("database %s: cannot lock it (%s); not guarded against a second server", path, e.strerror)
            return fd


class SQLiteStore:
    """The Store interface on one SQLite file, served by one thread."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop | None = None, wait: float = 5.0) -> None:
        """Open (or create) the file for this server alone: ``wait`` seconds
        for another server to let go of it (a restart), then refuse."""
        self.path = path
        self._loop = loop
        self._hold = _hold(path, wait)
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as e:
            if getattr(self, "_db", None) is not None:
                self._db.close()
            if self._hold is not None:  # after the connection: see close()
                os.close(self._hold)
            raise StoreError(f"cannot use database {path}: {e}") from None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sshchat-store", daemon=True)
        self._thread.start()
        self._closed = False

    # ----------------------------------------------------------- interface

    def load(self, recent_per_room: int) -> Snapshot:
        future: Future[Snapshot] = Future()
        self._queue.put(("load", recent_per_room, future))
        return future.result()

    def append(self, drafts: list[Draft], done: Committed) -> None:
        self._queue.put(("append", drafts, done))

    def save(self, change: Change) -> None:
        self._queue.put(("save", change, None))

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        self._queue.put(("history", (room, before_id, limit), done))

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        self._queue.put(("audit_log", limit, done))

    def close(self) -> None:
        """Commit what is queued, stop the thread, close the file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._db.close()
        if self._hold is not None:  # only now: closing any descriptor of the file drops SQLite's locks on it
            os.close(self._hold)

    # ------------------------------------------------------------- schema

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this sshchat knows ({len(MIGRATIONS)})"
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

    # ------------------------------------------------------------- thread

    def _run(self) -> None:
        stop = False
        while not stop:
            jobs = [self._queue.get()]
            while True:  # take everything that queued up meanwhile
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in jobs:
                jobs = jobs[: jobs.index(_STOP)]
                stop = True
            self._serve(jobs)
            del jobs  # not kept while waiting: a served batch holds callbacks, and through them ended sessions

    def _serve(self, jobs: list[Any]) -> None:
        """Writes in one transaction; a read first commits the writes before it."""
        results: list[tuple[Callable[[Any], None], Any]] = []
        pending: list[tuple[str, Any, Any]] = []
        for job in jobs:
            if job[0] in ("append", "save"):
                pending.append(job)
                continue
            self._commit(pending, results)
            pending = []
            kind, arg, done = job
            try:
                value = getattr(self, "_read_" + kind)(arg)
            except Exception as e:  # a read error must not kill the thread
                log.error("store read failed: %s", e)
                value = e if kind == "load" else []
            if isinstance(done, Future):
                done.set_exception(value) if isinstance(value, Exception) else done.set_result(value)
            else:
                results.append((done, value))
        self._commit(pending, results)
        if results:
            self._call_back(results)

    def _commit(self, jobs: list[tuple[str, Any, Any]], results: list[tuple[Callable[[Any], None], Any]]) -> None:
        if not jobs:
            return
        db = self._db
        outcomes: list[tuple[Committed, list[Message], bool]] = []
        try:
            db.execute("BEGIN")
            for kind, arg, done in jobs:
                if kind == "save":
                    _WRITERS[arg.what](db, arg.record)
                    continue
                messages = []
                for d in arg:
                    msg_id = 0  # not kept: no id (a notice shown once, in the room's order)
                    if d.keep:
                        row_id = db.execute(
                            "INSERT INTO messages (room, kind, sender, sender_fp, recipient, text, time)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (d.room, d.kind.value, d.sender, d.sender_fp, d.recipient, d.text, d.time),
                        ).lastrowid
                        assert row_id is not None  # an INSERT into a rowid table always gives one
                        msg_id = row_id
                    messages.append(d.message(msg_id))
                outcomes.append((done, messages, any(d.keep for d in arg)))
            db.execute("COMMIT")
        except sqlite3.Error as e:
            log.error("store write failed, %d jobs not saved: %s", len(jobs), e)
            if db.in_transaction:
                db.execute("ROLLBACK")
            error = OSError(f"could not save: {e}")
            outcomes = []
            for kind, arg, done in jobs:
                if kind == "append":
                    kept = any(d.keep for d in arg)
                    notices = [
                        d.message(0) for d in arg
                    ]
                    outcomes.append((done, notices, kept))
            results.extend((done, error if kept else msgs) for done, msgs, kept in outcomes)
            return
        results.extend((done, msgs) for done, msgs, _ in outcomes)

    def _call_back(self, results: list[tuple[Callable[[Any], None], Any]]) -> None:
        loop = self._loop
        if loop is None:
            for done, value in results:
                done(value)
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: shutting down
            loop.call_soon_threadsafe(_run_callbacks, results)

    # -------------------------------------------------------------- reads

    def _read_load(self, recent_per_room: int) -> Snapshot:
        db = self._db
        snap = Snapshot()
        rooms = [r for (r,) in db.execute("SELECT DISTINCT room FROM messages")]
        for room in rooms:
            rows = db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL"
                " ORDER BY id DESC LIMIT ?",
                (room, recent_per_room),
            ).fetchall()
            snap.recent[room] = [_message(r) for r in reversed(rows)]
        for key, name, fp, t in db.execute("SELECT name_key, name, fingerprint, time FROM names"):
            snap.bindings[key] = Binding(name, fp, t)
        snap.operators = dict(db.execute("SELECT fingerprint, granted_by FROM operators"))
        snap.bans = [Ban(*row) for row in db.execute(
            "SELECT kind, value, until, reason, by, time FROM bans")]
        snap.mutes = [Mute(*row) for row in db.execute(
            "SELECT target, until, reason, by, time FROM mutes")]
        snap.allowed = {fp for (fp,) in db.execute("SELECT fingerprint FROM allowlist")}
        row = db.execute("SELECT value FROM settings WHERE key = 'motd'").fetchone()
        snap.motd = row[0] if row else None
        snap.rooms = [RoomInfo(*row) for row in db.execute(
            "SELECT name, topic, creator, creator_fp, created FROM rooms")]
        for who, room, current in db.execute(
            "SELECT who, room, current FROM memberships ORDER BY who, time"
        ):
            snap.memberships.setdefault(who, []).append((room, bool(current)))
        snap.prefs = dict(db.execute("SELECT fingerprint, data FROM prefs"))
        return snap

    def _read_history(self, arg: tuple[str, int | None, int]) -> list[Message]:
        room, before_id, limit = arg
        rows = self._db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL"
            " AND id < ? ORDER BY id DESC LIMIT ?",
            (room, before_id if before_id is not None else 2**62, limit),
        ).fetchall()
        return [_message(r) for r in reversed(rows)]

    def _read_audit_log(self, limit: int) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT time, actor, actor_fp, action, target, detail FROM audit"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [AuditEntry(*r) for r in reversed(rows)]


def _run_callbacks(results: list[tuple[Callable[[Any], None], Any]]) -> None:
    for done, value in results:
        try:
            done(value)
        except Exception:  # one failing callback must not stop the others
            log.exception("error delivering a committed batch")


def _set_memberships(db: sqlite3.Connection, who: str, rooms: list[tuple[str, bool]]) -> None:
    """Replace ``who``'s rooms; ``time`` keeps their order."""
    db.execute("DELETE FROM memberships WHERE who = ?", (who,))
    db.executemany(
        "INSERT INTO memberships VALUES (?, ?, ?, ?)",
        [(who, room, int(current), order) for order, (room, current) in enumerate(rooms)],
    )


# How each kind of state change is written.
_WRITERS: dict[str, Callable[[sqlite3.Connection, Any], object]] = {
    "bind": lambda db, b: db.execute(
        "INSERT OR REPLACE INTO names VALUES (?, ?, ?, ?)",
        (name_key(b.name), b.name, b.fingerprint, b.time)),
    "unbind": lambda db, key: db.execute("DELETE FROM names WHERE name_key = ?", (key,)),
    "op": lambda db, r: db.execute(
        "INSERT OR REPLACE INTO operators VALUES (?, ?, strftime('%s','now'))", r),
    "deop": lambda db, fp: db.execute("DELETE FROM operators WHERE fingerprint = ?", (fp,)),
    "ban": lambda db, b: db.execute(
        "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?)",
        (b.kind, b.value, b.until, b.reason, b.by, b.time)),
    "unban": lambda db, r: db.execute("DELETE FROM bans WHERE kind = ? AND value = ?", r),
    "mute": lambda db, m: db.execute(
        "INSERT OR REPLACE INTO mutes VALUES (?, ?, ?, ?, ?)",
        (m.target, m.until, m.reason, m.by, m.time)),
    "unmute": lambda db, t: db.execute("DELETE FROM mutes WHERE target = ?", (t,)),
    "allow": lambda db, r: db.execute(
        "INSERT OR REPLACE INTO allowlist VALUES (?, ?, strftime('%s','now'))", r),
    "disallow": lambda db, fp: db.execute("DELETE FROM allowlist WHERE fingerprint = ?", (fp,)),
    "motd": lambda db, text: db.execute(
        "INSERT OR REPLACE INTO settings VALUES ('motd', ?)", (text,))
    if text is not None else db.execute("DELETE FROM settings WHERE key = 'motd'"),
    "room": lambda db, r: db.execute(
        "INSERT OR REPLACE INTO rooms VALUES (?, ?, ?, ?, ?, ?)",
        (r.key, r.name, r.topic, r.creator, r.creator_fp, r.created)),
    "memberships": lambda db, r: _set_memberships(db, *r),
    "prefs": lambda db, r: db.execute("INSERT OR REPLACE INTO prefs VALUES (?, ?)", r),
    "audit": lambda db, a: db.execute(
        "INSERT INTO audit (time, actor, actor_fp, action, target, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (a.time, a.actor, a.actor_fp, a.action, a.target, a.detail)),
}
