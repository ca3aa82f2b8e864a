"""How a batch of messages becomes rows in PostgreSQL, and the statements that write it.

A commit used to be four round trips (BEGIN, take the ids, insert, COMMIT),
with the rooms' counter rows locked from the second to the end of the
fourth: another node committing to the same room waited through all of
them. A batch of messages alone (nearly every batch) is now ONE statement,
``COMMIT_MESSAGES``, run outside any transaction block, so PostgreSQL
commits it by itself as it ends: all of it or none, one round trip, and the
counter rows held only for the insert and the commit's flush.

Its parts, one data-modifying CTE each, in one transaction:

* ``seq`` raises each room's counter by the number of its messages here, the
  rooms in name order (one locking order on every node: no deadlock), and
  records the transaction's id in ``changed`` for the bus's sweep;
* ``kept`` inserts the messages, numbered down from each room's new last id
  (``back``: how many of the room's messages in this batch come after it);
* ``mark`` records in ``store_writes`` that this batch, of this store, was
  committed, and the counters it took: after a lost connection, the answer
  the server could not send is read from there (postgres.py, ``_settle``).

A batch with a state change in it keeps the explicit transaction (a change
and the messages around it must keep their order: a /rmroom drops what was
said before it), with ``MARK`` as its last statement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sshchat.store.jobs import Result, Save, Write

# The columns of a message row, after the room and its number (``back`` or the id).
_COLUMNS = "kind, sender, sender_fp, recipient, text, time, sender_session"
_TYPES = "$5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::bigint[]"

# $1 rooms (sorted), $2 their counts: each room's counter raised, locked in room order; answers each room's
# new last id. In an explicit transaction alone, and the ``seq`` part of COMMIT_MESSAGES: one text for both,
# so the locking order and the ``changed`` mark the sweep reads cannot differ between the two ways to commit.
TAKE_IDS = """
INSERT INTO room_seq AS s (room, last, changed)
SELECT r.room, r.n, txid_current() FROM unnest($1::text[], $2::bigint[]) AS r(room, n) ORDER BY 1
ON CONFLICT (room) DO UPDATE SET last = s.last + EXCLUDED.last, changed = EXCLUDED.changed
RETURNING room, last
"""

# How a batch's row of store_writes replaces the writer's previous one (MARK, and the ``mark`` part below).
_MARK_UPSERT = """ON CONFLICT (writer) DO UPDATE
SET batch = EXCLUDED.batch, rooms = EXCLUDED.rooms, lasts = EXCLUDED.lasts, time = EXCLUDED.time"""

# $1 rooms (sorted), $2 their counts; $3 each message's room, $4 its ``back``, $5..$11 the columns;
# $12 the writer (this store), $13 its batch number. Answers each room's new last id.
COMMIT_MESSAGES = f"""
WITH seq AS ({TAKE_IDS}), kept AS (
    INSERT INTO messages (room, id, {_COLUMNS})
    SELECT m.room, seq.last - m.back, {', '.join(f'm.{c.strip()}' for c in _COLUMNS.split(','))}
    FROM unnest($3::text[], $4::bigint[], {_TYPES}) AS m(room, back, {_COLUMNS})
    JOIN seq ON seq.room = m.room
), mark AS (
    INSERT INTO store_writes (writer, batch, rooms, lasts, time)
    SELECT $12, $13, array_agg(room), array_agg(last), extract(epoch from now()) FROM seq
    {_MARK_UPSERT}
)
SELECT room, last FROM seq
"""

# Inside an explicit transaction: messages already numbered, a column an array.
INSERT_NUMBERED = f"""
INSERT INTO messages (room, id, {_COLUMNS})
SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
    $8::float8[], $9::bigint[])
"""

# The explicit transaction's last statement: $1 writer, $2 batch, $3 rooms, $4 their new last ids.
MARK = f"""
INSERT INTO store_writes (writer, batch, rooms, lasts, time) VALUES ($1, $2, $3, $4, extract(epoch from now()))
{_MARK_UPSERT}
"""

# After a lost connection: this store's last batch committed, and the counters it took.
OUTCOME = "SELECT batch, rooms, lasts FROM store_writes WHERE writer = $1"


@dataclass
class Plan:
    """A batch's messages to keep, counted per room, before they have ids."""

    counts: dict[str, int] = field(default_factory=dict)  # messages kept per room
    # (room, back, kind, sender, ...) in batch order; left empty when ``changes``
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    changes: bool = False  # a state change is in the batch: an explicit transaction

    @property
    def rooms(self) -> list[str]:
        """The rooms in the one order every node locks them in."""
        return sorted(self.counts)

    def firsts(self, lasts: dict[str, int]) -> dict[str, int]:
        """Each room's first id in this batch, from its counter's new value."""
        return {room: lasts[room] - n + 1 for room, n in self.counts.items()}

    def columns(self) -> list[list[Any]]:
        """The rows as one list per column, for unnest."""
        return [list(column) for column in zip(*self.rows, strict=True)]


def plan(jobs: list[Write]) -> Plan:
    """Count each room's messages to keep and give each its place from the end."""
    out = Plan()
    counts = out.counts
    for job in jobs:
        if isinstance(job, Save):
            out.changes = True
            continue
        for d in job.drafts:
            if d.keep:
                counts[d.room] = counts.get(d.room, 0) + 1
    if out.changes:
        return out  # the transaction numbers the rows itself (postgres.py, _in_transaction): no ``rows``
    seen: dict[str, int] = {}
    for job in jobs:
        if isinstance(job, Save):
            continue
        for d in job.drafts:
            if d.keep:
                n = seen[d.room] = seen.get(d.room, 0) + 1
                out.rows.append((d.room, counts[d.room] - n, d.kind.value, d.sender, d.sender_fp, d.recipient,
                                 d.text, d.time, d.sender_session))
    return out


def results(jobs: list[Write], firsts: dict[str, int]) -> list[Result]:
    """What each job's caller hears once the batch is committed with these first ids.

    The same numbering as ``plan`` (each room's messages in batch order), so
    it also serves a batch whose answer was read back after a lost connection.
    """
    next_id = dict(firsts)
    out: list[Result] = []
    for job in jobs:
        if isinstance(job, Save):
            out.append((job, None))
            continue
        messages = []
        for d in job.drafts:
            msg_id = 0  # not kept: no id (a notice shown once, in the room's order)
            if d.keep:
                msg_id = next_id[d.room]
                next_id[d.room] += 1
            messages.append(d.message(msg_id))
        out.append((job, messages))
    return out
