"""One thread serving a store's queue in batches: the rules both databases share.

SQLite (the default) and PostgreSQL (the cluster) differ in how a
transaction is written, not in how work reaches it, so that part lives here
once:

Why a thread: the event loop must never wait on the database. Why one: a
single queue keeps every write, and every read, in the order the chat made
them, and the callbacks come back in commit order.

Batching without timers: the thread takes whatever queued up while its
previous commit ran and commits it as one transaction. Under light load a
message is committed alone and at once; under heavy load batches grow by
themselves.

Failures stay with their own record: a batch that fails is written again job
by job, each in its own transaction, so one bad change costs only its own
caller (who hears the error) and the rest are committed. Nothing a job does
can stop the thread: if it died, every later message would silently vanish.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sshchat.chat.message import Message
from sshchat.chat.store import AuditEntry, Ban, Change, Committed, Draft, Said, Saved, Snapshot
from sshchat.chat.telemetry import Buckets
from sshchat.store.jobs import Append, Job, Read, Result, Save, Write, failure, log_failures, run_callbacks

log = logging.getLogger("sshchat")

_STOP = object()


class BatchingStore:
    """The Store interface over a queue; a subclass writes and reads its database.

    A subclass provides ``_transaction`` (all of some writes, or raising,
    none), the ``_read_*`` queries, and starts ``_thread`` on
    ``_serve_forever``; ``_release`` lets go of what the thread leaves open.
    """

    _thread: threading.Thread  # the store thread, started by the subclass

    # Errors that are the database's or the disk's, not a fault of ours: logged without a traceback.
    _expected_errors: tuple[type[BaseException], ...] = (OSError,)

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        # With --metrics: seconds each batch's transaction took (written by the store thread only).
        self.commit_seconds: Buckets | None = None

    # ----------------------------------------------------------- interface

    def load(self, recent_per_room: int) -> Snapshot:
        future: Future[Any] = Future()
        self._queue.put(Read(functools.partial(self._read_load, recent_per_room), future))
        result: Snapshot = future.result()
        return result

    def append(self, drafts: list[Draft], done: Committed) -> None:
        self._queue.put(Append(drafts, done))

    def save(self, change: Change, done: Saved | None = None) -> None:
        self._queue.put(Save(change, done))

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        self._queue.put(Read(functools.partial(self._read_history, room, before_id, limit), done))

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        self._queue.put(Read(functools.partial(self._read_after, room, after_id, limit), done))

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        self._queue.put(Read(self._read_last_ids, done, dict))  # failed: no room is known to be behind

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        self._queue.put(Read(functools.partial(self._read_audit_log, limit), done))

    def outside_serial(self, done: Callable[[int | None], None]) -> None:
        self._queue.put(Read(self._read_outside_serial, done, _none))  # failed: None, the poll asks again

    def bans(self, done: Callable[[list[Ban] | None], None]) -> None:
        self._queue.put(Read(self._read_bans, done, _none))  # failed: None, never "no bans"

    def messages_after(self, room: str, after_id: int, limit: int) -> list[Said]:
        """``after`` for a caller without an event loop (``sshchat admin
        export``): blocks, and raises what the read raised, where ``after``
        would answer an empty list: an export must not end short in silence."""
        future: Future[Any] = Future()
        self._queue.put(Read(functools.partial(self._read_after, room, after_id, limit), future))
        result: list[Said] = future.result()
        return result

    def close(self) -> None:
        """Commit what is queued, stop the thread, then release the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._release()

    # ----------------------------------------------- what a database provides

    def _transaction(self, jobs: list[Write]) -> list[Result]:
        """Write ``jobs`` in one transaction: all of them, or (raising) none."""
        raise NotImplementedError

    def _retry_alone(self, error: Exception) -> bool:
        """Whether a batch that failed with ``error`` is tried again job by job
        (yes, unless the error says the database itself is out of reach)."""
        return True

    def _release(self) -> None:
        """Once the thread has returned: close what it leaves open (nothing, by default)."""

    def _read_load(self, recent_per_room: int) -> Snapshot:
        raise NotImplementedError

    def _read_history(self, room: str, before_id: int | None, limit: int) -> list[Message]:
        raise NotImplementedError

    def _read_after(self, room: str, after_id: int, limit: int) -> list[Said]:
        raise NotImplementedError

    def _read_last_ids(self) -> dict[str, int]:
        raise NotImplementedError

    def _read_audit_log(self, limit: int) -> list[AuditEntry]:
        raise NotImplementedError

    def _read_outside_serial(self) -> int:
        raise NotImplementedError

    def _read_bans(self) -> list[Ban]:
        raise NotImplementedError

    # ------------------------------------------------------------- thread

    def _serve_forever(self) -> None:
        """Serve batches until close(); the store thread's body."""
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
            results: list[Result] = []
            try:
                self._serve(jobs, results)
            except Exception as e:  # a fault of ours: the thread outlives it, and every caller hears of it
                log.exception("store: a batch of %d jobs failed", len(jobs))
                answered = {id(job) for job, _ in results}
                results.extend((job, failure(job, e)) for job in jobs if id(job) not in answered)
            try:
                self._call_back(results)
            except Exception:
                log.exception("store: answering a batch failed")
            del jobs, results  # not kept while waiting: they hold callbacks, and through them ended sessions

    def _serve(self, jobs: list[Job], results: list[Result]) -> None:
        """Writes in one transaction; a read first commits the writes before it."""
        pending: list[Write] = []
        for job in jobs:
            if not isinstance(job, Read):
                pending.append(job)
                continue
            self._commit(pending, results)
            pending = []
            try:
                value = job.read()
            except Exception as e:  # a read error must not kill the thread
                log.error("store read failed: %s", e)
                value = failure(job, e)
            results.append((job, value))
        self._commit(pending, results)

    def _commit(self, jobs: list[Write], results: list[Result]) -> None:
        """Commit ``jobs`` as one transaction; if that fails, each alone.

        So one bad record (a change that cannot be written, a message the
        database refuses) fails only its own caller, and the records queued
        with it are kept. With the disk full every one fails, each told so.
        """
        if not jobs:
            return
        timing = self.commit_seconds
        started = time.perf_counter()
        try:
            results.extend(self._transaction(jobs))
            if timing is not None:
                timing.observe(time.perf_counter() - started)
            return
        except Exception as e:
            if len(jobs) == 1 or not self._retry_alone(e):
                log_failures([(job, e) for job in jobs], len(jobs), self._expected_errors)
                results.extend((job, failure(job, e)) for job in jobs)
                return
        failed: list[tuple[Write, Exception]] = []
        for job in jobs:
            try:
                results.extend(self._transaction([job]))
            except Exception as e:
                failed.append((job, e))
                results.append((job, failure(job, e)))
        log_failures(failed, len(jobs), self._expected_errors)

    def _call_back(self, results: list[Result]) -> None:
        """Answer each job: a blocked ``load`` here, the rest on the event loop."""
        callbacks: list[tuple[Callable[[Any], None], Any]] = []
        for job, value in results:
            if isinstance(job, Read) and isinstance(job.done, Future):
                if isinstance(value, BaseException):
                    job.done.set_exception(value)
                else:
                    job.done.set_result(value)
            elif job.done is not None and not isinstance(job.done, Future):
                callbacks.append((job.done, value))
        if not callbacks:
            return
        loop = self._loop
        if loop is None:
            run_callbacks(callbacks)
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: shutting down
            loop.call_soon_threadsafe(run_callbacks, callbacks)


def _none() -> None:
    """What a read that failed answers when its caller must tell a failure from an answer."""
    return None
