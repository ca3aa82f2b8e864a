"""An in-memory store that commits at once: for tests of the chat core.

Callbacks run synchronously, so a test sees the effect of a line as soon as
``handle_line`` returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import get_args

from sshchat.chat.message import Message
from sshchat.chat.store import (
    AuditEntry,
    Ban,
    Change,
    ChangedOutside,
    Committed,
    Draft,
    Said,
    Saved,
    Snapshot,
    Unban,
    speaker,
)

log = logging.getLogger("sshchat")
_KINDS = get_args(Change)


class MemoryStore:
    """Keeps everything in lists; nothing survives the process."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._speakers: dict[Message, str | None] = {}  # who said each kept message (Message hashes by identity)
        self.changes: list[Change] = []
        self.fail_next = False  # make the next append fail, as a full disk would
        self.fail_saves = False  # make every save fail, as a full disk would
        self._next_id = 1
        self._outside = 0  # ChangedOutside kept: counted as saved, not searched for at every poll

    def load(self, recent_per_room: int) -> Snapshot:
        return Snapshot(last_ids=self._last_ids(), outside_serial=self._outside)

    def append(self, drafts: list[Draft], done: Committed) -> None:
        if self.fail_next and any(d.keep for d in drafts):
            self.fail_next = False
            done(OSError("database or disk is full"))
            return
        out = []
        for d in drafts:
            msg_id = 0
            if d.keep:
                msg_id, self._next_id = self._next_id, self._next_id + 1
            msg = d.message(msg_id)
            if d.keep:
                self.messages.append(msg)
                self._speakers[msg] = speaker(d.sender_fp, d.sender_session)
            out.append(msg)
        done(out)

    def save(self, change: Change, done: Saved | None = None) -> None:
        """Keep ``change``; like SQLite, refuse (and report) what is no Change."""
        error: Exception | None = None
        if not isinstance(change, _KINDS):
            error = TypeError(f"the store cannot keep a {type(change).__name__}")
            log.error("store write failed, not saved: %s", error)
        elif self.fail_saves:
            error = OSError("could not save: database or disk is full")
        else:
            self.changes.append(change)
            self._outside += isinstance(change, ChangedOutside)
        if done is not None:
            done(error)

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        found = [
            m for m in self.messages
            if m.room.casefold() == room.casefold() and m.recipient is None
            and (before_id is None or m.id < before_id)
        ]
        done(found[-limit:] if limit > 0 else [])

    def after(self, room: str, after_id: int, limit: int, done: Callable[[list[Said]], None]) -> None:
        found = [
            Said(m, self._speakers.get(m)) for m in self.messages
            if m.room == room and (m.recipient is not None) == (room == "") and m.id > after_id
        ]
        done(found[:limit])

    def last_ids(self, done: Callable[[dict[str, int]], None]) -> None:
        done(self._last_ids())

    def _last_ids(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for m in self.messages:
            last[m.room] = max(m.id, last.get(m.room, 0))
        return last

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        entries = [c for c in self.changes if isinstance(c, AuditEntry)]
        done(entries[-limit:])

    def outside_serial(self, done: Callable[[int | None], None]) -> None:
        done(self._outside)

    def bans(self, done: Callable[[list[Ban] | None], None]) -> None:
        """The bans the saved changes leave (this store keeps changes, not tables)."""
        kept: dict[tuple[str, str], Ban] = {}
        for c in self.changes:
            if isinstance(c, Ban):
                kept[(c.kind, c.value)] = c
            elif isinstance(c, Unban):
                kept.pop((c.kind, c.value), None)
        done(list(kept.values()))

    def close(self) -> None:
        pass
