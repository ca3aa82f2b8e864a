"""The store thread's work, as typed jobs, and what a caller is told when one fails.

Kept apart from batching.py so that the thread there reads as what it does:
take a batch, commit it (or each job alone), answer every caller once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sshchat.chat.store import Change, Committed, Draft, OutcomeUnknown, Saved

log = logging.getLogger("sshchat")


@dataclass(eq=False)
class Append:
    """Messages to number and commit; ``done`` hears them, or the error."""

    drafts: list[Draft]
    done: Committed


@dataclass(eq=False)
class Save:
    """A state change to write; ``done`` (if any) hears None, or the error."""

    change: Change
    done: Saved | None


@dataclass(eq=False)
class Read:
    """A query, run after the writes queued before it are committed; ``done``
    is a Future only for ``load``, which blocks the caller until start-up."""

    read: Callable[[], Any]
    done: Callable[[Any], None] | Future[Any]
    empty: Callable[[], Any] = list  # what the caller hears if the read fails: an answer of its own type


Write = Append | Save
Job = Append | Save | Read
Result = tuple[Job, Any]  # a job and what its caller is told


def log_failures(failed: list[tuple[Write, Exception]], batch: int, expected: tuple[type[BaseException], ...]) -> None:
    """One line for the writes of a batch that were not saved (not one per
    write: with the disk full, that would be a line per message); a traceback
    for an error that is a fault of ours rather than of the disk (one not
    in ``expected``: the database's own errors, each store's ``_expected_errors``)."""
    if not failed:
        return
    kinds = sorted({type(j.change).__name__ if isinstance(j, Save) else "messages" for j, _ in failed})
    log.error(
        "store: %d of %d writes not saved (%s): %s", len(failed), batch, ", ".join(kinds), failed[0][1]
    )
    for job, error in failed:
        if not isinstance(error, expected):
            what = type(job.change).__name__ if isinstance(job, Save) else "messages"
            log.error("store: cannot write %s", what, exc_info=error)


def run_callbacks(results: list[tuple[Callable[[Any], None], Any]]) -> None:
    """Answer callers on the event loop (or, without one, on the store thread)."""
    for done, value in results:
        try:
            done(value)
        except Exception:  # one failing callback must not stop the others
            log.exception("error delivering a committed batch")


def failure(job: Job, error: Exception) -> Any:
    """What the caller of ``job`` is told when it failed with ``error``.

    A batch of messages with nothing to keep (notices) still goes out: it
    needs no disk. A blocked ``load`` gets the error itself; other reads an
    empty answer of the type they expect (``Read.empty``).
    """
    if isinstance(job, Read):
        return error if isinstance(job.done, Future) else job.empty()
    if isinstance(job, Append) and not any(d.keep for d in job.drafts):
        return [d.message(0) for d in job.drafts]
    # A write whose outcome is unknown stays one (OutcomeUnknown): its sender
    # must not be told it was lost, since it may be kept and shown to all.
    refused = (OutcomeUnknown if isinstance(error, OutcomeUnknown) else OSError)(f"could not save: {error}")
    refused.__cause__ = error
    return refused
