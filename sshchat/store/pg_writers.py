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


async def write(db: asyncpg.Connection, change: Change) -> None:
    """Write ``change`` inside the caller's transaction."""
    await _TABLE.writer(change)(db, change)


@_writes(Binding)
async def _bind(db: asyncpg.Connection, b: Binding) -> None:
    await db.execute(
        "INSERT INTO names VALUES ($1, $2, $3, $4) ON CONFLICT (name_key) DO UPDATE"
        " SET name = EXCLUDED.name, fingerprint = EXCLUDED.fingerprint, time = EXCLUDED.time",
        name_key(b.name), b.name, b.fingerprint, b.time,
    )


@_writes(Unbind)
async def _unbind(db: asyncpg.Connection, u: Unbind) -> None:
    await db.execute("DELETE FROM names WHERE name_key = $1", u.name_key)


@_writes(Op)
async def _op(db: asyncpg.Connection, o: Op) -> None:
    await db.execute(
        f"INSERT INTO operators VALUES ($1, $2, {_NOW}) ON CONFLICT (fingerprint) DO UPDATE"
        " SET granted_by = EXCLUDED.granted_by, time = EXCLUDED.time",
        o.fingerprint, o.by,
    )


@_writes(Deop)
async def _deop(db: asyncpg.Connection, d: Deop) -> None:
    await db.execute("DELETE FROM operators WHERE fingerprint = $1", d.fingerprint)


@_writes(Ban)
async def _ban(db: asyncpg.Connection, b: Ban) -> None:
    await db.execute(
        "INSERT INTO bans VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, value) DO UPDATE"
        " SET until = EXCLUDED.until, reason = EXCLUDED.reason, by = EXCLUDED.by, time = EXCLUDED.time",
        b.kind, b.value, b.until, b.reason, b.by, b.time,
    )


@_writes(Unban)
async def _unban(db: asyncpg.Connection, u: Unban) -> None:
    await db.execute("DELETE FROM bans WHERE kind = $1 AND value = $2", u.kind, u.value)


@_writes(Mute)
async def _mute(db: asyncpg.Connection, m: Mute) -> None:
    await db.execute(
        "INSERT INTO mutes VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target) DO UPDATE"
        " SET until = EXCLUDED.until, reason = EXCLUDED.reason, by = EXCLUDED.by, time = EXCLUDED.time",
        m.target, m.until, m.reason, m.by, m.time,
    )


@_writes(Unmute)
async def _unmute(db: asyncpg.Connection, u: Unmute) -> None:
    await db.execute("DELETE FROM mutes WHERE target = $1", u.target)


@_writes(Allow)
async def _allow(db: asyncpg.Connection, a: Allow) -> None:
    await db.execute(
        f"INSERT INTO allowlist VALUES ($1, $2, {_NOW}) ON CONFLICT (fingerprint) DO UPDATE"
        " SET added_by = EXCLUDED.added_by, time = EXCLUDED.time",
        a.fingerprint, a.by,
    )


@_writes(Disallow)
async def _disallow(db: asyncpg.Connection, d: Disallow) -> None:
    await db.execute("DELETE FROM allowlist WHERE fingerprint = $1", d.fingerprint)


@_writes(SetMotd)
async def _motd(db: asyncpg.Connection, m: SetMotd) -> None:
    if m.text is None:
        await db.execute("DELETE FROM settings WHERE key = 'motd'")
    else:
        await db.execute(
            "INSERT INTO settings VALUES ('motd', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            m.text,
        )


@_writes(RoomInfo)
async def _room(db: asyncpg.Connection, r: RoomInfo) -> None:
    await db.execute(
        "INSERT INTO rooms (name_key, name, topic, creator, creator_fp, created, made_from, made_from_site)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name_key) DO UPDATE"
        " SET name = EXCLUDED.name, topic = EXCLUDED.topic, creator = EXCLUDED.creator,"
        " creator_fp = EXCLUDED.creator_fp, created = EXCLUDED.created,"
        " made_from = EXCLUDED.made_from, made_from_site = EXCLUDED.made_from_site",
        r.key, r.name, r.topic, r.creator, r.creator_fp, r.created, r.made_from, r.made_from_site,
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
    await db.execute(
        "INSERT INTO prefs VALUES ($1, $2) ON CONFLICT (fingerprint) DO UPDATE SET data = EXCLUDED.data",
        p.fingerprint, p.data,
    )


@_writes(AuditEntry)
async def _audit(db: asyncpg.Connection, a: AuditEntry) -> None:
    await db.execute(
        "INSERT INTO audit (time, actor, actor_fp, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        a.time, a.actor, a.actor_fp, a.action, a.target, a.detail,
    )
