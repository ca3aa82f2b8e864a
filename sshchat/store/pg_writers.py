"""How each kind of state change is written to PostgreSQL: one function per type.

The twin of writers.py (SQLite), registered the same way (dispatch.py): a
table keyed by the change's class, which tests check covers every member of
``sshchat.chat.store.Change``. SQLite's INSERT OR REPLACE is an upsert on the
table's primary key here.
"""

from __future__ import annotations

from collections.abc import Awaitable

import asyncpg

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

_TABLE: WriterTable[asyncpg.Connection, Awaitable[None]] = WriterTable()
WRITERS = _TABLE.writers
_writes = _TABLE.writes
_NOW = "extract(epoch from now())"


def _upsert(table: str, key: str, columns: str, values: str = "") -> str:
    """SQLite's INSERT OR REPLACE in PostgreSQL's words: on a clash of the
    primary key ``key``, every other column of ``columns`` takes the new
    value. Written out by hand, each statement listed those columns twice,
    and one left out of the second list would keep its old value unnoticed.
    ``values``: the VALUES list, if not $1, $2... in the order of ``columns``."""
    names = [c.strip() for c in columns.split(",")]
    keys = {k.strip() for k in key.split(",")}
    values = values or ", ".join(f"${n}" for n in range(1, len(names) + 1))
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO UPDATE SET {update}"


_BIND = _upsert("names", "name_key", "name_key, name, fingerprint, time")
_OP = _upsert("operators", "fingerprint", "fingerprint, granted_by, time", f"$1, $2, {_NOW}")
_BAN = _upsert("bans", "kind, value", "kind, value, until, reason, by, time")
_MUTE = _upsert("mutes", "target", "target, until, reason, by, time")
_ALLOW = _upsert("allowlist", "fingerprint", "fingerprint, added_by, time", f"$1, $2, {_NOW}")
_MOTD = _upsert("settings", "key", "key, value", "'motd', $1")
_ROOM = _upsert("rooms", "name_key", "name_key, name, topic, creator, creator_fp, created, made_from, made_from_site")
_PREFS = _upsert("prefs", "fingerprint", "fingerprint, data")


async def write(db: asyncpg.Connection, change: Change) -> None:
    """Write ``change`` inside the caller's transaction."""
    await _TABLE.writer(change)(db, change)


@_writes(Binding)
async def _bind(db: asyncpg.Connection, b: Binding) -> None:
    await db.execute(_BIND, name_key(b.name), b.name, b.fingerprint, b.time)


@_writes(Unbind)
async def _unbind(db: asyncpg.Connection, u: Unbind) -> None:
    await db.execute("DELETE FROM names WHERE name_key = $1", u.name_key)


@_writes(Op)
async def _op(db: asyncpg.Connection, o: Op) -> None:
    await db.execute(_OP, o.fingerprint, o.by)


@_writes(Deop)
async def _deop(db: asyncpg.Connection, d: Deop) -> None:
    await db.execute("DELETE FROM operators WHERE fingerprint = $1", d.fingerprint)


@_writes(Ban)
async def _ban(db: asyncpg.Connection, b: Ban) -> None:
    await db.execute(_BAN, b.kind, b.value, b.until, b.reason, b.by, b.time)


@_writes(Unban)
async def _unban(db: asyncpg.Connection, u: Unban) -> None:
    await db.execute("DELETE FROM bans WHERE kind = $1 AND value = $2", u.kind, u.value)


@_writes(Mute)
async def _mute(db: asyncpg.Connection, m: Mute) -> None:
    await db.execute(_MUTE, m.target, m.until, m.reason, m.by, m.time)


@_writes(Unmute)
async def _unmute(db: asyncpg.Connection, u: Unmute) -> None:
    await db.execute("DELETE FROM mutes WHERE target = $1", u.target)


@_writes(Allow)
async def _allow(db: asyncpg.Connection, a: Allow) -> None:
    await db.execute(_ALLOW, a.fingerprint, a.by)


@_writes(Disallow)
async def _disallow(db: asyncpg.Connection, d: Disallow) -> None:
    await db.execute("DELETE FROM allowlist WHERE fingerprint = $1", d.fingerprint)


@_writes(SetMotd)
async def _motd(db: asyncpg.Connection, m: SetMotd) -> None:
    if m.text is None:
        await db.execute("DELETE FROM settings WHERE key = 'motd'")
    else:
        await db.execute(_MOTD, m.text)


@_writes(RoomInfo)
async def _room(db: asyncpg.Connection, r: RoomInfo) -> None:
    await db.execute(
        _ROOM, r.key, r.name, r.topic, r.creator, r.creator_fp, r.created, r.made_from, r.made_from_site
    )


@_writes(DropRoom)
async def _drop_room(db: asyncpg.Connection, d: DropRoom) -> None:
    """The room, who belonged to it, and what was said in it: a room made
    again under that name starts empty. Its id counter stays, so ids in a
    room made again go on rising: a node that delivered up to id N of the
    old room never takes a new message for one it has already shown."""
    await db.execute("DELETE FROM rooms WHERE name_key = $1", d.name_key)
    await db.execute("DELETE FROM memberships WHERE room = $1", d.name_key)
    await db.execute("DELETE FROM messages WHERE room = $1 AND recipient IS NULL", d.name)


@_writes(SetMemberships)
async def _memberships(db: asyncpg.Connection, m: SetMemberships) -> None:
    """Replace the person's rooms; ``time`` keeps their order."""
    await db.execute("DELETE FROM memberships WHERE who = $1", m.identity)
    await db.executemany(
        "INSERT INTO memberships VALUES ($1, $2, $3, $4)",
        [(m.identity, room, bool(current), order) for order, (room, current) in enumerate(m.rooms)],
    )


@_writes(SetPrefs)
async def _prefs(db: asyncpg.Connection, p: SetPrefs) -> None:
    await db.execute(_PREFS, p.fingerprint, p.data)


@_writes(AuditEntry)
async def _audit(db: asyncpg.Connection, a: AuditEntry) -> None:
    await db.execute(
        "INSERT INTO audit (time, actor, actor_fp, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        a.time, a.actor, a.actor_fp, a.action, a.target, a.detail,
    )


@_writes(ChangedOutside)
async def _changed_outside(db: asyncpg.Connection, c: ChangedOutside) -> None:
    await db.execute("UPDATE outside_changes SET serial = serial + 1, time = $1 WHERE id = 1", c.time)
