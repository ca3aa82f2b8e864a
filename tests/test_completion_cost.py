"""Tab does not look at everyone online, or every room, on each press (issue 14)."""

from __future__ import annotations

from sshchat.chat import completion
from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, person
from tests.support.counting import CountingDict
from tests.support.settings import chat_settings


def test_tab_presses_do_not_walk_everyone_online_or_every_room() -> None:
    hub = Hub(MemoryStore(), chat_settings(max_per_address=1000))
    me, _ = person(hub, "me")
    for i in range(300):
        person(hub, f"user{i}")
    hub.handle_line(me, "/join #rust")
    presence, rooms = hub._presence, hub._rooms
    presence.members = CountingDict(presence.members)
    rooms.by_key = CountingDict(rooms.by_key)
    CountingDict.walks = 0
    for _ in range(200):
        assert complete(hub, me, "zz")[1] == []
        assert complete(hub, me, "/join #zz")[1] == []
    assert CountingDict.walks <= 4  # the index is built once (per count change or REFRESH), not per press
    start, found = complete(hub, me, "user29")
    assert start == 0 and sorted(found) == sorted(["user29: ", *[f"user29{d}: " for d in range(10)]])
    assert complete(hub, me, "/join #ru") == (6, ["#rust"])


def test_the_index_follows_joins_leaves_and_renames(monkeypatch) -> None:
    hub = Hub(MemoryStore(), chat_settings())
    me, _ = person(hub, "me")
    assert complete(hub, me, "bo")[1] == []
    bob, _ = person(hub, "bob")
    assert complete(hub, me, "bo")[1] == ["bob: "]  # a join changes the count: seen at once
    hub.handle_line(bob, "/nick robert")
    monkeypatch.setattr(completion, "REFRESH", 0.0)  # a rename keeps the count: seen after REFRESH
    assert complete(hub, me, "bo")[1] == []
    assert complete(hub, me, "ro")[1] == ["robert: "]
    hub.leave(bob)
    assert complete(hub, me, "ro")[1] == []


def test_many_matches_are_capped() -> None:
    hub = Hub(MemoryStore(), chat_settings(max_per_address=1000))
    me, _ = person(hub, "me")
    for i in range(200):
        person(hub, f"user{i}")
    assert len(complete(hub, me, "user")[1]) == completion.MAX_CANDIDATES


def test_tab_offers_the_most_recently_active_of_all_who_match() -> None:
    """More match than are offered: the most recent speakers, not the first by name."""
    clock = Clock()
    hub = Hub(MemoryStore(), chat_settings(max_per_address=1000), clock=clock)
    me, _ = person(hub, "me")
    people = [person(hub, f"user{i:02d}")[0] for i in range(80)]
    for p in reversed(people):  # user79 speaks first, user00 last
        clock.now += 1
        hub.handle_line(p, "/away back soon")
    found = complete(hub, me, "user")[1]
    assert found == [f"user{i:02d}: " for i in range(completion.MAX_CANDIDATES)]
    clock.now += 1
    hub.handle_line(people[79], "/away again")  # the last by name is now the most recent
    assert complete(hub, me, "use")[1][0] == "user79: "


def test_a_rename_is_offered_at_once() -> None:
    hub = Hub(MemoryStore(), chat_settings())
    me, _ = person(hub, "me")
    bob, _ = person(hub, "bob")
    person(hub, "carol")
    assert complete(hub, me, "bo")[1] == ["bob: "]
    hub.handle_line(bob, "/nick robert")  # same count of people: seen at once all the same
    assert complete(hub, me, "ro")[1] == ["robert: "]
    assert complete(hub, me, "bo")[1] == []
