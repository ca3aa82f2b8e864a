"""``sshchat admin``: the database's bans, operators, names and history, with or without a server.

Each action opens the database (``--db``, as for ``serve``, and with the
same stores, migrations and queries: database.py), does one thing and
exits: 0 done, 1 refused (nothing to unban, no such room, lines an import
refused), 2 a usage error or a database that cannot be used.

A running server keeps bans, operators and names in memory, loaded at its
start, and writes its own changes behind. After an ``unban`` the tool also
raises a counter in the database (``ChangedOutside``, saved after the unban
itself); every running server polls it each second and reads the bans again
when it moved (chat/outside.py), so the person is let in within about two
seconds, on every node of a cluster. Imported lines are in /history at
once, and in a room's recent lines from the next start.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from sshchat.admin.bans import lifted_by
from sshchat.admin.database import PAGE, AdminError, Database
from sshchat.admin.lines import MAX_LINE, Refused, parse
from sshchat.chat.bots import message_json
from sshchat.chat.names import name_key
from sshchat.chat.room import RoomInfo
from sshchat.chat.sanitize import clean
from sshchat.chat.store import AuditEntry, Change, ChangedOutside, Draft, Snapshot, Unban
from sshchat.config import Config, load
from sshchat.store import is_postgres_url

ACTOR = "sshchat-admin"  # who the audit log says acted (shown by /audit)
LIVE_NOTE = "note: a server is running on this database; it lets them in within about 2 seconds"


class _Strict(argparse.ArgumentParser):
    """An action's parser that refuses what it does not know itself, so the
    usage shown is the action's (argparse leaves it to the top parser, whose
    usage says nothing of the action)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def add_parser(sub: Any) -> None:
    """``sshchat admin`` and its actions, on the command line's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given after the action, it overrides the one given before it, not the other way round
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="SQLite file or postgresql:// URL, as for serve (default: serve's)")
    common.add_argument("--config", default=argparse.SUPPRESS, help="TOML file of settings, as for serve")
    admin = sub.add_parser(
        "admin", help="bans, operators, names and history in the database, with or without the server",
        description="Act on sshchat's database, whether or not a server runs on it.",
    )
    admin.add_argument("--db", help="SQLite file or postgresql:// URL, as for serve (default: serve's)")
    admin.add_argument("--config", help="TOML file of settings, as for serve (also $SSHCHAT_CONFIG)")
    actions = admin.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Strict)
    for name, text in (("bans", "the bans kept"), ("ops", "the operators made with /op"),
                       ("names", "registered names and their keys")):
        action = actions.add_parser(name, parents=[common], help=text, description=text)
        action.add_argument("--json", action="store_true", help="one JSON object a line")
    unban = actions.add_parser("unban", parents=[common], help="lift a ban, as /unban in the chat")
    unban.add_argument(
        "target", metavar="TARGET", help="NAME, fingerprint:SHA256:... (or SHA256:...), ip:ADDR[/PREFIX]"
    )
    export = actions.add_parser("export", parents=[common], help="a room's history as JSON lines on stdout")
    export.add_argument("room", metavar="ROOM", help="#ROOM")
    imp = actions.add_parser("import", parents=[common], help="append JSON lines (as export writes) to their rooms")
    imp.add_argument("file", metavar="FILE", help="the file, or - for stdin")
    imp.add_argument("--append", action="store_true",
                     help="also into rooms that already have history (importing twice adds the lines twice)")
    backup = actions.add_parser("backup", parents=[common], help="a consistent copy of a SQLite file, server running")
    backup.add_argument("path", metavar="PATH", help="the new file (must not exist)")


def run(args: argparse.Namespace) -> int:
    """Run one action; returns the exit status. StoreError and the like are the caller's (exit 2)."""
    config = load(args.config, os.environ, {"db": args.db})
    if args.action == "backup":
        return _backup(config.db, args.path)
    with Database(config.db, config.db_connect_wait, create=args.action == "import") as db:
        try:
            return _ACTIONS[args.action](db, args, config)
        except AdminError as e:
            print(f"sshchat admin: {e}", file=sys.stderr)
            return 1


# ------------------------------------------------------------------- tables


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _emit(args: argparse.Namespace, header: list[str], items: list[dict[str, Any]]) -> int:
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
    else:  # text from the database is cleaned before a terminal shows it
        _table(header, [[clean("" if v is None else str(v)) for v in item.values()] for item in items])
    return 0


def _bans(db: Database, args: argparse.Namespace, config: Config) -> int:
    now = time.time()
    bans = sorted(db.state().bans, key=lambda b: b.time)
    items: list[dict[str, Any]] = [
        {"kind": b.kind, "value": b.value,
         "until": ("expired" if b.until <= now else _when(b.until)) if b.until is not None else "until lifted",
         "by": b.by, "since": _when(b.time), "reason": b.reason}
        for b in bans
    ]
    if args.json:
        items = [{**i, "until": b.until, "since": b.time} for i, b in zip(items, bans, strict=True)]
    return _emit(args, ["KIND", "VALUE", "UNTIL", "BY", "SINCE", "REASON"], items)


def _ops(db: Database, args: argparse.Namespace, config: Config) -> int:
    state = db.state()
    names = _names_by_key(state)
    items = [{"fingerprint": fp, "names": " ".join(names.get(fp, [])), "granted_by": by}
             for fp, by in sorted(state.operators.items())]
    code = _emit(args, ["FINGERPRINT", "NAMES", "GRANTED BY"], items)
    if not args.json:
        print("(operators from --admin-keys are in that file, not in the database)", file=sys.stderr)
    return code


def _names(db: Database, args: argparse.Namespace, config: Config) -> int:
    bindings = sorted(db.state().bindings.values(), key=lambda b: name_key(b.name))
    items = [{"name": b.name, "fingerprint": b.fingerprint, "since": b.time if args.json else _when(b.time)}
             for b in bindings]
    return _emit(args, ["NAME", "FINGERPRINT", "SINCE"], items)


def _names_by_key(state: Snapshot) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for b in sorted(state.bindings.values(), key=lambda b: name_key(b.name)):
        found.setdefault(b.fingerprint, []).append(b.name)
    return found


# -------------------------------------------------------------------- unban


def _unban(db: Database, args: argparse.Namespace, config: Config) -> int:
    state = db.state()
    lifted = lifted_by(args.target, state.bans, state.bindings)
    if not lifted:
        raise AdminError(f"no ban on {clean(args.target)[:80]}; see: sshchat admin bans")
    now = time.time()
    changes: list[Change] = []
    for b in lifted:
        changes += [Unban(b.kind, b.value), AuditEntry(now, ACTOR, None, "unban", f"{b.kind}:{b.value}")]
    # Last, so that a server that sees the counter move finds the unban kept (chat/outside.py).
    db.save([*changes, ChangedOutside(now)])
    print(f"lifted the ban on {' and '.join(f'{b.kind}:{clean(b.value)}' for b in lifted)}")
    if db.server_running:
        print(LIVE_NOTE, file=sys.stderr)
    return 0


# ------------------------------------------------------------ export/import


def _export(db: Database, args: argparse.Namespace, config: Config) -> int:
    room = _room_named(db.state(), args.room)
    if room is None:
        raise AdminError(f"no room {clean(args.room)[:40]} in this database")
    out = sys.stdout
    for said in db.messages(room):
        if said.msg.recipient is None:  # (private messages are kept in no room; never exported)
            out.write(message_json(said.msg) + "\n")
    out.flush()
    return 0


def _room_named(state: Snapshot, typed: str) -> str | None:
    """A room's name as its messages are kept, from what was typed (any case)."""
    return _known_rooms(state).get(name_key(typed))


def _import(db: Database, args: argparse.Namespace, config: Config) -> int:
    state = db.state()
    known = _known_rooms(state)  # room key -> its name as kept
    # Rooms with history are left alone unless --append: a file imported twice is not doubled by mistake.
    closed = set() if args.append else {name_key(n) for n in state.last_ids if n}
    # Nodes of a running cluster read lines they did not get through the bus from
    # the database (bus/order.py, sweep) and show them to everyone in the room as
    # just said: a whole history, at once. Only a room they cannot have yet is safe.
    served = set(known) if db.postgres and db.server_running else set()
    imported = refused = 0
    kept_through = 0  # the file's line up to which every line is committed or refused
    new_rooms: list[RoomInfo] = []
    batch: list[Draft] = []

    def flush(through: int) -> None:
        nonlocal imported, kept_through
        try:
            imported += _flush(db, new_rooms, batch)
        except AdminError as e:
            # What is kept stays kept, and a second run without --append would refuse
            # the room: say where to start again from.
            if not kept_through:
                raise
            raise AdminError(f"{e}; the {imported} lines imported from lines 1-{kept_through} are kept:"
                             f" import the lines after line {kept_through} with --append") from None
        kept_through = through

    number = 0
    with _opened(args.file) as source:
        for number, line in _lines(source):
            if line is not None and not line.strip():
                continue
            try:
                if line is None:
                    raise Refused(f"line too long (over {MAX_LINE} bytes)")
                draft = parse(line, config.max_message_chars)
            except Refused as e:
                refused += 1
                print(f"line {number}: {e}", file=sys.stderr)
                continue
            key = name_key(draft.room)
            if key in closed:
                refused += 1
                print(f"line {number}: room {draft.room} already has history (--append to add to it)", file=sys.stderr)
                continue
            if key in served:
                refused += 1
                print(f"line {number}: room {draft.room} exists and sshchat nodes are running: they would show"
                      " these lines to everyone in it as just said (stop them, or import into a new room)",
                      file=sys.stderr)
                continue
            if key not in known:
                known[key] = draft.room
                new_rooms.append(RoomInfo(draft.room, created=time.time()))
            batch.append(Draft(known[key], draft.kind, draft.sender, draft.text, draft.time))
            if len(batch) >= PAGE:
                flush(number)
        flush(number)
    print(f"imported {imported} lines, refused {refused}")
    return 1 if refused else 0


def _known_rooms(state: Snapshot) -> dict[str, str]:
    """Every room the database knows, by key, with its name as its messages are kept."""
    found = {r.key: r.name for r in state.rooms}
    found.update({name_key(n): n for n in state.last_ids if n})
    return found


def _flush(db: Database, new_rooms: list[RoomInfo], batch: list[Draft]) -> int:
    """The rooms first seen, then the lines: the rooms exist before their history."""
    if new_rooms:
        db.save(list(new_rooms))
        new_rooms.clear()
    if not batch:
        return 0
    count = len(db.append(list(batch)))
    batch.clear()
    return count


class _opened:
    """The import file (binary, so a line's length is bounded before it is decoded), or stdin."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdin.buffer
        try:
            self.file = open(self.path, "rb")  # closed in __exit__
        except OSError as e:
            raise AdminError(f"cannot read {self.path}: {e.strerror}") from None
        return self.file

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


def _lines(source: IO[bytes]) -> Iterator[tuple[int, str | None]]:
    """(number, text) of each line, one at a time; a line over MAX_LINE bytes
    comes as None (its rest skipped), never read whole."""
    number = 0
    while True:
        raw = source.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of it
                raw = source.readline(MAX_LINE)
            yield number, None
            continue
        yield number, raw.decode("utf-8", errors="replace")


# ------------------------------------------------------------------- backup


def _backup(db: str, path: str) -> int:
    """SQLite's online backup: one read transaction, so a consistent copy while the server writes."""
    if is_postgres_url(db):
        print("sshchat admin: backup is for a SQLite file; for PostgreSQL use pg_dump (see README)", file=sys.stderr)
        return 2
    if not os.path.exists(db):
        print(f"sshchat admin: cannot use database {db}: no such file", file=sys.stderr)
        return 2
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds private messages too
    except OSError as e:
        print(f"sshchat admin: cannot write {path}: {e.strerror}", file=sys.stderr)
        return 1
    os.close(fd)
    # Not read-only: a read-only connection to a WAL file no server has open leaves
    # -wal and -shm files behind, owned by whoever ran this (root, say), which the
    # server's user then may not open. A connection that may write removes them as it closes.
    source = sqlite3.connect(db)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    except sqlite3.Error as e:
        target.close()
        os.unlink(path)
        if getattr(e, "sqlite_errorname", "") in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):  # the --db, not the copy
            print(f"sshchat admin: cannot use database {db}: {e}", file=sys.stderr)
            return 2
        print(f"sshchat admin: backup failed: {e}", file=sys.stderr)
        return 1
    finally:
        source.close()
    target.close()
    print(f"wrote {path}")
    return 0


_ACTIONS = {"bans": _bans, "ops": _ops, "names": _names, "unban": _unban, "export": _export, "import": _import}
