"""How each kind of state change is written to SQLite: one function per type.

The functions register in a table keyed by the change's class (dispatch.py,
shared with PostgreSQL's pg_writers.py); tests check it covers every member
of ``sshchat.chat.store.Change``.
"""

from __future__ import annotations

import sqlite3

from sshchat.chat.names import name_key
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import (
    Allow,
    AuditEntry,
    Ban,
    Binding,
    Change,
    ChangedOutside,
    Deop,
    Disallow,
    DropRoom,
    Mute,
    Op,
    SetMemberships,
    SetMotd,
    SetPrefs,
    Unban,
    Unbind,
    Unmute,
)
from sshchat.store.dispatch import WriterTable

_TABLE: WriterTable[sqlite3.Connection, None] = WriterTable()
WRITERS = _TABLE.writers
_writes = _TABLE.writes


def write(db: sqlite3.Connection, change: Change) -> None:
    """Write ``change`` inside the caller's transaction."""
    _TABLE.writer(change)(db, change)


@_writes(Binding)
def _bind(db: sqlite3.Connection, b: Binding) -> None:
    db.execute("INSERT OR REPLACE INTO names VALUES (?, ?, ?, ?)", (name_key(b.name), b.name, b.fingerprint, b.time))


@_writes(Unbind)
def _unbind(db: sqlite3.Connection, u: Unbind) -> None:
    db.execute("DELETE FROM names WHERE name_key = ?", (u.name_key,))


@_writes(Op)
def _op(db: sqlite3.Connection, o: Op) -> None:
    db.execute("INSERT OR REPLACE INTO operators VALUES (?, ?, strftime('%s','now'))", (o.fingerprint, o.by))


@_writes(Deop)
def _deop(db: sqlite3.Connection, d: Deop) -> None:
    db.execute("DELETE FROM operators WHERE fingerprint = ?", (d.fingerprint,))


@_writes(Ban)
def _ban(db: sqlite3.Connection, b: Ban) -> None:
    db.execute(
        "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?)", (b.kind, b.value, b.until, b.reason, b.by, b.time)
    )


@_writes(Unban)
def _unban(db: sqlite3.Connection, u: Unban) -> None:
    db.execute("DELETE FROM bans WHERE kind = ? AND value = ?", (u.kind, u.value))


@_writes(Mute)
def _mute(db: sqlite3.Connection, m: Mute) -> None:
    db.execute("INSERT OR REPLACE INTO mutes VALUES (?, ?, ?, ?, ?)", (m.target, m.until, m.reason, m.by, m.time))


@_writes(Unmute)
def _unmute(db: sqlite3.Connection, u: Unmute) -> None:
    db.execute("DELETE FROM mutes WHERE target = ?", (u.target,))


@_writes(Allow)
def _allow(db: sqlite3.Connection, a: Allow) -> None:
    db.execute("INSERT OR REPLACE INTO allowlist VALUES (?, ?, strftime('%s','now'))", (a.fingerprint, a.by))


@_writes(Disallow)
def _disallow(db: sqlite3.Connection, d: Disallow) -> None:
    db.execute("DELETE FROM allowlist WHERE fingerprint = ?", (d.fingerprint,))


@_writes(SetMotd)
def _motd(db: sqlite3.Connection, m: SetMotd) -> None:
    if m.text is None:
        db.execute("DELETE FROM settings WHERE key = 'motd'")
    else:
        db.execute("INSERT OR REPLACE INTO settings VALUES ('motd', ?)", (m.text,))


@_writes(RoomInfo)
def _room(db: sqlite3.Connection, r: RoomInfo) -> None:
    db.execute(
        "INSERT OR REPLACE INTO rooms (name_key, name, topic, creator, creator_fp, created, made_from, made_from_site)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (r.key, r.name, r.topic, r.creator, r.creator_fp, r.created, r.made_from, r.made_from_site),
    )


@_writes(DropRoom)
def _drop_room(db: sqlite3.Connection, d: DropRoom) -> None:
    """The room, who belonged to it, and what was said in it: a room made
    again under that name starts empty."""
    db.execute("DELETE FROM rooms WHERE name_key = ?", (d.name_key,))
    db.execute("DELETE FROM memberships WHERE room = ?", (d.name_key,))
    db.execute("DELETE FROM messages WHERE room = ? AND recipient IS NULL", (d.name,))


@_writes(SetMemberships)
def _memberships(db: sqlite3.Connection, m: SetMemberships) -> None:
    """Replace the person's rooms; ``time`` keeps their order."""
    db.execute("DELETE FROM memberships WHERE who = ?", (m.identity,))
    db.executemany(
        "INSERT INTO memberships VALUES (?, ?, ?, ?)",
        [(m.identity, room, int(current), order) for order, (room, current) in enumerate(m.rooms)],
    )


@_writes(SetPrefs)
def _prefs(db: sqlite3.Connection, p: SetPrefs) -> None:
    db.execute("INSERT OR REPLACE INTO prefs VALUES (?, ?)", (p.fingerprint, p.data))


@_writes(AuditEntry)
def _audit(db: sqlite3.Connection, a: AuditEntry) -> None:
    db.execute(
        "INSERT INTO audit (time, actor, actor_fp, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (a.time, a.actor, a.actor_fp, a.action, a.target, a.detail),
    )


@_writes(ChangedOutside)
def _changed_outside(db: sqlite3.Connection, c: ChangedOutside) -> None:
    db.execute("UPDATE outside_changes SET serial = serial + 1, time = ? WHERE id = 1", (c.time,))
