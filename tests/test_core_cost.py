"""Work per login, per message and per command must not grow with the people
online, the rooms or the bans: the chat runs on one event loop, and any such
growth is a way for one client to freeze everyone (issue 14).

Counted, not timed: each test counts the calls that used to scale (parsing a
ban's network, walking the rooms, asking each person online who they are),
so it is exact on any machine.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from sshchat.chat import moderation as moderation_module
from sshchat.chat.hub import Hub
from sshchat.chat.member import Member
from sshchat.chat.room import Room
from sshchat.chat.rooms import Rooms
from sshchat.chat.store import Ban
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, person
from tests.support.counting import CountingDict
from tests.support.settings import chat_settings

ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")


def _key(n: int) -> str:
    return f"SHA256:person{n:05d}".ljust(50, "0")


def _hub(**changes: object) -> Hub:
    return Hub(MemoryStore(), chat_settings(rate_burst=100000, **changes), clock=Clock(), admins={ADMIN})


def test_a_login_looks_up_bans_without_parsing_each(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub()
    for n in range(2000):
        hub.moderation.ban(Ban("ip", f"10.{n // 256}.{n % 256}.1/32", None, "", "op", float(n)))
        hub.moderation.ban(Ban("fingerprint", _key(n), None, "", "op", float(n)))
    hub.moderation.ban(Ban("ip", "198.51.100.0/24", None, "range", "op", 1.0))
    parsed = 0
    real = ipaddress.ip_network

    def counting(*args: object, **kw: object) -> object:
        nonlocal parsed
        parsed += 1
        return real(*args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(moderation_module.ipaddress, "ip_network", counting)
    person(hub, "fine", _key(99999), address="203.0.113.9")
    with pytest.raises(Exception, match="banned"):
        person(hub, "banned", None, address="198.51.100.77")
    assert parsed == 0


def test_making_a_room_does_not_walk_every_room(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub(max_rooms=5000, max_rooms_per_person=5000, max_rooms_per_address=5000,
               max_keyed_rooms_per_address=5000, max_rooms_joined=5000)
    maker, _ = person(hub, "maker", _key(1), address="203.0.113.1")
    anon, _ = person(hub, "anon", address="203.0.113.2")
    for n in range(1000):
        hub.handle_line(maker if n % 2 else anon, f"/join #r{n}")
    walks = 0
    real = Rooms.__iter__

    def counting(self: Rooms) -> Iterator[Room]:
        nonlocal walks
        walks += 1
        return real(self)

    monkeypatch.setattr(Rooms, "__iter__", counting)
    hub.handle_line(maker, "/join #keyed")
    hub.handle_line(anon, "/join #keyless")
    assert hub.room("#keyed") is not None and hub.room("#keyless") is not None
    assert walks == 0


def test_finding_a_person_by_key_does_not_ask_everyone_online(monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub()
    admin, out = person(hub, "boss", ADMIN)
    for n in range(500):
        person(hub, f"p{n}", _key(n))
    asked = 0
    real = Member.person

    def counting(self: Member) -> str:
        nonlocal asked
        asked += 1
        return real.fget(self)  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr(Member, "person", property(counting))
    hub.handle_line(admin, f"/mute fingerprint:{_key(499)} 1m")
    assert out.notices[-1] == f"muted {_key(499)} until 1970-01-12 13:47 UTC"
    hub.handle_line(admin, "/ignore p498")
    hub.handle_line(admin, "/ignore")  # lists each by their name online
    hub.handle_line(admin, f"/ban fingerprint:{_key(497)}")  # ends their session, and only theirs
    assert out.notices[-1] == f"banned {_key(497)}"
    assert hub.find("p497") is None and hub.find("p496") is not None
    assert asked < 20


class _WatchedMembers(dict[str, Member]):
    """A room's members that count the entries walked other than to deliver
    (``values``, which a notice of the rename walks once, as any line does)."""

    walked = 0

    def items(self):  # type: ignore[no-untyped-def, override]
        _WatchedMembers.walked += len(self)
        return super().items()

    def keys(self):  # type: ignore[no-untyped-def, override]
        _WatchedMembers.walked += len(self)
        return super().keys()

    def __iter__(self):  # type: ignore[no-untyped-def]
        _WatchedMembers.walked += len(self)
        return super().__iter__()


def test_a_rename_does_not_copy_everyone_in_its_rooms() -> None:
    hub = _hub()
    for n in range(500):
        person(hub, f"p{n}")
    renamer, _ = person(hub, "renamer", _key(999), address="203.0.113.9")
    lobby = hub.room("#lobby")
    assert lobby is not None
    lobby.members = _WatchedMembers(lobby.members)
    _WatchedMembers.walked = 0
    hub.handle_line(renamer, "/nick renamed")
    assert hub.find("renamed") is renamer and hub.find("renamer") is None
    assert [m.name for m in hub.people_in(lobby) if m is renamer] == ["renamed"]
    assert lobby.members["renamed"] is renamer and "renamer" not in lobby.members
    assert _WatchedMembers.walked < 50


class _WatchedIndex(dict[str, set[str]]):
    """Rooms' index of who remembers them, counting the entries touched."""

    touched = 0

    def setdefault(self, key, default=None):  # type: ignore[no-untyped-def, override]
        _WatchedIndex.touched += 1
        return super().setdefault(key, default)

    def get(self, key, default=None):  # type: ignore[no-untyped-def, override]
        _WatchedIndex.touched += 1
        return super().get(key, default)


def test_switching_rooms_does_not_reindex_every_room_one_belongs_to() -> None:
    hub = _hub(max_rooms=5000, max_rooms_per_person=5000, max_keyed_rooms_per_address=5000, max_rooms_joined=5000)
    member, _ = person(hub, "joiner", _key(1), address="203.0.113.1")
    for n in range(300):
        hub.handle_line(member, f"/join #r{n}")
    rooms = hub._rooms  # the index is what is counted
    rooms._remembered_in = _WatchedIndex(rooms._remembered_in)
    _WatchedIndex.touched = 0
    hub.handle_line(member, "/join #r7")
    hub.handle_line(member, "/join #fresh")
    hub.handle_line(member, "/part #r3")
    assert [hub.room_of(member).name, len(member.rooms)] == ["#fresh", 301]
    assert _WatchedIndex.touched < 20


def test_the_heartbeats_look_at_the_other_nodes_does_not_walk_their_people() -> None:
    """Every second the roster asks which nodes are mirrored here (to watch
    their heartbeats): it walked every person of every other node."""
    from sshchat.chat.bus import Arrived, Departed

    hub = _hub()
    hub.remote._by_session = CountingDict()  # type: ignore[assignment]
    for n in range(2000):
        node = "b" if n % 2 else "c"
        hub.receive(Arrived(node, n, f"p{n}", None, "10.0.0.1", "#lobby", ["#lobby"], None, 1.0, 1.0, n // 2 + 1))
    hub.receive(Departed("c", 0, 1001))
    CountingDict.walks = 0
    assert hub.mirrored_nodes() == {"b", "c"}
    assert CountingDict.walks == 0
    hub.receive(Departed("b", None))
    assert hub.mirrored_nodes() == {"c"}
