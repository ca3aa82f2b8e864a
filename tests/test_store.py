"""The stores on their own: schema, ordering, batching, durability.

What every store must do runs on SQLite and PostgreSQL alike (the
``backend`` fixture); what is one database's own is tested for it alone.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from sshchat.chat.message import Kind, Message
from sshchat.chat.store import Allow, Ban, Binding, Draft, Mute, Op, OutcomeUnknown, Said, SetMotd
from sshchat.store.memory import MemoryStore
from sshchat.store.sqlite import MIGRATIONS, SQLiteStore, StoreError
from tests.support.stores import FULL, Backend


def draft(text: str, **kw) -> Draft:
    return Draft("#lobby", kw.pop("kind", Kind.CHAT), kw.pop("sender", "alice"), text, 1.0, **kw)


def test_new_database_gets_the_current_schema(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "c.db"))
    store.close()
    db = sqlite3.connect(tmp_path / "c.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rooms_kept_before_schema_4_load_with_no_address_and_new_ones_keep_theirs(tmp_path: Path) -> None:
    from sshchat.chat.room import RoomInfo

    db = sqlite3.connect(tmp_path / "c.db")
    for statement in "".join(MIGRATIONS[:3]).split(";"):
        db.execute(statement)
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO rooms VALUES ('#old', '#old', 'topic', 'ann', NULL, 5.0)")
    db.commit()
    db.close()
    store = SQLiteStore(str(tmp_path / "c.db"))
    store.save(RoomInfo("#new", "", "bob", None, 6.0, "2001:db8::/64", "2001:db8::/48"))
    store.close()
    store = SQLiteStore(str(tmp_path / "c.db"))
    rooms = {r.name: r for r in store.load(10).rooms}
    store.close()
    assert rooms["#old"] == RoomInfo("#old", "topic", "ann", None, 5.0, "", None)
    assert (rooms["#new"].made_from, rooms["#new"].made_from_site) == ("2001:db8::/64", "2001:db8::/48")


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this sshchat knows"):
        SQLiteStore(str(tmp_path / "c.db"))


def test_a_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    first = SQLiteStore(path)
    with pytest.raises(StoreError, match="another process holds it"):
        SQLiteStore(path, wait=0.1)
    reader = sqlite3.connect(path)  # the sqlite3 shell, a hot backup: they still read while it runs
    assert reader.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    reader.close()
    first.close()
    SQLiteStore(path, wait=0.1).close()  # free again once the first has gone


def test_of_two_waiting_for_a_restart_one_gets_the_file(tmp_path: Path) -> None:
    import threading

    path = str(tmp_path / "c.db")
    old = SQLiteStore(path)
    results: list[object] = []

    def start() -> None:
        try:
            results.append(SQLiteStore(path, wait=2.0))
        except StoreError as e:
            results.append(e)

    waiting = [threading.Thread(target=start) for _ in range(2)]
    for t in waiting:
        t.start()
    old.close()  # the old server goes while both wait
    for t in waiting:
        t.join()
    stores = [r for r in results if isinstance(r, SQLiteStore)]
    assert len(stores) == 1 and isinstance(next(r for r in results if r not in stores), StoreError)
    stores[0].close()


def test_unusable_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot use database"):
        SQLiteStore(str(tmp_path / "no" / "such" / "dir" / "c.db"))


def test_appends_commit_in_order_with_increasing_ids(backend: Backend) -> None:
    store = backend.open()
    got: list[Message] = []
    done = threading.Event()
    for n in range(500):
        store.append([draft(f"m{n}")], lambda r: got.extend(r))
    store.append([draft("join", kind=Kind.JOIN, keep=False)], lambda r: (got.extend(r), done.set()))
    assert done.wait(10)
    assert [m.text for m in got] == [f"m{n}" for n in range(500)] + ["join"]
    ids = [m.id for m in got[:-1]]
    assert ids == sorted(ids) and len(set(ids)) == 500
    assert got[-1].id == 0  # notices are not stored
    store.close()


def test_history_is_the_newest_room_messages_without_private_ones(backend: Backend) -> None:
    store = backend.open()
    store.append([draft(f"m{n}") for n in range(10)], lambda r: None)
    store.append([draft("secret", kind=Kind.PRIVATE, recipient="bob")], lambda r: None)
    got: list[list[Message]] = []
    store.history("#lobby", None, 3, got.append)
    store.close()  # close waits for the queue, reads included
    assert [m.text for m in got[0]] == ["m7", "m8", "m9"]


def test_state_round_trips_through_a_restart(backend: Backend) -> None:
    store = backend.open()
    store.save(Binding("Alice", "SHA256:a", 5.0))
    store.save(Op("SHA256:o", "boss"))
    store.save(Ban("ip", "10.0.0.0/8", None, "bots", "boss", 6.0))
    store.save(Mute("name:bob", 99.0, "", "boss", 7.0))
    store.save(Allow("SHA256:x", "boss"))
    store.save(SetMotd("hello"))
    store.append([draft(f"m{n}") for n in range(30)], lambda r: None)
    store.close()
    store = backend.open()
    snap = store.load(20)
    store.close()
    assert snap.bindings["alice"] == Binding("Alice", "SHA256:a", 5.0)
    assert snap.operators == {"SHA256:o": "boss"}
    assert snap.bans == [Ban("ip", "10.0.0.0/8", None, "bots", "boss", 6.0)]
    assert snap.mutes == [Mute("name:bob", 99.0, "", "boss", 7.0)]
    assert snap.allowed == {"SHA256:x"} and snap.motd == "hello"
    assert [m.text for m in snap.recent["#lobby"]] == [f"m{n}" for n in range(10, 30)]


def test_a_failed_write_reports_to_each_caller(backend: Backend) -> None:
    backend.refuse("messages")  # the table unwritable: the next batch fails as a full disk would
    store = backend.open()
    results: list[object] = []
    store.append([draft("x")], results.append)
    store.append([draft("joined", kind=Kind.JOIN, keep=False)], results.append)
    store.close()
    assert isinstance(results[0], OSError) and FULL in str(results[0])
    assert isinstance(results[1], list) and results[1][0].text == "joined"  # notices still go out


def test_a_write_whose_outcome_is_unknown_is_told_so_not_lost(tmp_path: Path) -> None:
    """The database lost touch as it committed (PostgreSQL's InDoubt): each
    caller must hear OutcomeUnknown, so its sender reads "if it was kept,
    everyone sees it", not "nobody got it" (the line may well be shown)."""

    class InDoubtStore(SQLiteStore):
        def _transaction(self, jobs: list[Any]) -> list[Any]:
            raise OutcomeUnknown("the connection was lost as it committed")

    store = InDoubtStore(str(tmp_path / "c.db"))
    results: list[object] = []
    store.append([draft("maybe")], results.append)
    store.append([draft("joined", kind=Kind.JOIN, keep=False)], results.append)
    store.close()
    assert isinstance(results[0], OutcomeUnknown), results[0]
    assert isinstance(results[1], list) and results[1][0].text == "joined"  # notices still go out


def _said(store: Any, room: str, after_id: int, limit: int) -> list[Said]:
    """``store.after``'s answer (a blocking wait: the test has no event loop)."""
    got: list[list[Said]] = []
    done = threading.Event()
    store.after(room, after_id, limit, lambda found: (got.append(found), done.set()))
    assert done.wait(10)
    return got[0]


def _after(store: Any, room: str, after_id: int, limit: int) -> list[Message]:
    return [said.msg for said in _said(store, room, after_id, limit)]


def test_after_is_a_rooms_messages_past_an_id_oldest_first(backend: Backend) -> None:
    """What a node reads to fill a gap in a room's ids that the bus did not bring."""
    store = backend.open()
    for n in range(6):
        store.append([draft(f"m{n}")], lambda r: None)
        store.append([Draft("#other", Kind.CHAT, "bob", f"o{n}", 1.0)], lambda r: None)
    store.append([Draft("", Kind.PRIVATE, "bob", "psst", 1.0, recipient="alice")], lambda r: None)
    store.close()  # everything committed
    store = backend.open()
    lobby = _after(store, "#lobby", 0, 100)
    assert [m.text for m in lobby] == [f"m{n}" for n in range(6)]
    assert [m.text for m in _after(store, "#lobby", lobby[1].id, 3)] == ["m2", "m3", "m4"]
    assert _after(store, "#lobby", lobby[-1].id, 10) == []
    assert [m.text for m in _after(store, "", 0, 10)] == ["psst"]  # private messages: room ""
    store.close()


def test_after_says_who_said_each_line_as_ignore_names_them(backend: Backend) -> None:
    """A line read back to fill a gap carries its sender as /ignore matches
    them: their key, or a keyless person's session."""
    store = backend.open()
    store.append([draft("keyed", sender_fp="SHA256:k", sender_session=5)], lambda r: None)
    store.append([draft("keyless", sender_session=77)], lambda r: None)
    store.append([Draft("", Kind.PRIVATE, "bob", "psst", 1.0, recipient="alice", sender_session=78)], lambda r: None)
    store.close()
    store = backend.open()
    assert [s.person for s in _said(store, "#lobby", 0, 10)] == ["fingerprint:SHA256:k", "session:77"]
    assert [s.person for s in _said(store, "", 0, 10)] == ["session:78"]
    store.close()


def _last_ids(store: Any) -> dict[str, int]:
    got: list[dict[str, int]] = []
    done = threading.Event()
    store.last_ids(lambda found: (got.append(found), done.set()))
    assert done.wait(10)
    return got[0]


@pytest.mark.parametrize("memory", [False, True])
def test_last_ids_are_each_rooms_highest_id(backend: Backend, memory: bool) -> None:
    """What a cluster node's sweep asks every few seconds (sshchat/bus/order.py)."""
    store: Any = MemoryStore() if memory else backend.open()
    assert _last_ids(store) == {}
    for n in range(3):
        store.append([draft(f"m{n}")], lambda r: None)
        store.append([Draft("#other", Kind.CHAT, "bob", f"o{n}", 1.0)], lambda r: None)
    store.append([Draft("", Kind.PRIVATE, "bob", "psst", 1.0, recipient="alice")], lambda r: None)
    last = _last_ids(store)
    assert set(last) == {"#lobby", "#other", ""}
    for room in last:
        assert last[room] == _after(store, room, 0, 100)[-1].id
    store.close()


def test_memory_store_reads_after_an_id_like_the_databases() -> None:
    store = MemoryStore()
    for n in range(5):
        store.append([draft(f"m{n}")], lambda r: None)
        store.append([Draft("#other", Kind.CHAT, "bob", f"o{n}", 1.0)], lambda r: None)
    lobby = [m for m in store.messages if m.room == "#lobby"]
    assert [m.text for m in _after(store, "#lobby", lobby[1].id, 2)] == ["m2", "m3"]
    assert _after(store, "#lobby", lobby[-1].id, 2) == []
