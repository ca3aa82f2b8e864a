"""The SQLite schema as a list of upgrades, one a version.

A database records the version it is at (PRAGMA user_version); a
starting server applies the upgrades it lacks, in order, and refuses a
database newer than itself. Kept apart from the store's threading so the
schema reads as one piece.
"""

from __future__ import annotations

# Each entry upgrades the schema by one version; never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        kind TEXT NOT NULL,
        sender TEXT NOT NULL,
        sender_fp TEXT,
        recipient TEXT,
        text TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE INDEX messages_room ON messages (room, id);
    CREATE TABLE names (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE TABLE operators (
        fingerprint TEXT PRIMARY KEY,
        granted_by TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        until REAL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE mutes (
        target TEXT PRIMARY KEY,
        until REAL,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE TABLE allowlist (
        fingerprint TEXT PRIMARY KEY,
        added_by TEXT NOT NULL,
        time REAL NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        actor_fp TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    # 2: rooms and who belongs to which (memberships survive restarts).
    """
    CREATE TABLE rooms (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL,
        creator TEXT NOT NULL,
        creator_fp TEXT,
        created REAL NOT NULL
    );
    CREATE TABLE memberships (
        who TEXT NOT NULL,
        room TEXT NOT NULL,
        current INTEGER NOT NULL DEFAULT 0,
        time REAL NOT NULL,
        PRIMARY KEY (who, room)
    );
    """,
    # 3: per-person view settings, for people with a key.
    """
    CREATE TABLE prefs (
        fingerprint TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    """,
    # 4: where a room was made from (chat/addresses.py's keys), so the
    # rooms-per-address caps hold across a restart.
    """
    ALTER TABLE rooms ADD COLUMN made_from TEXT NOT NULL DEFAULT '';
    ALTER TABLE rooms ADD COLUMN made_from_site TEXT;
    """,
    # 5: the sender's session, so a line read back (a cluster's gap fill)
    # carries who said it for /ignore even when they have no key.
    """
    ALTER TABLE messages ADD COLUMN sender_session INTEGER;
    """,
    # 6: a counter sshchat admin raises after changing what running servers
    # keep in memory (bans); each server polls it and reads the bans again.
    """
    CREATE TABLE outside_changes (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        serial INTEGER NOT NULL,
        time REAL NOT NULL
    );
    INSERT INTO outside_changes VALUES (1, 0, 0);
    """,
]
