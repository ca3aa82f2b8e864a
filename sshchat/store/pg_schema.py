"""The PostgreSQL schema as a list of upgrades, one a version (as schema.py for SQLite).

The database records its version in ``schema_version`` (one row); a starting
server applies the upgrades it lacks, in order, each in its own transaction,
under an advisory lock so that two nodes starting at once do not both apply
one; and it refuses a database newer than itself.

The tables are those of SQLite's final schema, with two differences the
cluster needs:

* a room message's id is its position in its room (``room_seq`` holds each
  room's last id, incremented in the commit's transaction), so ``messages``
  is keyed by (room, id); private messages count in room "";
* ``schema_version`` stands for SQLite's ``PRAGMA user_version``.

Version 4 adds ``outside_changes``, one row whose counter ``sshchat admin``
raises after an unban; each node polls it (chat/outside.py). A counter row,
not the newest audit id: a BIGSERIAL is taken before its commit, so a poll
could see a later id committed first and never look back, where the row's
update waits for the lock and shows up in commit order.

Version 2 adds what only a cluster needs:

* ``room_seq.changed``: the id of the transaction that last raised the
  room's counter, indexed, so the bus's sweep reads only the rooms changed
  since its previous one (postgres.py, ``_read_last_ids``), not every room
  ever made;
* ``store_writes``: per store (one a node), the number of its last batch
  committed and the room counters it took, written in that batch's own
  transaction. A node that lost its connection while a commit's answer was
  on its way reads it to learn whether the batch was kept (postgres.py,
  ``_settle``), so the sender is told the truth.
"""

from __future__ import annotations

# Any number, the same in every sshchat: the advisory lock held while migrating.
MIGRATION_LOCK = 0x55484354  # "SHCT"

# Each entry upgrades the schema by one version; never edit a released one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE room_seq (
        room TEXT PRIMARY KEY,
        last BIGINT NOT NULL
    );
    CREATE TABLE messages (
        room TEXT NOT NULL,
        id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        sender TEXT NOT NULL,
        sender_fp TEXT,
        recipient TEXT,
        text TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (room, id)
    );
    CREATE TABLE names (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE operators (
        fingerprint TEXT PRIMARY KEY,
        granted_by TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE bans (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        until DOUBLE PRECISION,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, value)
    );
    CREATE TABLE mutes (
        target TEXT PRIMARY KEY,
        until DOUBLE PRECISION,
        reason TEXT NOT NULL,
        by TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE allowlist (
        fingerprint TEXT PRIMARY KEY,
        added_by TEXT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        actor_fp TEXT,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE rooms (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL,
        creator TEXT NOT NULL,
        creator_fp TEXT,
        created DOUBLE PRECISION NOT NULL,
        made_from TEXT NOT NULL DEFAULT '',
        made_from_site TEXT
    );
    CREATE TABLE memberships (
        who TEXT NOT NULL,
        room TEXT NOT NULL,
        current BOOLEAN NOT NULL DEFAULT FALSE,
        time DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (who, room)
    );
    CREATE TABLE prefs (
        fingerprint TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    """,
    # 2: the sender's session, so a line read back (the gap fill) carries
    # who said it for /ignore even when they have no key.
    """
    ALTER TABLE messages ADD COLUMN sender_session BIGINT;
    """,
    # 3: the sweep asks only for the rooms changed since it last asked; a
    # commit whose answer was lost is read back from store_writes.
    """
    ALTER TABLE room_seq ADD COLUMN changed BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX room_seq_changed ON room_seq (changed);
    CREATE TABLE store_writes (
        writer TEXT PRIMARY KEY,
        batch BIGINT NOT NULL,
        rooms TEXT[] NOT NULL,
        lasts BIGINT[] NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    """,
    # 4: a counter sshchat admin raises after changing what the nodes keep in
    # memory (bans); every node polls it and reads the bans again.
    """
    CREATE TABLE outside_changes (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        serial BIGINT NOT NULL,
        time DOUBLE PRECISION NOT NULL
    );
    INSERT INTO outside_changes VALUES (1, 0, 0);
    """,
]
