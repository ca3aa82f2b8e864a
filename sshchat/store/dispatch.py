"""A table from a change's class to the function that writes it.

Both databases write each kind of change with a function of their own
(writers.py for SQLite, pg_writers.py for PostgreSQL); how a function is
registered and found is the same for both, so it lives here once. The table
is keyed by the change's class, not by a string tag: a change the table lacks
is a TypeError for that one change (logged, reported to whoever saved it),
never a KeyError that takes the store thread down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sshchat.chat.store import Change

_Conn = TypeVar("_Conn")  # the database connection a writer is given
_R = TypeVar("_R")  # what a writer returns: None, or an awaitable for an asynchronous driver
_C = TypeVar("_C")


class WriterTable(Generic[_Conn, _R]):
    """The writers of one database, one per kind of change."""

    def __init__(self) -> None:
        # Tests check it covers every member of ``sshchat.chat.store.Change``.
        self.writers: dict[type[Any], Callable[[_Conn, Any], _R]] = {}

    def writes(self, kind: type[_C]) -> Callable[[Callable[[_Conn, _C], _R]], Callable[[_Conn, _C], _R]]:
        """Register the function below as the writer of ``kind``."""

        def register(fn: Callable[[_Conn, _C], _R]) -> Callable[[_Conn, _C], _R]:
            self.writers[kind] = fn
            return fn

        return register

    def writer(self, change: Change) -> Callable[[_Conn, Any], _R]:
        """The function that writes ``change``; TypeError for a kind the table lacks."""
        writer = self.writers.get(type(change))
        if writer is None:
            raise TypeError(f"the store cannot keep a {type(change).__name__}")
        return writer
