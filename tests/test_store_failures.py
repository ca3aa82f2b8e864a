"""What the store does when a write fails: the failure stays with its own record.

The store thread takes whatever queued up as one transaction. Before, a
change of a kind it did not know (or any error that was not sqlite3.Error)
killed that thread, and every later message silently vanished; and one bad
record in a batch lost every message committed with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pytest

from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind, Message
from sshchat.chat.pipeline import NOT_SAVED
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import (
    Allow,
    AuditEntry,
    Ban,
    Binding,
    Change,
    Deop,
    Disallow,
    Draft,
    Mute,
    Op,
    SetMemberships,
    SetMotd,
    SetPrefs,
    Unban,
    Unbind,
    Unmute,
)
from sshchat.store import pg_writers, writers
from sshchat.store.memory import MemoryStore
from tests.support.chat import person
from tests.support.clients import Client
from tests.support.server import ServerProcess, disk_full, login
from tests.support.settings import chat_settings
from tests.support.stores import FULL, Backend
from tests.support.waiting import eventually

ADMIN = "SHA256:admin-key-fingerprint-0000000000000000000"
CAROL = "SHA256:carol-key-fingerprint-000000000000000000000"


def draft(text: str) -> Draft:
    return Draft("#lobby", Kind.CHAT, "alice", text, 1.0)


class Held:
    """Holds the store thread (in a callback, on that thread when there is no
    loop) so that everything queued meanwhile is served as ONE batch."""

    def __init__(self, store: Any) -> None:
        self.release = threading.Event()
        self.holding = threading.Event()
        store.append([draft("first")], self._hold)
        assert self.holding.wait(5)

    def _hold(self, _result: object) -> None:
        self.holding.set()
        self.release.wait(10)


@pytest.mark.parametrize("table", [writers.WRITERS, pg_writers.WRITERS], ids=["sqlite", "postgres"])
def test_every_kind_of_change_has_a_writer(table: dict[type, Any]) -> None:
    kinds = set(get_args(Change))
    assert kinds and kinds <= set(table), f"no writer for {kinds - set(table)}"


def test_every_kind_of_change_survives_a_restart(backend: Backend) -> None:
    store = backend.open()
    changes: list[Change] = [
        Binding("Alice", "SHA256:a", 5.0), Binding("Gone", "SHA256:g", 5.0), Unbind("gone"),
        Op("SHA256:o", "boss"), Op("SHA256:p", "boss"), Deop("SHA256:p"),
        Ban("ip", "10.0.0.0/8", None, "bots", "boss", 6.0), Ban("fingerprint", "SHA256:b", 9.0, "", "boss", 6.0),
        Unban("fingerprint", "SHA256:b"),
        Mute("name:bob", 99.0, "", "boss", 7.0), Mute("name:eve", None, "", "boss", 7.0), Unmute("name:eve"),
        Allow("SHA256:x", "boss"), Allow("SHA256:y", "boss"), Disallow("SHA256:y"),
        SetMotd("gone"), SetMotd("hello"),
        AuditEntry(8.0, "boss", None, "ban", "ip:10.0.0.0/8"),
        RoomInfo("#Dev", "builds", "alice", "SHA256:a", 3.0, "2001:db8::/64", "2001:db8::/48"),
        SetMemberships("SHA256:a", (("#lobby", False), ("#dev", True))),
        SetPrefs("SHA256:a", '{"theme": "mono"}'),
    ]
    outcomes: list[Exception | None] = []
    for change in changes:
        store.save(change, outcomes.append)
    store.close()
    assert outcomes == [None] * len(changes)
    store = backend.open()
    snap = store.load(10)
    audit: list[list[AuditEntry]] = []
    store.audit_log(10, audit.append)
    store.close()
    assert set(snap.bindings) == {"alice"} and snap.operators == {"SHA256:o": "boss"}
    assert snap.bans == [Ban("ip", "10.0.0.0/8", None, "bots", "boss", 6.0)]
    assert [m.target for m in snap.mutes] == ["name:bob"] and snap.allowed == {"SHA256:x"}
    assert snap.motd == "hello"
    assert snap.rooms == [RoomInfo("#Dev", "builds", "alice", "SHA256:a", 3.0, "2001:db8::/64", "2001:db8::/48")]
    assert snap.memberships == {"SHA256:a": [("#lobby", False), ("#dev", True)]}
    assert snap.prefs == {"SHA256:a": '{"theme": "mono"}'}
    assert [a.target for a in audit[0]] == ["ip:10.0.0.0/8"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(object(), id="unknown kind of change"),
        pytest.param(SetMemberships("SHA256:a", None), id="writer raising TypeError"),  # type: ignore[arg-type]
    ],
)
def test_the_store_thread_survives_a_change_it_cannot_write(backend: Backend, bad: Any) -> None:
    store = backend.open()
    outcome: list[Exception | None] = []
    store.save(bad, outcome.append)
    got: list[Message] = []
    delivered = threading.Event()

    def committed(result: list[Message] | Exception) -> None:
        if isinstance(result, list):
            got.extend(result)
        delivered.set()

    store.append([draft("after")], committed)
    assert delivered.wait(5), "the store thread died: a later message was never committed"
    store.close()
    assert isinstance(outcome[0], OSError)  # its caller hears of it
    assert [m.text for m in got] == ["after"] and got[0].id > 0
    store = backend.open()
    assert [m.text for m in store.load(10).recent["#lobby"]] == ["after"]
    store.close()


def test_one_failing_change_in_a_batch_loses_none_of_the_others(backend: Backend) -> None:
    backend.refuse("bans", "bad")  # a ban of "bad" fails in the database, as with a full disk
    store = backend.open()
    held = Held(store)
    replies: dict[str, object] = {}
    order: list[str] = []

    def answer(key: str) -> Callable[[Any], None]:
        def told(value: Any) -> None:
            replies[key] = value
            order.append(key)

        return told

    for n in range(5):
        store.append([draft(f"m{n}")], answer(f"m{n}"))
    store.save(Ban("ip", "bad", None, "", "boss", 1.0), answer("bad ban"))
    store.save(Ban("ip", "good", None, "", "boss", 1.0), answer("good ban"))
    store.save(object(), answer("unknown"))  # type: ignore[arg-type]
    for n in range(5, 10):
        store.append([draft(f"m{n}")], answer(f"m{n}"))
    held.release.set()
    store.close()

    texts = [f"m{n}" for n in range(10)]
    assert order == [*texts[:5], "bad ban", "good ban", "unknown", *texts[5:]]  # each told, in order
    assert isinstance(replies["bad ban"], OSError) and FULL in str(replies["bad ban"])
    assert isinstance(replies["unknown"], OSError) and replies["good ban"] is None
    committed = [replies[t] for t in texts]
    assert all(isinstance(r, list) and r[0].id > 0 for r in committed)
    ids = [r[0].id for r in committed]  # type: ignore[index]
    assert ids == sorted(ids) and len(set(ids)) == 10
    store = backend.open()
    snap = store.load(20)
    store.close()
    assert [m.text for m in snap.recent["#lobby"]] == ["first", *texts]
    assert [b.value for b in snap.bans] == ["good"]


def test_with_the_disk_full_every_write_fails_alone_and_notices_still_go_out(backend: Backend) -> None:
    store = backend.open()
    held = Held(store)
    backend.refuse("messages")  # every write refused from now on, as with the disk full
    replies: list[object] = []
    store.append([draft("x")], replies.append)
    store.append([Draft("#lobby", Kind.JOIN, "bob", "joined", 1.0, keep=False)], replies.append)
    store.append([draft("y")], replies.append)
    held.release.set()
    store.close()
    assert isinstance(replies[0], OSError) and isinstance(replies[2], OSError)
    assert isinstance(replies[1], list) and replies[1][0].text == "joined"


def test_memory_store_refuses_what_is_no_change_like_sqlite() -> None:
    store = MemoryStore()
    outcome: list[Exception | None] = []
    store.save(object(), outcome.append)  # type: ignore[arg-type]
    store.save(SetMotd("hi"), outcome.append)
    store.fail_saves = True  # as with the disk full: refused, and the caller told
    store.save(SetMotd("lost"), outcome.append)
    assert isinstance(outcome[0], TypeError) and outcome[1] is None and isinstance(outcome[2], OSError)
    assert store.changes == [SetMotd("hi")]


async def test_a_ban_that_cannot_be_saved_does_not_stop_the_chat(backend: Backend) -> None:
    """Through the chat core: the ban fails, and everyone's messages around it
    (in the same batch or after) are still committed and delivered."""
    backend.refuse("bans", CAROL)
    store = backend.open(loop=asyncio.get_running_loop())
    hub = Hub(store, chat_settings(), admins={ADMIN})
    admin, _ = person(hub, "dana", ADMIN, "192.0.2.1")
    _bob, bob_out = person(hub, "bob", None, "192.0.2.2")
    person(hub, "carol", CAROL, "192.0.2.3")
    lines = [f"line {n}" for n in range(6)]
    for line in lines[:3]:
        hub.handle_line(admin, line)
    hub.handle_line(admin, "/ban carol")
    for line in lines[3:]:
        hub.handle_line(admin, line)
    await eventually(lambda: bob_out.texts(Kind.CHAT, "dana") == lines, message=lambda: str(bob_out.texts()))
    store.close()
    store = backend.open()
    snap = store.load(20)
    store.close()
    assert [m.text for m in snap.recent["#lobby"] if m.kind is Kind.CHAT] == lines
    assert not any(b.value == CAROL for b in snap.bans)


# ------------------------------------------------------ a real full disk


async def test_with_the_disk_full_messages_are_refused_and_the_server_recovers(tmp_path: Path) -> None:
    """RLIMIT_FSIZE 0 on the server process: every write to a file fails
    (EFBIG; Python ignores SIGXFSZ), as with a full disk. Nothing is shown
    that is not stored, the sender is told, and once space returns the
    chat goes on."""
    server = ServerProcess(
        tmp_path, env={"SSHCHAT_RATE_BURST": "1000000", "SSHCHAT_INPUT_BYTES_PER_MINUTE": "1000000000"}
    )
    clients: list[Client] = []
    try:
        alice = await login(server.port, "alice")
        bob = await login(server.port, "bob")
        clients += [alice, bob]
        alice.line("before the disk filled")
        await bob.wait_for("alice: before the disk filled")
        with disk_full(server.pid):
            for n in range(5):
                alice.line(f"lost {n}")
            await alice.wait_for(lambda c: c.text.count(NOT_SAVED) == 5, timeout=10)
        alice.line("after space returned")
        await bob.wait_for("alice: after space returned", timeout=10)
        assert "lost" not in bob.text  # in commit order: had one been shown, it would be before this
    finally:
        for client in clients:
            await client.close()
        assert server.stop() == 0, "".join(server.log)
    db = sqlite3.connect(tmp_path / "chat.db")
    kept = [t for (t,) in db.execute("SELECT text FROM messages WHERE kind = 'chat' ORDER BY id")]
    db.close()
    assert kept == ["before the disk filled", "after space returned"]
    assert any("not saved" in line for line in server.log), "".join(server.log)
