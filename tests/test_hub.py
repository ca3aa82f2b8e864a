"""The chat core, called directly: no sockets, a controllable clock."""

from __future__ import annotations

import pytest

from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.message import Kind
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder, person
from tests.support.settings import chat_settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(clock: Clock) -> Hub:
    return Hub(MemoryStore(), chat_settings(history_on_join=2), clock=clock)


def test_room_delivers_in_accepted_order_to_every_member(hub: Hub) -> None:
    outs = [Recorder() for _ in range(3)]
    members = [hub.join(f"u{i}", None, o) for i, o in enumerate(outs)]
    for n in range(10):
        hub.handle_line(members[n % 3], f"m{n}")
    for out in outs:
        assert out.texts(Kind.CHAT) == [f"m{n}" for n in range(10)]
    ids = [m.id for m in outs[0].messages]
    assert ids == sorted(ids)


def test_history_replays_only_what_people_said(hub: Hub) -> None:
    a = hub.join("alice", None, Recorder())
    for n in range(3):
        hub.handle_line(a, f"m{n}")
    hub.handle_line(a, "/me waves")
    late = Recorder()
    hub.join("bob", None, late)
    assert late.notices[0].startswith("Welcome to sshchat, bob! 2 online")
    assert late.texts() == ["m2", "waves", "bob joined (2 online)"]


def test_whois_reports_connected_and_idle_time(hub: Hub, clock: Clock) -> None:
    out = Recorder()
    alice = hub.join("alice", "SHA256:abc", out)
    bob = hub.join("bob", None, Recorder())
    clock.now += 3600 + 120
    hub.handle_line(bob, "hi")
    clock.now += 45
    hub.handle_line(alice, "/whois bob")
    assert "bob: no key (not registered); connected since" in out.notices[-1]
    assert out.notices[-1].endswith("(1h 2m ago); idle 45s")


def test_rename_follows_the_name_rule_and_updates_everything(hub: Hub) -> None:
    out = Recorder()
    alice = hub.join("alice", None, out)
    hub.join("bob", None, Recorder())
    hub.handle_line(alice, "/nick BOB")
    assert out.notices[-1] == 'the name "bob" is already in use'
    hub.handle_line(alice, "/nick Alice")  # a change of case is allowed
    assert out.prompts == 1
    assert hub.find("ALICE") is alice and alice.name == "Alice"
    assert out.texts(Kind.SYSTEM) == ["alice is now known as Alice"]


def test_takeover_needs_the_same_key(hub: Hub) -> None:
    old = Recorder()
    hub.join("alice", "SHA256:k1", old)
    with pytest.raises(JoinRefused, match="registered to another key"):
        hub.join("Alice", "SHA256:k2", Recorder())
    with pytest.raises(JoinRefused, match="registered to a key"):
        hub.join("alice", None, Recorder())
    new = Recorder()
    member = hub.join("alice", "SHA256:k1", new)
    assert old.closed == "you logged in from elsewhere"
    assert hub.find("alice") is member


def test_leave_is_idempotent_and_ignores_replaced_sessions(hub: Hub) -> None:
    watcher = Recorder()
    hub.join("watcher", None, watcher)
    first = hub.join("alice", "SHA256:k", Recorder())
    second = hub.join("alice", "SHA256:k", Recorder())
    hub.leave(first)  # the old session's connection closing later
    assert hub.find("alice") is second
    hub.leave(second)
    hub.leave(second)
    assert watcher.texts(Kind.LEAVE) == ["alice left"]


def test_shutdown_closes_everyone_quietly(hub: Hub) -> None:
    outs = [Recorder() for _ in range(2)]
    members = [hub.join(f"u{i}", None, o) for i, o in enumerate(outs)]
    hub.shutdown("bye all")
    for m in members:
        hub.leave(m)
    assert all(o.closed == "bye all" for o in outs)
    assert not any(o.texts(Kind.LEAVE) for o in outs)
    with pytest.raises(JoinRefused, match="shutting down"):
        hub.join("late", None, Recorder())


def test_shutdown_leaves_nobody_in_any_room(hub: Hub) -> None:
    """No ghosts: once the server stops, no room lists anyone, whether or
    not a session's own goodbye reaches leave() afterwards."""
    alice, _ = person(hub, "alice")
    bob, _ = person(hub, "bob")
    hub.handle_line(alice, "/join #den")
    hub.handle_line(bob, "/join #den")
    hub.shutdown("bye")
    assert {room.name: list(room.members) for room in hub.rooms.values()} == {"#lobby": [], "#den": []}
    assert hub.members == {}


def test_input_from_a_departed_member_is_ignored(hub: Hub) -> None:
    watcher = Recorder()
    hub.join("watcher", None, watcher)
    ghost = hub.join("ghost", None, Recorder())
    hub.leave(ghost)
    hub.handle_line(ghost, "boo")
    assert "boo" not in watcher.texts()


def test_a_login_storm_is_summed_up(clock: Clock) -> None:
    hub = Hub(MemoryStore(), chat_settings(notice_burst=3, notice_window=2.0), clock=clock)
    watcher = Recorder()
    hub.join("watcher", None, watcher)  # 1 notice
    for n in range(12):
        hub.join(f"user{n}", None, Recorder())
    joins = watcher.texts(Kind.JOIN)
    assert joins == ["watcher joined (1 online)", "user0 joined (2 online)", "user1 joined (3 online)"]
    hub.tick()
    assert watcher.texts(Kind.JOIN)[-1] == (
        "user2, user3, user4, user5, user6 and 5 others joined (13 online)"
    )
    clock.now += 3  # the storm is over: notices go out at once again
    hub.join("late", None, Recorder())
    assert watcher.texts(Kind.JOIN)[-1] == "late joined (14 online)"


def test_big_rooms_get_fewer_notices_at_once(clock: Clock) -> None:
    """5 per window up to 100 members; at 500 members, 1: each is a write to all."""
    hub = Hub(MemoryStore(), chat_settings(notice_burst=5, notice_window=2.0), clock=clock)
    watcher = Recorder()
    hub.join("watcher", None, watcher)
    for n in range(499):
        hub.join(f"u{n}", None, Recorder())
    hub.tick()  # the storm's summary
    clock.now += 3  # a quiet room of 500
    before = len(watcher.texts(Kind.JOIN))
    for n in range(3):
        hub.join(f"late{n}", None, Recorder())
    assert watcher.texts(Kind.JOIN)[before:] == ["late0 joined (501 online)"]
    hub.tick()
    assert watcher.texts(Kind.JOIN)[-1] == "late1, late2 joined (503 online)"


def test_big_rooms_get_storm_summaries_less_often(clock: Clock) -> None:
    hub = Hub(MemoryStore(), chat_settings(notice_burst=1, notice_window=100.0), clock=clock)
    watcher = Recorder()
    hub.join("watcher", None, watcher)
    for n in range(2500):
        hub.join(f"u{n}", None, Recorder())
    hub.tick()
    summaries = lambda: [t for t in watcher.texts(Kind.JOIN) if "others" in t]  # noqa: E731
    assert len(summaries()) == 1
    hub.join("late1", None, Recorder())
    clock.now += 1.5
    hub.tick()
    assert len(summaries()) == 1  # 2500 members: at most one summary per 2.5 s
    clock.now += 1.5
    hub.tick()
    assert len(summaries()) == 1 and watcher.texts(Kind.JOIN)[-1] == "late1 joined (2502 online)"


def test_irc_and_ssh_chat_habits_work_as_aliases(hub: Hub) -> None:
    """/w, /dm, /r, /j, /leave, /who, /users, /list: what people type out of habit."""
    alice, a = person(hub, "alice")
    bob, b = person(hub, "bob")
    hub.handle_line(alice, "/w bob psst")
    hub.handle_line(bob, "/r hi back")
    hub.handle_line(alice, "/dm bob again")
    assert b.texts(Kind.PRIVATE, "alice") == ["psst", "again"] and a.texts(Kind.PRIVATE, "bob") == ["hi back"]
    a.notices.clear()
    hub.handle_line(alice, "/who")
    assert any("bob" in n for n in a.notices)
    hub.handle_line(alice, "/j #rust")
    assert alice.room == "#rust"
    a.notices.clear()
    hub.handle_line(alice, "/list")
    assert any("#rust" in n for n in a.notices)
    hub.handle_line(alice, "/leave")
    assert alice.room != "#rust"
    a.notices.clear()
    hub.handle_line(alice, "/help w")
    assert a.notices[0].startswith("/msg NAME TEXT") and "also: /dm, /whisper, /w" in a.notices
