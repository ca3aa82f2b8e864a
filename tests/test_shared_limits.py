"""Shared limits that throwaway identities must not use up (issue 14, point 4):
rooms made without a key, names held by one key, and mutes, /reply and
/ignore that follow the person rather than a name someone else can take."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import sshchat.chat.rooms as rooms_module
from sshchat.chat.admission import JoinRefused
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.room import RoomInfo
from sshchat.chat.store import Change, DropRoom, Saved, SetMemberships, Snapshot
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, person
from tests.support.settings import chat_settings

OP = "SHA256:operator-key-000000000000000000000000000000"
ALICE = "SHA256:alice-key-00000000000000000000000000000000"
BOB = "SHA256:bob-key-0000000000000000000000000000000000"


def _hub(clock: Clock | None = None, store: MemoryStore | None = None, **changes: object) -> Hub:
    settings = chat_settings(rate_burst=1000, **changes)
    return Hub(store or MemoryStore(), settings, clock=clock or Clock(), admins={OP})


# ------------------------------------------------------------------ rooms


def test_keyless_people_from_one_address_cannot_make_rooms_past_its_cap() -> None:
    hub = _hub(max_rooms=100, max_rooms_per_person=20, max_rooms_per_address=3)
    for n in range(3):  # a fresh name each time, as a throwaway identity would
        maker, _ = person(hub, f"anon{n}", address="2001:db8:1:2::10")
        hub.handle_line(maker, f"/join #r{n}")
    other, out = person(hub, "anon9", address="2001:db8:1:2:ffff::99")  # the same /64
    hub.handle_line(other, "/join #more")
    assert hub.room("#more") is None
    assert "from your address have 3 rooms" in out.notices[-1]
    assert "SSH key" in out.notices[-1]
    elsewhere, _out2 = person(hub, "far", address="2001:db8:9::1")  # another /64 may
    hub.handle_line(elsewhere, "/join #more")
    assert hub.room("#more") is not None


def test_the_48_around_many_64s_shares_ten_times_one_addresss_rooms() -> None:
    """Walking through the /64s of one /48 (65,536 of them) buys no more than
    ten addresses' worth of keyless rooms."""
    hub = _hub(max_rooms=1000, max_rooms_per_person=20, max_rooms_per_address=1)
    for n in range(10):  # one room from each of ten /64s of 2001:db8:1::/48
        maker, _ = person(hub, f"anon{n}", address=f"2001:db8:1:{n:x}::1")
        hub.handle_line(maker, f"/join #r{n}")
        assert hub.room(f"#r{n}") is not None
    eleventh, out = person(hub, "anon10", address="2001:db8:1:ff::1")  # a fresh /64, the same /48
    hub.handle_line(eleventh, "/join #more")
    assert hub.room("#more") is None
    assert "from your address" in out.notices[-1]
    other_site, _out = person(hub, "far", address="2001:db8:2::1")
    hub.handle_line(other_site, "/join #more")
    assert hub.room("#more") is not None


def test_a_person_with_a_key_can_create_a_room_when_keyless_ones_are_used_up() -> None:
    hub = _hub(max_rooms=10, keyless_room_share=0.5, max_rooms_per_address=100)
    for n in range(10):
        anon, out = person(hub, f"anon{n}", address=f"198.51.100.{n}")
        hub.handle_line(anon, f"/join #r{n}")
    assert len(hub.rooms) == 1 + 5  # the lobby and keyless people's share
    assert "rooms made without a key are at their limit of 5" in out.notices[-1]
    alice, _alice_out = person(hub, "alice", ALICE, address="198.51.100.200")
    hub.handle_line(alice, "/join #keyed")
    assert alice.room == "#keyed"


def _key(n: int) -> str:
    """A fresh (throwaway) key, as anyone can make one per room."""
    return f"SHA256:throwaway-{n:04d}".ljust(50, "0")


def test_fresh_keys_from_one_address_cannot_make_rooms_past_its_cap() -> None:
    """A new key costs nothing: rooms made with keys are capped per address
    (and the /48 around it) too, at a larger cap than keyless ones."""
    hub = _hub(max_rooms=1000, max_rooms_per_person=20, max_keyed_rooms_per_address=4)
    for n in range(4):
        maker, _ = person(hub, f"key{n}", _key(n), address="2001:db8:1:2::10")
        hub.handle_line(maker, f"/join #r{n}")
        assert hub.room(f"#r{n}") is not None
    other, out = person(hub, "key9", _key(9), address="2001:db8:1:2:ffff::99")  # the same /64
    hub.handle_line(other, "/join #more")
    assert hub.room("#more") is None
    assert out.notices[-1] == (
        "4 rooms were created with keys from your address, the most one address may; join one of them (/rooms)"
    )
    elsewhere, _ = person(hub, "far", _key(10), address="2001:db8:9::1")  # another /48 may
    hub.handle_line(elsewhere, "/join #more")
    assert hub.room("#more") is not None


def test_the_last_rooms_go_one_per_address_so_a_newcomer_with_a_key_can_make_one() -> None:
    hub = _hub(max_rooms=20, max_rooms_per_person=20, max_keyed_rooms_per_address=100, room_reserve=0.25)
    for n in range(14):  # up to the reserve (20 - 5 rooms, the lobby included)
        maker, _ = person(hub, f"key{n}", _key(n), address="198.51.100.1")
        hub.handle_line(maker, f"/join #r{n}")
    assert len(hub.rooms) == 15
    greedy, out = person(hub, "greedy", _key(99), address="198.51.100.1")
    hub.handle_line(greedy, "/join #more")
    assert hub.room("#more") is None
    assert "the last 5 are kept for people whose address has created none" in out.notices[-1]
    newcomer, _ = person(hub, "newcomer", _key(100), address="203.0.113.5")
    hub.handle_line(newcomer, "/join #mine")
    assert newcomer.room == "#mine"


def test_the_rooms_per_address_caps_hold_across_a_restart(tmp_path: Path) -> None:
    from sshchat.store.sqlite import SQLiteStore

    db = str(tmp_path / "c.db")
    settings = chat_settings(rate_burst=1000, max_rooms_per_address=2, max_keyed_rooms_per_address=2)
    store = SQLiteStore(db)
    hub = Hub(store, settings)
    for n in range(2):
        anon, _ = person(hub, f"anon{n}", address="198.51.100.7")
        hub.handle_line(anon, f"/join #anon{n}")
        keyed, _ = person(hub, f"key{n}", _key(n), address="198.51.100.7")
        hub.handle_line(keyed, f"/join #key{n}")
    store.close()
    store = SQLiteStore(db)
    hub = Hub(store, settings)
    anon, anon_out = person(hub, "anon9", address="198.51.100.7")
    hub.handle_line(anon, "/join #after")
    assert "from your address have 2 rooms" in anon_out.notices[-1]
    keyed, keyed_out = person(hub, "key9", _key(9), address="198.51.100.7")
    hub.handle_line(keyed, "/join #after")
    assert "2 rooms were created with keys from your address" in keyed_out.notices[-1]
    assert hub.room("#after") is None
    store.close()


def test_an_empty_room_made_without_a_key_expires_and_a_keyed_one_stays() -> None:
    clock = Clock()
    store = MemoryStore()
    hub = _hub(clock, store, keyless_room_ttl=600)
    anon, _anon_out = person(hub, "anon", address="198.51.100.1")
    alice, _ = person(hub, "alice", ALICE)
    hub.handle_line(anon, "/join #throwaway")
    hub.handle_line(alice, "/join #kept")
    hub.handle_line(anon, "/part #throwaway")
    hub.handle_line(alice, "/part #kept")
    hub.tick()
    clock.now += 599
    hub.tick()
    assert hub.room("#throwaway") is not None  # not yet
    clock.now += 2
    hub.tick()
    assert hub.room("#throwaway") is None
    assert hub.room("#kept") is not None
    assert DropRoom("#throwaway", "#throwaway", expired=True) in store.changes
    hub.handle_line(anon, "/join #throwaway")  # the name is free again, and the room new
    assert anon.room == "#throwaway"


def test_a_room_in_use_does_not_expire() -> None:
    clock = Clock()
    hub = _hub(clock, keyless_room_ttl=600)
    anon, _ = person(hub, "anon", address="198.51.100.1")
    hub.handle_line(anon, "/join #busy")
    for _ in range(5):
        clock.now += 600
        hub.tick()
    assert hub.room("#busy") is not None


def test_rmroom_moves_people_to_the_lobby_and_is_audited() -> None:
    store = MemoryStore()
    hub = _hub(store=store)
    op, op_out = person(hub, "op", OP)
    alice, alice_out = person(hub, "alice", ALICE)
    bob, _bob_out = person(hub, "bob")
    hub.handle_line(alice, "/join #spam")
    hub.handle_line(bob, "/join #spam")
    hub.handle_line(bob, "hello")
    hub.handle_line(bob, "/rmroom #spam")  # not an operator
    assert hub.room("#spam") is not None
    hub.handle_line(op, "/rmroom #SPAM flooded")
    assert hub.room("#spam") is None
    assert alice.room == "#lobby" and alice.rooms == ["#lobby"]
    assert bob.room == "#lobby" and "#spam" not in bob.rooms
    assert "#spam was removed by op: flooded; you are in #lobby" in alice_out.notices
    assert op_out.notices[-1] == "removed #spam and its history; 2 people moved to #lobby"
    audits = [c for c in store.changes if getattr(c, "action", None) == "rmroom"]
    assert audits and audits[-1].target == "#spam" and audits[-1].detail == "flooded"
    assert DropRoom("#spam", "#spam") in store.changes
    hub.handle_line(alice, "/join #spam")  # made anew: no old history
    assert not any(m.text == "hello" for m in hub.room_of(alice).recent(50))


class _Reads(dict[str, list[tuple[str, bool]]]):
    """Remembered memberships that count how many of them are read."""

    reads = 0

    def __getitem__(self, who: str) -> list[tuple[str, bool]]:
        _Reads.reads += 1
        return super().__getitem__(who)

    def get(self, who: str, default: object = None) -> object:
        _Reads.reads += 1
        return super().get(who, default)

    def items(self):
        for item in super().items():
            _Reads.reads += 1
            yield item


class _ManyRemembered(MemoryStore):
    """A store that remembers the rooms of many people who are not online."""

    def load(self, recent_per_room: int) -> Snapshot:
        rooms = [RoomInfo("#gone", creator="op", creator_fp=OP), RoomInfo("#other", creator="op", creator_fp=OP)]
        memberships = {f"fingerprint:SHA256:k{n}": [("#lobby", False), ("#other", True)] for n in range(20_000)}
        memberships["fingerprint:SHA256:was-in-gone"] = [("#lobby", False), ("#gone", True)]
        return Snapshot(rooms=rooms, memberships=memberships)


def test_removing_a_room_reads_only_the_memberships_of_its_own_people() -> None:
    """Removing a room (an operator's, or keyless rooms expiring several at
    a tick) must not walk everyone ever remembered: the chat waits for it."""
    hub = _hub(store=_ManyRemembered())
    rooms = hub._rooms
    rooms._memberships = _Reads(rooms._memberships)
    op, op_out = person(hub, "op", OP)
    _Reads.reads = 0
    hub.handle_line(op, "/rmroom #gone")
    assert op_out.notices[-1] == "removed #gone and its history; 0 people moved to #lobby"
    assert _Reads.reads < 10
    back, _ = person(hub, "back", "SHA256:was-in-gone")  # their place in it forgotten
    assert back.rooms == ["#lobby"] and back.room == "#lobby"
    other, _ = person(hub, "other", "SHA256:k7")
    assert other.rooms == ["#lobby", "#other"] and other.room == "#other"


def test_keyless_peoples_rooms_are_not_stored_and_are_remembered_in_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A keyless name costs nothing: its rooms must not grow the store, or
    memory, without bound; the latest ones are still remembered."""
    monkeypatch.setattr(rooms_module, "KEYLESS_REMEMBERED", 5, raising=False)
    store = MemoryStore()
    hub = _hub(store=store)
    for n in range(50):
        anon, _ = person(hub, f"anon{n}", address=f"198.51.100.{n}")
        hub.handle_line(anon, "/join #open")
        hub.leave(anon)
    assert not [c for c in store.changes if isinstance(c, SetMemberships) and c.identity.startswith("name:")]
    assert len(hub._rooms._memberships) <= 5
    back, _ = person(hub, "anon49")  # came back soon: still in their rooms
    assert back.rooms == ["#lobby", "#open"] and back.room == "#open"
    first, _ = person(hub, "anon0")  # long gone: forgotten
    assert first.rooms == ["#lobby"]
    keyed, _ = person(hub, "alice", ALICE)
    hub.handle_line(keyed, "/join #open")
    assert SetMemberships(f"fingerprint:{ALICE}", (("#lobby", False), ("#open", True))) in store.changes


class _SlowDrop(MemoryStore):
    """A store that keeps a room's drop only when the test says so, as a
    busy disk would: lines may come meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Callable[[Exception | None], None]] = []

    def save(self, change: Change, done: Saved | None = None) -> None:
        if not isinstance(change, DropRoom) or done is None:
            super().save(change, done)
            return
        self.changes.append(change)
        self.held.append(done)

    def finish(self, error: Exception | None = None) -> None:
        for done in self.held:
            done(error)
        self.held.clear()


def test_nothing_more_is_kept_for_a_room_while_it_is_being_removed() -> None:
    """Kept after the store dropped the room, a line would come back with a
    room made again under its name: it is refused, and its sender told."""
    store = _SlowDrop()
    hub = _hub(store=store)
    op, op_out = person(hub, "op", OP)
    alice, alice_out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    hub.handle_line(alice, "/join #doomed")
    hub.handle_line(op, "/rmroom #doomed")
    hub.handle_line(alice, "said too late")
    assert alice_out.notices[-1] == "#doomed is being removed; your message was not sent"
    hub.handle_line(alice, "/topic too late")
    assert alice_out.notices[-1] == "#doomed is being removed; the topic was not set"
    hub.handle_line(bob, "/join #doomed")
    assert bob_out.notices[-1] == "#doomed is being removed; join another room (/rooms)"
    hub.handle_line(op, "/rmroom #doomed")
    assert op_out.notices[-1] == "#doomed is being removed already"
    assert len(store.held) == 1
    store.finish()
    assert not any(m.text == "said too late" for m in store.messages)
    assert not any(isinstance(c, RoomInfo) and c.topic == "too late" for c in store.changes)
    hub.handle_line(alice, "/join #doomed")  # made anew
    hub.handle_line(alice, "/rmroom #doomed")  # (not hers to remove)
    hub.handle_line(op, "/rmroom #doomed")
    store.finish(OSError("database or disk is full"))  # not dropped: open again
    hub.handle_line(alice, "still here")
    assert "still here" in alice_out.texts()


def test_the_lobby_cannot_be_removed() -> None:
    hub = _hub()
    op, out = person(hub, "op", OP)
    hub.handle_line(op, "/rmroom #lobby")
    assert hub.room("#lobby") is not None
    assert out.notices[-1] == "#lobby cannot be removed: everyone belongs to it"


# ------------------------------------------------------------------ names


def test_a_key_holds_at_most_names_per_key_names_and_is_told_clearly() -> None:
    hub = _hub(names_per_key=3)
    alice, out = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/nick alice2")
    hub.handle_line(alice, "/nick alice3")
    assert hub.names.binding("alice2") is not None  # each /nick registers the name for good
    hub.handle_line(alice, "/nick alice4")
    assert alice.name == "alice3"
    assert hub.names.binding("alice4") is None
    assert out.notices[-1] == (
        "your key already holds 3 names (at most 3): alice, alice2, alice3; "
        "use one of them, or ask an operator to /unregister one"
    )
    hub.handle_line(alice, "/nick alice")  # a name it holds is always fine
    assert alice.name == "alice"
    bob, _ = person(hub, "bob")
    hub.handle_line(bob, "/nick alice4")  # the refused name stays free for others
    assert bob.name == "alice4"


def test_logging_in_under_a_fourth_name_is_refused() -> None:
    hub = _hub(names_per_key=2)
    alice, _ = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/nick alice2")
    hub.leave(alice)
    with pytest.raises(JoinRefused, match="your key already holds 2 names"):
        person(hub, "newname", ALICE)
    again, _ = person(hub, "alice2", ALICE)
    assert again.name == "alice2"


def test_one_address_registers_at_most_names_per_address_per_hour_with_fresh_keys() -> None:
    """Each new key has a fresh names_per_key; the address does not."""
    clock = Clock()
    hub = _hub(clock, names_per_address_per_hour=2)
    first, first_out = person(hub, "first", _key(1), address="198.51.100.7")
    person(hub, "second", _key(2), address="198.51.100.7")
    _third, third_out = person(hub, "third", _key(3), address="198.51.100.7")  # let in, not registered
    assert hub.names.binding("second") is not None and hub.names.binding("third") is None
    assert (
        'your name "third" was not registered to your key, so it is yours for this session only: '
        "2 names were registered from your address in the last hour (at most 2); "
        "try again later, or use a name your key already holds"
    ) in third_out.notices
    hub.handle_line(first, "/nick renamed")
    assert first.name == "first" and hub.names.binding("renamed") is None
    assert first_out.notices[-1].startswith('the name "renamed" cannot be registered to your key: 2 names')
    person(hub, "far", _key(4), address="203.0.113.9")  # another address may
    assert hub.names.binding("far") is not None
    clock.now += 3601  # an hour on, the address may again
    hub.handle_line(first, "/nick renamed")
    assert first.name == "renamed" and hub.names.binding("renamed") is not None


def test_an_unregistered_name_frees_a_place() -> None:
    hub = _hub(names_per_key=1)
    op, _ = person(hub, "op", OP)
    alice, out = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/nick alicia")
    assert alice.name == "alice" and "holds 1 name (at most 1): alice;" in out.notices[-1]
    hub.handle_line(op, "/unregister alice")
    hub.handle_line(alice, "/nick alicia")
    assert alice.name == "alicia" and hub.names.binding("alicia") is not None


# ------------------------------------------- what follows the person, not a name


def test_a_keyless_mute_follows_the_person_not_the_name() -> None:
    hub = _hub()
    op, op_out = person(hub, "op", OP)
    troll, _ = person(hub, "troll")
    hub.handle_line(op, "/mute troll")
    hub.leave(troll)  # the muted person leaves; someone else takes the name
    innocent, _ = person(hub, "troll")
    hub.handle_line(innocent, "hello from the new troll")
    assert "hello from the new troll" in op_out.texts()
    hub.handle_line(op, "/mute troll")  # a fresh mute for this one...
    hub.handle_line(innocent, "/nick other")  # ...cannot be shed by a rename
    hub.handle_line(innocent, "still here")
    assert "still here" not in op_out.texts()


def test_a_keyless_mute_holds_the_address_when_they_reconnect() -> None:
    """A keyless person's new session is a new person: without more, a mute
    would end at a reconnection. Their address stays muted as long."""
    clock = Clock()
    hub = _hub(clock)
    op, op_out = person(hub, "op", OP)
    troll, troll_out = person(hub, "troll", address="2001:db8:5:6::1")
    hub.handle_line(op, "/mute troll 10m spam")
    hub.leave(troll)
    back, back_out = person(hub, "newname", address="2001:db8:5:6::2")  # same /64, a new session and name
    assert back_out.notices[-1] == "you are muted until 1970-01-12 13:56 UTC: nobody else sees your messages"
    hub.handle_line(back, "I am back")
    assert "I am back" not in op_out.texts() and "I am back" in back_out.texts()
    elsewhere, _ = person(hub, "other", address="2001:db8:7::1")  # another /64 is not muted
    hub.handle_line(elsewhere, "hello")
    assert "hello" in op_out.texts()
    hub.handle_line(op, "/unmute newname")  # lifts what the address holds
    assert op_out.notices[-1] == "unmuted newname"
    hub.handle_line(back, "heard now")
    assert "heard now" in op_out.texts()
    hub.handle_line(op, "/mute newname 10m")
    hub.leave(back)
    clock.now += 601  # for the mute's duration only
    again, again_out = person(hub, "again", address="2001:db8:5:6::3")
    hub.handle_line(again, "free again")
    assert "free again" in op_out.texts()
    assert not any("muted" in n for n in again_out.notices)
    assert troll_out.notices  # (the first session was told when muted)


def test_a_keyless_person_who_left_can_be_unmuted_by_name() -> None:
    """Their session's mute ended with it; the mute their address holds
    (for good, without a duration) is what /unmute NAME must lift."""
    hub = _hub()
    op, op_out = person(hub, "op", OP)
    troll, _ = person(hub, "troll", address="203.0.113.9")
    hub.handle_line(op, "/mute troll spam")
    hub.leave(troll)
    hub.handle_line(op, "/unmute troll")
    assert op_out.notices[-1] == "unmuted troll"
    back, back_out = person(hub, "troll2", address="203.0.113.9")
    hub.handle_line(back, "heard again")
    assert "heard again" in op_out.texts()
    assert not any("muted" in n for n in back_out.notices)
    hub.handle_line(op, "/unmute troll")  # nothing left to lift
    assert op_out.notices[-1] == "no one called troll is online or registered"


def test_reply_goes_to_the_person_who_wrote_not_whoever_took_their_name() -> None:
    hub = _hub()
    alice, alice_out = person(hub, "alice", ALICE)
    bob, bob_out = person(hub, "bob")
    hub.handle_line(bob, "/msg alice are you there?")
    hub.handle_line(bob, "/nick robert")  # renamed: /reply still reaches him
    hub.handle_line(alice, "/reply yes")
    assert "yes" in bob_out.texts(Kind.PRIVATE)
    hub.handle_line(bob, "/nick bob")
    hub.leave(bob)
    _impostor, impostor_out = person(hub, "bob")  # someone else takes the name
    hub.handle_line(alice, "/reply my secret")
    assert "my secret" not in impostor_out.texts(Kind.PRIVATE)
    assert alice_out.notices[-1] == "bob, who wrote to you, has left; use /msg NAME TEXT"


def test_reply_finds_a_key_holder_who_came_back() -> None:
    hub = _hub()
    alice, _ = person(hub, "alice")
    bob, _ = person(hub, "bob", BOB)
    hub.handle_line(bob, "/msg alice hi")
    hub.leave(bob)
    bob, bob_out = person(hub, "bob", BOB)
    hub.handle_line(alice, "/reply hello again")
    assert "hello again" in bob_out.texts(Kind.PRIVATE)


def test_ignore_follows_the_person_through_a_rename_and_not_the_next_holder() -> None:
    hub = _hub()
    alice, alice_out = person(hub, "alice", ALICE)
    pest, _ = person(hub, "pest")
    hub.handle_line(alice, "/ignore pest")
    hub.handle_line(pest, "/nick fresh")  # a new name does not shake it off
    hub.handle_line(pest, "can you hear me")
    hub.handle_line(pest, "/msg alice psst")
    assert "can you hear me" not in alice_out.texts()
    assert "psst" not in alice_out.texts(Kind.PRIVATE)
    newcomer, _ = person(hub, "pest")  # someone else now called pest is heard
    hub.handle_line(newcomer, "I am new here")
    assert "I am new here" in alice_out.texts()
    hub.handle_line(alice, "/ignore")
    assert alice_out.notices[-1] == "ignoring: fresh"
    hub.handle_line(alice, "/unignore fresh")
    hub.handle_line(pest, "now?")
    assert "now?" in alice_out.texts()


def test_ignoring_a_key_holds_across_their_sessions() -> None:
    hub = _hub()
    alice, alice_out = person(hub, "alice", ALICE)
    bob, _ = person(hub, "bob", BOB)
    hub.handle_line(alice, "/ignore bob")
    hub.leave(bob)
    bob, _ = person(hub, "bob", BOB)
    hub.handle_line(bob, "back again")
    assert "back again" not in alice_out.texts()
    hub.leave(bob)
    hub.handle_line(alice, "/unignore bob")  # offline: by the name's key
    assert alice_out.notices[-1] == "no longer ignoring bob"


def test_unignore_of_a_key_holder_online_under_their_registered_name() -> None:
    hub = _hub()
    alice, alice_out = person(hub, "alice", ALICE)
    _bob, _ = person(hub, "bob", BOB)
    hub.handle_line(alice, "/ignore bob")
    hub.handle_line(alice, "/unignore bob")  # online, and his name's key: one person
    assert alice_out.notices[-1] == "no longer ignoring bob" and alice.prefs.ignores == ()


# ------------------------------------------------------------- across a restart


def test_a_removed_room_stays_removed_after_a_restart(tmp_path: Path) -> None:
    from sshchat.store.sqlite import SQLiteStore

    db = str(tmp_path / "c.db")
    store = SQLiteStore(db)
    hub = Hub(store, chat_settings(), admins={OP})
    op, _ = person(hub, "op", OP)
    alice, _ = person(hub, "alice", ALICE)
    hub.handle_line(alice, "/join #gone")
    hub.handle_line(alice, "said in #gone")
    hub.handle_line(op, "/rmroom #gone")
    hub.handle_line(alice, "/join #kept")
    hub.handle_line(alice, "said in #kept")
    store.close()
    store = SQLiteStore(db)
    hub = Hub(store, chat_settings(), admins={OP})
    alice, _ = person(hub, "alice", ALICE)
    assert hub.room("#gone") is None and hub.room("#kept") is not None
    assert alice.rooms == ["#lobby", "#kept"]
    store.close()
    with sqlite3.connect(db) as check:  # its history was dropped, other rooms' kept
        kept = {room for (room,) in check.execute("SELECT DISTINCT room FROM messages WHERE kind = 'chat'")}
    assert kept == {"#kept"}


def test_ignores_kept_by_name_become_the_names_key(tmp_path: Path) -> None:
    from sshchat.chat.store import Binding, SetPrefs
    from sshchat.store.sqlite import SQLiteStore

    db = str(tmp_path / "c.db")
    store = SQLiteStore(db)
    store.save(Binding("bob", "SHA256:bob", 0.0))
    store.save(SetPrefs(ALICE, '{"ignores": ["bob", "nobody"]}'))
    store.close()
    store = SQLiteStore(db)
    hub = Hub(store, chat_settings())
    alice, _ = person(hub, "alice", ALICE)
    assert alice.prefs.ignores == ("fingerprint:SHA256:bob",)
    store.close()
