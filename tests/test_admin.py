"""``sshchat admin`` (issue 16): the database's bans, operators, names and
history, read and changed with or without a server running on it.

Each action is run as a person runs it (the ``sshchat`` entry point's
``main``, or a real ``python -m sshchat admin`` process beside a running
server) against a database a real server or the store filled; the store
queries it shares with the server run on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import sys
from pathlib import Path

import asyncssh
import pytest

from sshchat.admin.bans import lifted_by
from sshchat.chat.message import Kind
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import Ban, Binding, Draft, Op
from sshchat.cli import main
from sshchat.store.schema import MIGRATIONS
from sshchat.store.sqlite import SQLiteStore
from tests.support.server import Server, admin_keys_file
from tests.support.stores import Backend, PostgresBackend
from tests.support.waiting import eventually

FP_A = "SHA256:" + "a" * 43
FP_B = "SHA256:" + "b" * 43
T0 = 1_764_669_600.0  # 2025-12-02 10:00:00 UTC


async def admin(*args: str) -> tuple[int, str, str]:
    """``python -m sshchat admin ARGS`` as a process of its own, beside the test's server."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sshchat", "admin", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``sshchat admin ARGS`` through the entry point, in this process."""
    code = main(["admin", *args])
    out, err = capsys.readouterr()
    return code, out, err


def fill(backend: Backend, drafts: list[Draft], *changes: object) -> None:
    store = backend.open()
    try:
        for change in changes:
            store.save(change)  # type: ignore[arg-type]
        done: list[object] = []
        store.append(drafts, done.append)
    finally:
        store.close()
    assert done and isinstance(done[0], list), done


# ----------------------------------------------- beside a running server


async def test_bans_unban_and_export_beside_a_running_server(start_server, keys, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    admins = admin_keys_file(tmp_path, keys["carol"])
    server: Server = await start_server(db=db, admin_keys=str(admins), shutdown_grace=0.2)
    boss = await server.connect("boss", key=keys["carol"])
    bob = await server.connect("bob", key=keys["bob"])
    bob.line("hello from bob")
    await boss.wait_for("hello from bob")
    boss.line("/ban bob 1h spamming")
    await boss.wait_for("banned bob")
    bob_fp = asyncssh.import_public_key(keys["bob"].export_public_key()).get_fingerprint()

    code, out, err = await admin("--db", db, "bans")
    assert code == 0, err
    assert bob_fp in out and "127.0.0.1/32" in out and "spamming" in out and "boss" in out
    code, out, _ = await admin("bans", "--db", db, "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert {(b["kind"], b["value"]) for b in listed} == {("fingerprint", bob_fp), ("ip", "127.0.0.1/32")}
    assert all(b["reason"] == "spamming" and b["by"] == "boss" for b in listed)

    code, out, _ = await admin("--db", db, "export", "#LOBBY")  # any case, as in the chat
    assert code == 0
    said = [json.loads(line) for line in out.splitlines()]
    assert [(m["sender"], m["kind"], m["text"]) for m in said] == [("bob", "chat", "hello from bob")]
    assert set(said[0]) == {"id", "room", "time", "sender", "kind", "text"}  # tail --json's fields

    code, out, err = await admin("--db", db, "unban", "bob")
    assert code == 0, err
    assert out.strip() == f"lifted the ban on fingerprint:{bob_fp} and ip:127.0.0.1/32"
    assert err == "note: a server is running on this database; it lets them in within about 2 seconds\n"
    # As the note says: the running server lets bob back in within seconds, no restart.
    # (Its memory is watched, not bob's door: each refused login is an offence, and enough block the address.)
    await eventually(lambda: not server.app.hub.moderation.bans, timeout=3.0, interval=0.05,
                     message="the running server still holds the bans sshchat admin lifted")
    back = await server.connect("bob", key=keys["bob"])
    assert "Welcome" in back.text
    await boss.wait_for("bob joined")
    code, out, _ = await admin("--db", db, "bans")
    assert bob_fp not in out and "127.0.0.1" not in out
    code, _, err = await admin("--db", db, "unban", "bob")
    assert code == 1 and "no ban on bob" in err
    audit = sqlite3.connect(db).execute("SELECT actor, action, target FROM audit WHERE action = 'unban'").fetchall()
    assert audit == [("sshchat-admin", "unban", f"fingerprint:{bob_fp}"), ("sshchat-admin", "unban", "ip:127.0.0.1/32")]


async def test_backup_while_the_server_runs(start_server, tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    server: Server = await start_server(db=db)
    alice = await server.connect("alice")
    for n in range(20):
        alice.line(f"line {n}")
    await alice.wait_for("line 19")
    code, out, err = await admin("--db", db, "backup", str(tmp_path / "copy.db"))
    assert code == 0, err
    code, out, _ = await admin("--db", str(tmp_path / "copy.db"), "export", "#lobby")
    assert [json.loads(line)["text"] for line in out.splitlines()] == [f"line {n}" for n in range(20)]
    code, _, err = await admin("--db", db, "backup", str(tmp_path / "copy.db"))
    assert code == 1 and "copy.db" in err  # never over an existing file


# --------------------------------------------------------- export, import


def _other_database(backend: Backend, tmp_path: Path) -> str:
    if isinstance(backend, PostgresBackend):
        return backend.server.new_database()
    return str(tmp_path / "fresh.db")


def test_export_then_import_into_a_fresh_database_round_trips(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = [
        Draft("#Rust", Kind.CHAT if n % 3 else Kind.EMOTE, f"p{n % 7}", f"message {n} ünïcødé 🦀", T0 + n * 0.25)
        for n in range(1100)  # more than one page each way
    ]
    others = [Draft("#other", Kind.CHAT, "x", "elsewhere", T0),
              Draft("", Kind.PRIVATE, "p1", "a secret", T0, recipient="p2")]
    fill(backend, history[:600] + others + history[600:], RoomInfo("#Rust", created=T0), RoomInfo("#other"))

    code, exported, err = run(capsys, "--db", backend.db, "export", "#rust")
    assert code == 0, err
    lines = [json.loads(line) for line in exported.splitlines()]
    assert len(lines) == 1100 and "a secret" not in exported and "elsewhere" not in exported
    assert [m["text"] for m in lines] == [d.text for d in history]
    ids = [m["id"] for m in lines]
    assert ids == sorted(ids)
    source = tmp_path / "rust.jsonl"
    source.write_text(exported, encoding="utf-8")

    fresh = _other_database(backend, tmp_path)
    code, out, err = run(capsys, "--db", fresh, "import", str(source))
    assert (code, out.strip(), err) == (0, "imported 1100 lines, refused 0", "")
    code, again, _ = run(capsys, "--db", fresh, "export", "#Rust")
    copied = [json.loads(line) for line in again.splitlines()]
    strip = [{k: v for k, v in m.items() if k != "id"} for m in lines]
    assert [{k: v for k, v in m.items() if k != "id"} for m in copied] == strip
    assert copied[0]["time"] == "2025-12-02T10:00:00.000Z" and copied[1]["time"] == "2025-12-02T10:00:00.250Z"

    # Imported twice by mistake: refused (the room has history), unless --append.
    code, out, err = run(capsys, "--db", fresh, "import", str(source))
    assert code == 1 and out.strip() == "imported 0 lines, refused 1100"
    assert err.splitlines()[0] == "line 1: room #Rust already has history (--append to add to it)"
    code, out, _ = run(capsys, "--db", fresh, "import", "--append", str(source))
    assert (code, out.strip()) == (0, "imported 1100 lines, refused 0")
    code, again, _ = run(capsys, "--db", fresh, "export", "#rust")
    assert len(again.splitlines()) == 2200


def test_import_refuses_bad_lines_by_number_and_cleans_what_it_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"room": "#ops", "time": "2025-12-02T10:00:00.000Z", "sender": "eve\x1b[2J", "kind": "chat",
            "text": "hi \x1b]0;owned\x07there \x1b[31mred\u202e \x07bell"}
    lines = [
        json.dumps(good),
        "not json",
        json.dumps({**good, "text": 5}),
        json.dumps({**good, "room": "ops"}),
        json.dumps({**good, "kind": "private"}),
        json.dumps({**good, "time": "yesterday"}),
        json.dumps({**good, "text": "x" * 1025}),
        "",  # blank lines are skipped, not refused
        json.dumps({**good, "text": "y" * 100_000}),  # over the line bound: never read whole
        json.dumps([1, 2]),
        json.dumps({**good, "text": "\x1b[31m\x1b[0m"}),  # nothing left once cleaned
        json.dumps({**good, "text": "second", "time": 1764669601.5}),
        json.dumps({**good, "kind": "join", "text": "eve joined"}),  # never kept by a server: not history
        json.dumps({**good, "kind": "leave", "text": "eve left"}),
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = str(tmp_path / "new.db")
    code, out, err = run(capsys, "--db", db, "import", str(source))
    assert code == 1
    assert out.strip() == "imported 2 lines, refused 11"
    refused = err.splitlines()
    assert [line.split(":")[0] for line in refused] == [
        f"line {n}" for n in (2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 14)
    ]
    assert "text missing or not a string" in refused[1] and "not a room name" in refused[2]
    assert "kind must be one of" in refused[3] and "text too long" in refused[5]
    assert refused[6] == "line 9: line too long (over 65536 bytes)"
    assert "kind must be one of chat, emote, system" in refused[9] and "kind must be one of" in refused[10]
    code, out, _ = run(capsys, "--db", db, "export", "#ops")
    kept = [json.loads(line) for line in out.splitlines()]
    assert [(m["sender"], m["text"]) for m in kept] == [("eve", "hi there red bell"), ("eve", "second")]
    assert "\x1b" not in out and "\\u001b" not in out and "\\u0007" not in out


def test_export_of_an_unknown_room_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    SQLiteStore(str(tmp_path / "c.db")).close()
    code, out, err = run(capsys, "--db", str(tmp_path / "c.db"), "export", "#nowhere")
    assert (code, out) == (1, "")
    assert err == "sshchat admin: no room #nowhere in this database\n"


# ------------------------------------------------------- bans, ops, names


def test_names_ops_and_bans_tables(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    fill(
        backend, [],
        Binding("alice", FP_A, T0), Binding("Ally", FP_A, T0 + 1), Binding("bob", FP_B, T0 + 2),
        Op(FP_A, "root"), Ban("ip", "203.0.113.0/24", None, "flood \x1b[31m", "boss", T0),
    )
    code, out, _ = run(capsys, "--db", backend.db, "names")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split() == ["NAME", "FINGERPRINT", "SINCE"]
    assert [r.split()[:2] for r in rows[1:]] == [["alice", FP_A], ["Ally", FP_A], ["bob", FP_B]]
    assert "2025-12-02 10:00:00Z" in rows[1]
    code, out, _ = run(capsys, "--db", backend.db, "names", "--json")
    assert json.loads(out.splitlines()[2]) == {"name": "bob", "fingerprint": FP_B, "since": T0 + 2}
    code, out, err = run(capsys, "--db", backend.db, "ops")
    assert out.splitlines()[1].split() == [FP_A, "alice", "Ally", "root"]
    assert "--admin-keys" in err
    code, out, _ = run(capsys, "--db", backend.db, "bans")
    assert out.splitlines()[1].split()[:5] == ["ip", "203.0.113.0/24", "until", "lifted", "boss"]
    assert "\x1b" not in out and "flood" in out
    code, out, err = run(capsys, "--db", backend.db, "unban", "203.0.113.9/24")
    assert code == 0 and out.strip() == "lifted the ban on ip:203.0.113.0/24"
    assert err == ""  # no server runs on it: nothing to wait for
    code, out, _ = run(capsys, "--db", backend.db, "bans", "--json")
    assert out == ""


def test_unban_beside_a_running_server_says_it_lets_them_in_within_seconds(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(backend, [], Ban("fingerprint", FP_B, None, "spam", "boss", T0))
    node = backend.open()  # a server's store: SQLite holds the file, PostgreSQL a connection
    try:
        code, out, err = run(capsys, "--db", backend.db, "unban", f"fingerprint:{FP_B}")
    finally:
        node.close()
    assert code == 0 and out.strip() == f"lifted the ban on fingerprint:{FP_B}"
    assert err == "note: a server is running on this database; it lets them in within about 2 seconds\n"


@pytest.mark.parametrize(
    ("target", "lifted"),
    [
        ("bob", {("fingerprint", FP_B), ("ip", "198.51.100.7/32")}),  # the key and the address banned with it
        ("BOB", {("fingerprint", FP_B), ("ip", "198.51.100.7/32")}),
        (f"fingerprint:{FP_B}", {("fingerprint", FP_B)}),
        (f"key:{FP_B}", {("fingerprint", FP_B)}),
        (FP_B, {("fingerprint", FP_B)}),
        ("ip:198.51.100.7", {("ip", "198.51.100.7/32")}),
        ("198.51.100.7", {("ip", "198.51.100.7/32")}),
        ("ip:2001:db8:1:2::99", {("ip", "2001:db8:1:2::/64")}),  # an IPv6 address counts as its /64
        ("alice", set()),  # registered, not banned
        ("nobody", set()),
        ("ip:not-an-address", set()),
    ],
)
def test_unban_targets_follow_the_chat_s_unban(target: str, lifted: set[tuple[str, str]]) -> None:
    bans = [
        Ban("fingerprint", FP_B, None, "spam", "boss", T0),
        Ban("ip", "198.51.100.7/32", None, "spam", "boss", T0),  # made with it by /ban bob
        Ban("ip", "2001:db8:1:2::/64", None, "other", "boss", T0 + 5),
    ]
    bindings = {"bob": Binding("bob", FP_B, T0), "alice": Binding("alice", FP_A, T0)}
    assert {(b.kind, b.value) for b in lifted_by(target, bans, bindings)} == lifted


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args",
    [[], ["frob"], ["unban"], ["export"], ["import"], ["bans", "--bogus"], ["backup"], ["names", "extra"]],
)
def test_bad_arguments_print_usage_and_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["admin", *args])
    assert exited.value.code == 2
    assert "usage: sshchat admin" in capsys.readouterr().err


async def test_the_installed_command_exits_2_with_usage() -> None:
    code, out, err = await admin("unban")
    assert (code, out) == (2, "") and err.startswith("usage: sshchat admin unban")


def test_a_database_it_cannot_use_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "c.db"
    code, _, err = run(capsys, "--db", str(db), "bans")
    assert code == 2
    assert err == f"sshchat admin: cannot use database {db}: no such file (give --db as to sshchat serve)\n"
    assert not db.exists()  # a typo leaves nothing behind
    SQLiteStore(str(db)).close()
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    code, _, err = run(capsys, "--db", str(db), "names")
    assert code == 2 and len(err.splitlines()) == 1 and "newer than this sshchat knows" in err
    code, _, err = run(capsys, "--db", "postgresql://u@127.0.0.1:1/x", "backup", str(tmp_path / "b"))
    assert code == 2 and "pg_dump" in err
    wrong = tmp_path / "notes.txt"
    wrong.write_text("not a database\n" * 100)
    for args in (["bans"], ["backup", str(tmp_path / "b")]):  # --db naming some other file: as every action says
        code, _, err = run(capsys, "--db", str(wrong), *args)
        assert (code, err) == (2, f"sshchat admin: cannot use database {wrong}: file is not a database\n"), args
    assert not (tmp_path / "b").exists()


def test_an_older_schema_beside_a_running_server_is_left_to_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The upgrade is the server's to make as it starts; the tool does not
    change the schema under a running server."""
    db = tmp_path / "c.db"
    SQLiteStore(str(db)).close()
    raw = sqlite3.connect(db)
    raw.execute("PRAGMA user_version = 4")  # as an older sshchat left it (5 adds a column)
    raw.execute("ALTER TABLE messages DROP COLUMN sender_session")
    raw.execute("DROP TABLE outside_changes")  # (6 adds it)
    raw.close()
    held = os.open(db, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a running server holds it
    try:
        code, _, err = run(capsys, "--db", str(db), "bans")
        assert code == 2 and "older than this sshchat's" in err and "a server is running" in err
    finally:
        os.close(held)
    code, _, err = run(capsys, "--db", str(db), "bans")  # no server: upgraded as serve would
    assert code == 0, err
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_on_a_stopped_server_s_file_it_leaves_no_wal_files_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files the tool left would be its user's (root, say), and the server's
    user might then not open its own database."""
    db = tmp_path / "c.db"
    SQLiteStore(str(db)).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]
    for args in (["bans"], ["names", "--json"], ["backup", str(tmp_path / "copy.db")]):
        code, _, err = run(capsys, "--db", str(db), *args)
        assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db", "copy.db"]


def test_an_older_postgres_schema_with_nodes_connected_is_left_to_them(
    postgres, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from sshchat.store.pg_schema import MIGRATIONS
    from sshchat.store.postgres import PostgresStore

    node = PostgresStore(pg_url)  # a running node, of an older sshchat (as the version says)
    try:
        postgres.psql(pg_url.rpartition("/")[2], f"UPDATE schema_version SET version = {len(MIGRATIONS) - 1}")
        code, _, err = run(capsys, "--db", pg_url, "bans")
    finally:
        node.close()
    assert code == 2 and len(err.splitlines()) == 1
    assert "older than this sshchat's" in err and "nodes are connected to it" in err
    version = postgres.psql(pg_url.rpartition("/")[2], "SELECT version FROM schema_version").stdout.split()
    assert version == [str(len(MIGRATIONS) - 1)]  # not touched



def test_import_into_a_room_running_cluster_nodes_know_is_refused(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Running nodes read from the database the lines they did not get
    through the bus, and show them to everyone in the room as just said: an
    import beside them would pour a whole history onto the people there."""
    from sshchat.store.postgres import PostgresStore

    def lines(room: str, count: int) -> Path:
        path = tmp_path / f"{room[1:]}.jsonl"
        path.write_text("".join(json.dumps({"room": room, "time": T0 + n, "sender": "old", "kind": "chat",
                                            "text": f"old {n}"}) + "\n" for n in range(count)))
        return path

    code, out, err = run(capsys, "--db", pg_url, "import", str(lines("#busy", 3)))  # no node yet: kept
    assert (code, out.strip()) == (0, "imported 3 lines, refused 0"), err
    node = PostgresStore(pg_url)  # a running node
    try:
        code, out, err = run(capsys, "--db", pg_url, "import", "--append", str(lines("#busy", 2)))
        assert (code, out.strip()) == (1, "imported 0 lines, refused 2")
        assert "line 1: room #busy exists and sshchat nodes are running" in err.splitlines()[0]
        code, out, err = run(capsys, "--db", pg_url, "import", str(lines("#fresh", 2)))  # a new room: safe
        assert (code, out.strip(), err) == (0, "imported 2 lines, refused 0", "")
    finally:
        node.close()
    code, out, _ = run(capsys, "--db", pg_url, "import", "--append", str(lines("#busy", 2)))  # nodes stopped
    assert (code, out.strip()) == (0, "imported 2 lines, refused 0")
    code, out, _ = run(capsys, "--db", pg_url, "export", "#busy")
    assert [json.loads(line)["text"] for line in out.splitlines()] == ["old 0", "old 1", "old 2", "old 0", "old 1"]


def test_an_import_that_fails_midway_says_what_was_kept_and_where_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lines are committed a page at a time: a failure after the first page
    leaves those kept, and an import run again would refuse the room (it has
    history now). The operator is told where to start again from."""
    db = tmp_path / "c.db"
    SQLiteStore(str(db)).close()
    raw = sqlite3.connect(db)  # the database refusing one line, as a full disk or a broken file would
    raw.execute("CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.text = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'no room left on the device'); END")
    raw.close()
    source = tmp_path / "in.jsonl"
    source.write_text("".join(
        json.dumps({"room": "#big", "time": T0 + n, "sender": "a", "kind": "chat",
                    "text": "poison" if n == 700 else f"line {n + 1}"}) + "\n"
        for n in range(1200)
    ))
    code, out, err = run(capsys, "--db", str(db), "import", str(source))
    assert (code, out) == (1, "")
    assert err.startswith("sshchat admin: not saved: ") and "no room left on the device" in err
    assert err.rstrip().endswith(
        "the 500 lines imported from lines 1-500 are kept: import the lines after line 500 with --append"
    )
    code, out, _ = run(capsys, "--db", str(db), "export", "#big")
    assert [json.loads(line)["text"] for line in out.splitlines()] == [f"line {n}" for n in range(1, 501)]
