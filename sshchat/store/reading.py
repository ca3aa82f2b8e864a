"""What both databases read back alike: a message row, and the small state of a Snapshot.

SQLite and PostgreSQL keep these tables with the same columns, and the
queries below are plain enough SQL for both; only how they are run (a
cursor, or an awaited fetch) differs. Kept here once so that a column added
to the state is read by both stores, not by one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sshchat.chat.message import Kind, Message
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import Ban, Binding, Mute, Said, Snapshot, speaker

MESSAGE_COLUMNS = "id, room, kind, sender, text, time, recipient"
SAID_COLUMNS = MESSAGE_COLUMNS + ", sender_fp, sender_session"  # and who said it


def message(row: Sequence[Any]) -> Message:
    """The Message of a row of ``MESSAGE_COLUMNS``."""
    return Message(row[0], row[1], Kind(row[2]), row[3], row[4], row[5], row[6])


def said(row: Sequence[Any]) -> Said:
    """The message of a row of ``SAID_COLUMNS``, with who said it."""
    return Said(message(row), speaker(row[7], row[8]))


# The small state loaded at start, one query a part; ``fill_state`` reads their rows.
STATE_QUERIES: dict[str, str] = {
    "names": "SELECT name_key, name, fingerprint, time FROM names",
    "operators": "SELECT fingerprint, granted_by FROM operators",
    "bans": "SELECT kind, value, until, reason, by, time FROM bans",
    "mutes": "SELECT target, until, reason, by, time FROM mutes",
    "allowed": "SELECT fingerprint FROM allowlist",
    "motd": "SELECT value FROM settings WHERE key = 'motd'",
    "rooms": "SELECT name, topic, creator, creator_fp, created, made_from, made_from_site FROM rooms",
    "memberships": "SELECT who, room, current FROM memberships ORDER BY who, time",
    "prefs": "SELECT fingerprint, data FROM prefs",
}


# The counter ``sshchat admin`` raises (chat/store.py, ChangedOutside): one primary-key read.
OUTSIDE_SERIAL = "SELECT serial FROM outside_changes WHERE id = 1"


def fill_state(snap: Snapshot, rows: Mapping[str, Sequence[Sequence[Any]]]) -> None:
    """Put into ``snap`` the rows of each of ``STATE_QUERIES`` (by its key)."""
    for key, name, fp, t in rows["names"]:
        snap.bindings[key] = Binding(name, fp, t)
    snap.operators = {fp: by for fp, by in rows["operators"]}
    snap.bans = [Ban(*row) for row in rows["bans"]]
    snap.mutes = [Mute(*row) for row in rows["mutes"]]
    snap.allowed = {fp for (fp,) in rows["allowed"]}
    snap.motd = rows["motd"][0][0] if rows["motd"] else None
    snap.rooms = [RoomInfo(*row) for row in rows["rooms"]]
    for who, room, current in rows["memberships"]:
        snap.memberships.setdefault(who, []).append((room, bool(current)))
    snap.prefs = {fp: data for fp, data in rows["prefs"]}
