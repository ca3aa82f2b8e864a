"""An in-memory store that commits at once: for tests of the chat core.

Callbacks run synchronously, so a test sees the effect of a line as soon as
``handle_line`` returns.
"""

from __future__ import annotations

from collections.abc import Callable

from sshchat.chat.message import Message
from sshchat.chat.store import AuditEntry, Change, Committed, Draft, Snapshot


class MemoryStore:
    """Keeps everything in lists; nothing survives the process."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changes: list[Change] = []
        self.fail_next = False  # make the next append fail, as a full disk would
        self._next_id = 1

    def load(self, recent_per_room: int) -> Snapshot:
        return Snapshot()

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
            out.append(msg)
        done(out)

    def save(self, change: Change) -> None:
        self.changes.append(change)

    def history(
        self, room: str, before_id: int | None, limit: int, done: Callable[[list[Message]], None]
    ) -> None:
        found = [
            m for m in self.messages
            if m.room.casefold() == room.casefold() and m.recipient is None
            and (before_id is None or m.id < before_id)
        ]
        done(found[-limit:] if limit > 0 else [])

    def audit_log(self, limit: int, done: Callable[[list[AuditEntry]], None]) -> None:
        entries = [c.record for c in self.changes if c.what == "audit"]
        done(entries[-limit:])  # type: ignore[arg-type]

    def close(self) -> None:
        pass
