"""Rooms: in the core (no sockets), over SSH, and across a restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sshchat.app import App
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, person
from tests.support.server import Server, make_config
from tests.support.settings import chat_settings

OP = "SHA256:operator-key-000000000000000000000000000000"
ALICE = "SHA256:alice-key-00000000000000000000000000000000"


@pytest.fixture
def hub() -> Hub:
    return Hub(MemoryStore(), chat_settings(), clock=Clock(), admins={OP})



def test_everyone_starts_in_the_lobby_and_join_creates_and_switches(hub: Hub) -> None:
    alice, out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    assert alice.room == "#lobby" and alice.rooms == ["#lobby"]
    hub.handle_line(alice, "/join #Rust")
    assert alice.room == "#rust" and alice.rooms == ["#lobby", "#rust"]
    assert out.prompts == 1
    assert "now in #Rust (1 here)" in out.notices
    assert "alice joined #Rust (1 here)" in out.texts(Kind.JOIN)
    assert not any("#Rust" in t for t in bob_out.texts())  # the notice stays in its room
    hub.handle_line(bob, "/join #RUST")  # names are unique ignoring case
    assert bob.room == "#rust" and len(hub.rooms) == 2


def test_messages_stay_in_their_room(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    bob, bob_out = person(hub, "bob")
    hub.handle_line(alice, "/join #rust")
    hub.handle_line(alice, "rust only")
    hub.handle_line(bob, "lobby only")
    assert "rust only" in out.texts() and "rust only" not in bob_out.texts()
    assert "lobby only" not in out.texts()  # alice looks at #rust; the lobby's line is unread
    assert alice.unread["#lobby"] == 1


def test_unread_counts_mentions_and_catching_up(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    carol, _ = person(hub, "carol")
    hub.handle_line(alice, "/join #rust")
    hub.handle_line(carol, "/join #rust")
    hub.handle_line(alice, "/join #lobby")  # back to the lobby, still a member of #rust
    for n in range(3):
        hub.handle_line(carol, f"talk {n}")
    hub.handle_line(carol, "hey ALICE, look at this")
    hub.handle_line(carol, "/me waves at alice")
    assert [m.text for m in out.elsewhere] == ["hey ALICE, look at this", "waves at alice"]
    assert "talk 0" not in out.texts()
    hub.handle_line(alice, "/rooms")
    assert " +#rust (2 online, 5 unread)" in out.notices
    assert " *#lobby (2 online)" in out.notices
    hub.handle_line(alice, "/join #rust")
    assert "5 new messages since you last looked" in out.notices
    assert out.texts(Kind.CHAT)[-4:] == ["talk 0", "talk 1", "talk 2", "hey ALICE, look at this"]
    assert alice.unread["#rust"] == 0


def test_part_and_returning_to_the_lobby(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    watcher, w_out = person(hub, "watcher")
    hub.handle_line(watcher, "/join #a")
    hub.handle_line(alice, "/join #a")
    hub.handle_line(alice, "/part #lobby")
    assert alice.rooms == ["#a"]
    hub.handle_line(alice, "/part")
    assert alice.rooms == ["#lobby"] and alice.room == "#lobby"
    assert "alice left #a" in w_out.texts(Kind.LEAVE)
    hub.handle_line(alice, "/part")
    assert out.notices[-1] == "#lobby is the last room you are in; /quit leaves the chat"
    hub.handle_line(alice, "/part #nowhere")
    assert out.notices[-1] == "you are not in #nowhere"


@pytest.mark.parametrize("name", ["rust", "#", "#" + "x" * 25, "#bad!", "#sp ace"])
def test_invalid_room_names(hub: Hub, name: str) -> None:
    alice, out = person(hub, "alice")
    hub.handle_line(alice, f"/join {name}")
    assert "use # followed by 1-24 letters, digits, - or _" in out.notices[-1]
    assert len(hub.rooms) == 1


def test_rooms_lists_empty_rooms_with_topics(hub: Hub) -> None:
    alice, out = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/join #quiet")
    hub.handle_line(alice, "/topic nothing happens here")
    hub.handle_line(alice, "/part")
    hub.handle_line(alice, "/rooms")
    assert "  #quiet (0 online) - nothing happens here" in out.notices


def test_topic_rights(hub: Hub) -> None:
    alice, _out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    op, _ = person(hub, "op", OP)
    hub.handle_line(alice, "/join #rust")
    hub.handle_line(bob, "/join #rust")
    hub.handle_line(op, "/join #rust")
    hub.handle_line(alice, "/topic borrow checking")
    assert "alice set the topic: borrow checking" in bob_out.texts(Kind.SYSTEM)
    hub.handle_line(bob, "/topic mine now")
    assert bob_out.notices[-1] == "only #rust's creator or an operator can set its topic"
    hub.handle_line(op, "/topic ops can")
    hub.handle_line(bob, "/topic")
    assert bob_out.notices[-1] == "#rust: ops can"
    hub.handle_line(bob, "/join #anon")  # a keyless creator has no rights
    hub.handle_line(bob, "/topic anything")
    assert bob_out.notices[-1] == "only #anon's creator or an operator can set its topic"


def test_names_of_this_or_another_room(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    bob, _ = person(hub, "bob")
    hub.handle_line(bob, "/join #rust")
    hub.handle_line(alice, "/names")
    assert out.notices[-1] == "2 in #lobby: alice, bob"
    hub.handle_line(alice, "/names #rust")
    assert out.notices[-1] == "1 in #rust: bob"
    hub.handle_line(alice, "/names #nope")
    assert out.notices[-1] == "no room called #nope; see /rooms"


def test_private_messages_and_reply_across_rooms(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    bob, bob_out = person(hub, "bob")
    hub.handle_line(bob, "/join #far")
    hub.handle_line(alice, "/msg bob are you there?")
    assert "are you there?" in bob_out.texts(Kind.PRIVATE)
    hub.handle_line(bob, "/reply yes, in #far")
    assert "yes, in #far" in out.texts(Kind.PRIVATE)
    hub.handle_line(alice, "/reply")
    assert out.notices[-1] == "usage: /reply TEXT"
    carol, c_out = person(hub, "carol")
    hub.handle_line(carol, "/reply hello?")
    assert c_out.notices[-1] == "nobody has written to you yet; use /msg NAME TEXT"


def test_room_creator_can_kick_from_that_room_only(hub: Hub) -> None:
    alice, out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    hub.handle_line(alice, "/join #mine")
    hub.handle_line(bob, "/join #mine")
    hub.handle_line(alice, "/kick bob not welcome")
    assert bob.rooms == ["#lobby"] and bob.room == "#lobby"
    assert "you were removed from #mine by alice: not welcome" in bob_out.notices
    assert hub.find("bob") is bob  # still connected
    assert "bob was removed from #mine by alice: not welcome" in out.texts(Kind.LEAVE)
    hub.handle_line(alice, "/join #lobby")
    hub.handle_line(alice, "/kick bob")
    assert out.notices[-1] == "only operators, and the creator of a room (in that room), can /kick"


def test_leaving_the_chat_is_announced_in_each_room(hub: Hub) -> None:
    alice, _ = person(hub, "alice")
    x, x_out = person(hub, "x")
    _y, y_out = person(hub, "y")
    hub.handle_line(alice, "/join #a")
    hub.handle_line(x, "/join #a")
    hub.leave(alice)
    assert "alice left" in x_out.texts(Kind.LEAVE)  # looking at #a
    assert "alice left" in y_out.texts(Kind.LEAVE)  # looking at #lobby


def test_rooms_are_remembered_on_reconnect(hub: Hub) -> None:
    alice, _ = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/join #a")
    hub.handle_line(alice, "/join #b")
    hub.handle_line(alice, "/join #a")
    hub.leave(alice)
    alice, _out = person(hub, "alice", ALICE)
    assert alice.rooms == ["#lobby", "#a", "#b"] and alice.room == "#a"


# ----------------------------------------------------------------- over SSH


async def test_two_rooms_keep_order_and_never_leak(server: Server) -> None:
    a1, a2 = await server.connect("a1"), await server.connect("a2")
    b1, b2 = await server.connect("b1"), await server.connect("b2")
    for c, room in ((a1, "#alpha"), (a2, "#alpha"), (b1, "#beta"), (b2, "#beta")):
        c.line(f"/join {room}")
        await c.wait_for(f"now in {room}")
    for n in range(30):
        a1.line(f"alpha {n}")
        b1.line(f"beta {n}")
        a2.line(f"alpha2 {n}")
        b2.line(f"beta2 {n}")
    for c, room in ((a1, "alpha"), (a2, "alpha"), (b1, "beta"), (b2, "beta")):
        await c.wait_for(f"{room} 29")
        await c.wait_for(f"{room}2 29")
        other = "beta" if room == "alpha" else "alpha"
        assert f"{other} " not in c.text
        seen = [int(n) for n in re.findall(rf"{room} (\d+)", c.text)]
        assert seen == list(range(30))
    orders = [re.findall(r"^(a\d: alpha2? \d+)$", c.text, re.M) for c in (a1, a2)]
    assert orders[0] == orders[1] and len(orders[0]) == 60


async def test_prompt_shows_the_room_and_mentions_reach_across_rooms(server: Server) -> None:
    alice = await server.connect("alice", pty=True, term="xterm")
    bob = await server.connect("bob")
    await alice.wait_for("[alice #lobby]")
    alice.send("/join #rust\r")
    await alice.wait_for("[alice #rust]")
    bob.line("hey alice, lunch?")
    await alice.wait_for("[#lobby] bob: hey alice, lunch?")
    bob.line("/msg alice psst")
    await alice.wait_for("[pm] bob -> alice: psst")


async def test_rooms_topics_history_and_memberships_survive_a_restart(tmp_path: Path, keys) -> None:
    db = str(tmp_path / "chat.db")
    app = App(make_config(tmp_path, db=db, shutdown_grace=0.5))
    (_, port), *_ = await app.start()
    server = Server(app, port, tmp_path)
    alice = await server.connect("alice", key=keys["alice"])
    alice.line("/join #rust")
    alice.line("/topic lifetimes")
    for n in range(3):
        alice.line(f"in rust {n}")
    alice.line("/join #empty")
    alice.line("/join #rust")
    await alice.wait_for("in rust 2")
    await alice.wait_for(lambda c: c.text.count("now in #rust") == 2)
    for c in server.clients:
        await c.close()
    await app.stop()

    app = App(make_config(tmp_path, db=db, shutdown_grace=0.5))
    (_, port), *_ = await app.start()
    server = Server(app, port, tmp_path)
    try:
        alice = await server.connect("alice", key=keys["alice"])
        await alice.wait_for("in rust 2")  # back where she was, with its history
        assert "#rust: lifetimes" in alice.text
        alice.line("/rooms")
        await alice.wait_for(" +#empty (1 online)")
        assert " *#rust (1 online) - lifetimes" in alice.text
        assert " +#lobby (1 online)" in alice.text
    finally:
        for c in server.clients:
            await c.close()
        await app.stop()


def test_room_creation_is_bounded() -> None:

    hub = Hub(MemoryStore(), chat_settings(max_rooms=5, max_rooms_per_person=2, rate_burst=1000))
    alice, out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    for n in range(3):
        hub.handle_line(alice, f"/join #a{n}")
    assert out.notices[-1] == "you have created 2 rooms, the most one person may"
    for n in range(3):
        hub.handle_line(bob, f"/join #b{n}")
    assert len(hub.rooms) == 5
    assert bob_out.notices[-1] == "the server has its limit of 5 rooms; join one of them (/rooms)"
    hub.handle_line(bob, "/join #a0")  # joining an existing room is always fine
    assert bob.room == "#a0"


def test_rooms_one_person_is_in_are_bounded() -> None:
    hub = Hub(MemoryStore(), chat_settings(max_rooms_joined=3, rate_burst=1000))
    alice, _ = person(hub, "alice", ALICE)
    bob, out = person(hub, "bob")
    for n in range(2):
        hub.handle_line(alice, f"/join #r{n}")
        hub.handle_line(bob, f"/join #r{n}")
    assert len(bob.rooms) == 3  # the lobby counts
    hub.handle_line(bob, "/join #r2")
    assert out.notices[-1] == "you are in 3 rooms, the most one person may be in; /part one of them first"
    assert bob.room == "#r1" and "#r2" not in bob.rooms
    hub.handle_line(bob, "/join #r0")  # switching between one's rooms is always fine
    assert bob.room == "#r0"
    hub.handle_line(bob, "/part #r1")
    hub.handle_line(bob, "/join #r2")
    assert bob.room == "#r2"


def test_rooms_shows_yours_then_the_busiest_and_finds_the_rest() -> None:
    from sshchat.chat.commands import ROOMS_SHOWN

    hub = Hub(MemoryStore(), chat_settings(
        max_rooms=100, max_rooms_per_person=100, max_rooms_per_address=100, keyless_room_share=1.0, rate_burst=1000
    ))
    maker, _ = person(hub, "maker")
    for n in range(40):
        hub.handle_line(maker, f"/join #r{n:02d}")
    hub.handle_line(maker, "/join #lobby")
    crowd = [person(hub, f"p{n}")[0] for n in range(3)]
    for p in crowd:
        hub.handle_line(p, "/join #r33")  # the busiest after the lobby
    alice, out = person(hub, "alice")
    hub.handle_line(alice, "/join #r39")
    hub.handle_line(alice, "/join #lobby")
    hub.handle_line(alice, "/rooms")
    lines = out.notices[-(ROOMS_SHOWN + 2):]
    assert lines[0] == "41 rooms (* you are here, + you are a member):"
    assert lines[1].startswith(" *#lobby") and lines[2].startswith(" +#r39")  # hers first
    assert lines[3].startswith("  #r33 (4 online)")  # then by people online
    assert lines[-1] == (
        f"... and {41 - ROOMS_SHOWN} more; /rooms TEXT lists the rooms with TEXT in their name"
    )
    hub.handle_line(alice, "/rooms R1")
    assert out.notices[-11] == "10 rooms with 'r1' in the name (* you are here, + you are a member):"
    assert [line.split()[0] for line in out.notices[-10:]] == [f"#r1{n}" for n in range(10)]
    hub.handle_line(alice, "/rooms zzz")
    assert out.notices[-1] == "0 rooms with 'zzz' in the name (* you are here, + you are a member):"
    hub.handle_line(alice, "/rooms \u212a" + "\x1b[2J" + "x" * 60)  # Kelvin sign = k; cleaned, cut short
    assert out.notices[-1] == (
        f"0 rooms with 'k{'x' * 39}' in the name (* you are here, + you are a member):"
    )
