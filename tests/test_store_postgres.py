"""What the PostgreSQL store does beyond the shared store tests (test_store*.py):
a schema shared by nodes that start together, ids that stay one room's
positions when two nodes write to it at once, and a clear refusal of a
database it cannot use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from sshchat.chat.message import Kind, Message
from sshchat.chat.store import Draft, DropRoom
from sshchat.store.errors import StoreError, StoreUnreachable
from sshchat.store.pg_schema import MIGRATIONS
from sshchat.store.postgres import PostgresStore
from tests.support.postgres import PostgresServer, free_port
from tests.support.proxy import Relay
from tests.support.waiting import eventually


def _database(postgres: PostgresServer, url: str) -> str:
    return url.rpartition("/")[2]


def test_new_database_gets_the_current_schema(postgres: PostgresServer, pg_url: str) -> None:
    PostgresStore(pg_url).close()
    PostgresStore(pg_url).close()  # and a second start finds nothing to do
    out = postgres.psql(_database(postgres, pg_url), "SELECT version FROM schema_version").stdout.split()
    assert out == [str(len(MIGRATIONS))]


def test_newer_schema_is_refused_clearly(postgres: PostgresServer, pg_url: str) -> None:
    PostgresStore(pg_url).close()
    postgres.psql(_database(postgres, pg_url), f"UPDATE schema_version SET version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="newer than this sshchat knows") as refused:
        PostgresStore(pg_url)
    assert "\n" not in str(refused.value)


def test_two_nodes_starting_at_once_on_a_new_database_both_start(postgres: PostgresServer, pg_url: str) -> None:
    """The advisory lock: one applies the schema, the other waits and finds it done."""
    results: list[object] = []

    def start() -> None:
        try:
            results.append(PostgresStore(pg_url))
        except Exception as e:
            results.append(e)

    nodes = [threading.Thread(target=start) for _ in range(3)]
    for t in nodes:
        t.start()
    for t in nodes:
        t.join()
    stores = [r for r in results if isinstance(r, PostgresStore)]
    for store in stores:
        store.close()
    assert len(stores) == 3, results
    out = postgres.psql(_database(postgres, pg_url), "SELECT version FROM schema_version").stdout.split()
    assert out == [str(len(MIGRATIONS))]


def test_two_nodes_writing_to_the_same_rooms_get_contiguous_ids(pg_url: str) -> None:
    """Each room's ids are 1, 2, 3... with no gap and no duplicate whichever
    node committed them, each node hears its own in id order, and ``after``
    gives them back in that order."""
    nodes = [PostgresStore(pg_url), PostgresStore(pg_url)]
    heard: list[list[Message]] = [[], []]
    failures: list[object] = []
    per_node = 200

    def write(node: int) -> None:
        """One batch at a time, each waited for: many small transactions, interleaved with the other node's."""
        rooms = ["#a", "#b"] if node == 0 else ["#b", "#a"]  # opposite orders (see the test below)
        answered = threading.Event()

        def done(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                failures.append(result)
            else:
                heard[node].extend(result)
            answered.set()

        for n in range(per_node):
            answered.clear()
            nodes[node].append([Draft(room, Kind.CHAT, f"node{node}", f"{node}:{n}", 1.0) for room in rooms], done)
            assert answered.wait(10)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    for store in nodes:
        store.close()  # everything accepted is committed first
    assert failures == []
    for node in range(2):
        for room in ("#a", "#b"):
            ids = [m.id for m in heard[node] if m.room == room]
            assert ids == sorted(ids) and len(ids) == per_node  # in commit order, which is id order
    reader = PostgresStore(pg_url)
    found: dict[str, list[Message]] = {}  # (what after() gives, without who said it)
    done = threading.Event()
    for room in ("#a", "#b"):
        reader.after(room, 0, 10_000, lambda got, room=room: found.__setitem__(room, [s.msg for s in got]))
    reader.audit_log(1, lambda _: done.set())  # a read after the others: all answered
    assert done.wait(10)
    reader.close()
    for room in ("#a", "#b"):
        assert [m.id for m in found[room]] == list(range(1, 2 * per_node + 1))
        mine = {(m.id, m.text) for node in range(2) for m in heard[node] if m.room == room}
        assert {(m.id, m.text) for m in found[room]} == mine


async def test_room_counters_are_locked_in_one_order_whatever_the_batch(pg_url: str) -> None:
    """Another node's transaction holds room #a's counter and will take #b's.
    A batch of #b then #a must wait for #a before taking #b: taken in the
    batch's order, each would hold what the other waits for, a deadlock that
    PostgreSQL breaks only after a second, by failing one of them."""
    store = PostgresStore(pg_url)
    store.append([Draft(room, Kind.CHAT, "x", "first", 1.0) for room in ("#a", "#b")], lambda r: None)
    store.close()
    store = PostgresStore(pg_url)
    other = await asyncpg.connect(pg_url)
    answered = threading.Event()
    result: list[object] = []
    try:
        async with other.transaction():
            await other.execute("UPDATE room_seq SET last = last WHERE room = '#a'")
            drafts = [Draft(room, Kind.CHAT, "y", "second", 1.0) for room in ("#b", "#a")]
            store.append(drafts, lambda r: (result.append(r), answered.set()))
            await eventually(lambda: other.fetchval("SELECT count(*) > 0 FROM pg_locks WHERE NOT granted"))
            # In one order, #b is free; else the store holds it, waiting for #a: a deadlock, which
            # PostgreSQL would see after deadlock_timeout (1 s). Wait for it no longer than half that.
            await other.execute("SET LOCAL lock_timeout = '500ms'")
            await other.execute("UPDATE room_seq SET last = last WHERE room = '#b'")
        await eventually(answered.is_set)
    finally:
        await other.close()
        store.close()
    assert [m.id for m in result[0]] == [2, 2]  # type: ignore[union-attr]


def test_a_room_made_again_starts_empty_but_its_ids_go_on_rising(pg_url: str) -> None:
    """A node that delivered the old room up to id N must not take the new
    room's first messages for ones it has already shown."""
    store = PostgresStore(pg_url)
    store.append([Draft("#dev", Kind.CHAT, "alice", f"old {n}", 1.0) for n in range(3)], lambda r: None)
    store.save(DropRoom("#dev", "#dev"))
    got: list[list[Message]] = []
    store.append([Draft("#dev", Kind.CHAT, "alice", "new", 1.0)], lambda r: got.append(r))  # type: ignore[arg-type]
    store.history("#dev", None, 10, got.append)
    store.close()
    assert [m.id for m in got[0]] == [4]
    assert [(m.id, m.text) for m in got[1]] == [(4, "new")]


def test_unreachable_database_at_start_is_a_clear_error() -> None:
    port = free_port()  # nobody listens there
    started = time.monotonic()
    with pytest.raises(StoreUnreachable, match=f"cannot reach database postgresql://u:\\*\\*\\*@127.0.0.1:{port}/chat"):
        PostgresStore(f"postgresql://u:secret@127.0.0.1:{port}/chat", wait=0.5)
    assert time.monotonic() - started < 5  # a bounded retry


def test_serve_on_an_unreachable_database_says_so_in_one_line_and_exits_2(tmp_path) -> None:
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "sshchat", "serve", "--host", "127.0.0.1", "--port", "0",
         "--host-key", str(tmp_path / "host"), "--log-level", "warning",
         "--db", f"postgres://sshchat@127.0.0.1:{port}/chat"],
        capture_output=True, text=True, timeout=30, env={**os.environ, "SSHCHAT_DB_CONNECT_WAIT": "0.5"},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"sshchat: cannot reach database postgres://sshchat@127.0.0.1:{port}/chat:"
        f" [Errno 111] Connect call failed ('127.0.0.1', {port}) (tried for 0.5 s)"
    ]


async def _commit(store: PostgresStore, text: str, room: str = "#lobby") -> list[Message] | Exception:
    outcome: asyncio.Future[list[Message] | Exception] = asyncio.get_running_loop().create_future()
    store.append([Draft(room, Kind.CHAT, "alice", text, 1.0)], outcome.set_result)
    return await asyncio.wait_for(outcome, 15)


async def test_a_restarted_postgresql_is_reconnected_and_nothing_unsaved_is_accepted(
    own_postgres: PostgresServer,
) -> None:
    """A PostgreSQL of this test's own, stopped (connections cut) and started
    again: meanwhile messages are refused to their callers, never taken as
    saved; then the store reconnects by itself and goes on."""
    server = own_postgres
    url = server.new_database()
    store = PostgresStore(url, loop=asyncio.get_running_loop())
    assert isinstance(await _commit(store, "before"), list)
    server.halt()
    refused = await _commit(store, "during")
    assert isinstance(refused, OSError) and "could not save" in str(refused)
    server.start()
    after: list[object] = []

    async def saved() -> bool:
        after.append(await _commit(store, "after"))
        return isinstance(after[-1], list)

    await eventually(saved, timeout=10)  # the store tries again at most once a second
    store.close()
    store = PostgresStore(url)
    texts = [m.text for m in store.load(10).recent["#lobby"]]
    store.close()
    assert texts[0] == "before" and "during" not in texts and texts[-1] == "after"


async def test_after_a_postgresql_restart_the_first_message_is_kept_and_a_failed_sweep_knows_no_room(
    own_postgres: PostgresServer,
) -> None:
    """PostgreSQL stopped and started while the store was idle: its
    connection looks open until used. The first message after the restart
    used to be refused (the server was back); and a ``last_ids`` asked while
    the server was down answered a list, which broke the bus's sweep."""
    server = own_postgres
    store = PostgresStore(server.new_database(), loop=asyncio.get_running_loop())
    assert isinstance(await _commit(store, "before"), list)
    server.halt()
    server.start()
    after = await _commit(store, "after")
    assert isinstance(after, list), after
    server.halt()
    last: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    store.last_ids(last.set_result)
    assert await asyncio.wait_for(last, 15) == {}
    store.close()


async def _last_ids(store: PostgresStore) -> dict[str, int]:
    found: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    store.last_ids(found.set_result)
    return await asyncio.wait_for(found, 15)


async def test_the_sweep_reads_only_the_rooms_changed_and_finds_a_commit_that_was_under_way(
    postgres: PostgresServer, pg_url: str
) -> None:
    """The bus asks every 2 s; a cluster keeps every room ever made, so
    ``last_ids`` gives only the rooms changed since it was last asked. A
    commit of another node that took its place before one sweep and ended
    after it is found by the next one all the same."""
    loop = asyncio.get_running_loop()
    node, other = PostgresStore(pg_url, loop=loop), PostgresStore(pg_url, loop=loop)
    holder = await asyncpg.connect(pg_url)
    try:
        for room in ("#a", "#b", "#c"):
            assert isinstance(await _commit(node, "hi", room), list)
        assert await _last_ids(node) == {"#a": 1, "#b": 1, "#c": 1}  # the first time: every room
        assert await _last_ids(node) == {}  # nothing changed since
        async with holder.transaction():  # #a's counter held: the other node's commit waits in the middle
            await holder.execute("SELECT * FROM room_seq WHERE room = '#a' FOR UPDATE")
            late = asyncio.ensure_future(_commit(other, "late", "#a"))
            await eventually(lambda: holder.fetchval("SELECT count(*) > 0 FROM pg_locks WHERE NOT granted"))
            assert isinstance(await _commit(node, "meanwhile", "#b"), list)
            assert await _last_ids(node) == {"#b": 2}
        assert [m.id for m in await late] == [2]  # type: ignore[union-attr]
        assert (await _last_ids(node))["#a"] == 2  # (with #b again: it changed while #a's commit ran)
        assert await _last_ids(node) == {}
    finally:
        await holder.close()
        node.close()
        other.close()


async def test_a_commit_whose_answer_is_lost_is_told_as_kept(postgres: PostgresServer, pg_url: str) -> None:
    """The network drops while PostgreSQL commits a message: the commit
    completes, its answer never arrives. The sender was told "not saved"
    while every node could read the line; they are told it was kept."""
    async with _relayed(postgres, pg_url) as (relay, db, store):
        assert isinstance(await _commit(store, "first"), list)
        # A commit that takes a moment: a deferred trigger sleeps as the transaction commits.
        postgres.psql(db, """
            CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON messages DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW WHEN (NEW.text = 'slow') EXECUTE FUNCTION slow();
        """)
        told = asyncio.ensure_future(_commit(store, "slow"))
        await _cut_while_sleeping(postgres, db, relay)  # the commit is under way; its answer will find no one
        answer = await told
    assert isinstance(answer, list) and [m.id for m in answer] == [2], answer
    assert postgres.psql(db, "SELECT id FROM messages WHERE text = 'slow'").stdout.split() == ["2"]


async def test_a_batch_cut_off_before_its_commit_is_kept_once(postgres: PostgresServer, pg_url: str) -> None:
    """The connection drops while the batch waits (here in a trigger, as it
    might for a lock): the server may still be working on it. It used to be
    refused though the server was back at once; it is kept, and once: the
    backend left working on it is ended before the batch is sent again."""
    async with _relayed(postgres, pg_url) as (relay, db, store):
        postgres.psql(db, """
            CREATE TABLE stall (one INT);
            INSERT INTO stall VALUES (1);
            CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS
                $$ BEGIN IF EXISTS (SELECT 1 FROM stall) THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$;
            CREATE TRIGGER stall BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION stall();
        """)
        told = asyncio.ensure_future(_commit(store, "stalled"))
        await _cut_while_sleeping(postgres, db, relay)
        postgres.psql(db, "DELETE FROM stall")  # the batch sent again will not stall
        answer = await told
    assert isinstance(answer, list) and [m.id for m in answer] == [1], answer
    assert postgres.psql(db, "SELECT id FROM messages WHERE text = 'stalled'").stdout.split() == ["1"]


@contextlib.asynccontextmanager
async def _relayed(postgres: PostgresServer, url: str) -> AsyncIterator[tuple[Relay, str, PostgresStore]]:
    """A relay the test can cut, the database's name, and a store that
    reaches it through the relay; the store and the relay closed after."""
    relay = await Relay(postgres.port).start()
    try:
        store = await _through(relay, url)
        try:
            yield relay, _database(postgres, url), store
        finally:
            await asyncio.to_thread(store.close)  # (not on this loop: the relay runs on it)
    finally:
        await relay.close()


async def _cut_while_sleeping(postgres: PostgresServer, db: str, relay: Relay) -> None:
    """Once a backend of ``db`` sleeps in the test's trigger, the connection
    drops (its answer will find no one), and the way is open again at once."""
    await eventually(lambda: _sleeping(postgres, db))
    relay.cut()
    relay.restore()


async def _through(relay: Relay, url: str) -> PostgresStore:
    """A store that reaches the database through ``relay`` (opened off this loop: the relay runs on it)."""
    port = int(url.rpartition(":")[2].partition("/")[0])
    return await asyncio.to_thread(
        PostgresStore, url.replace(f":{port}/", f":{relay.port}/"), asyncio.get_running_loop()
    )


def _sleeping(postgres: PostgresServer, db: str) -> bool:
    """A backend of the database is in pg_sleep (a trigger of the test's)."""
    out = postgres.psql(db, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                                 " AND datname = current_database()").stdout
    return out.strip() == "1"
