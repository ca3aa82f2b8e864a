"""``sshchat admin unban`` reaches running servers (issue 16): each one polls
the database's counter of outside changes and reads the bans again when it
moved, without undoing a /ban or /unban made here while it read.

The hub on the in-memory store, whose read of the bans a test can hold open
(as the store thread would while a /ban arrives); the store gets the changes
the tool writes (Unban, then ChangedOutside). The real runs (a server on
SQLite, the tool as a process; two nodes on PostgreSQL and Redis) are in
test_admin.py and below.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sshchat.chat.bus import StateChanged
from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.moderation import Moderation
from sshchat.chat.outside import merge
from sshchat.chat.store import Ban, ChangedOutside, Unban
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder
from tests.support.settings import chat_settings

ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")
BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")
CAROL = "SHA256:carolKeyFingerprint".ljust(50, "0")
DAVE = "SHA256:daveKeyFingerprint".ljust(50, "0")


class HeldStore(MemoryStore):
    """The in-memory store, whose reads of the bans wait until the test answers them."""

    def __init__(self) -> None:
        super().__init__()
        self.serial_reads = 0
        self.held: list[Callable[[list[Ban] | None], None]] = []

    def outside_serial(self, done: Callable[[int | None], None]) -> None:
        self.serial_reads += 1
        super().outside_serial(done)

    def bans(self, done: Callable[[list[Ban] | None], None]) -> None:
        self.held.append(done)

    def answer(self) -> None:
        """Answer the oldest held read with the bans kept now."""
        done = self.held.pop(0)
        super().bans(done)

    def kept_now(self) -> list[Ban]:
        found: list[list[Ban] | None] = []
        super().bans(found.append)
        assert found[0] is not None
        return found[0]


def lets_in(hub: Hub, name: str, fp: str, address: str) -> bool:
    try:
        member = hub.join(name, fp, Recorder(), address)
    except JoinRefused:
        return False
    hub.leave(member)
    return True


def admin_unban(store: MemoryStore, ban_kind: str, value: str, t: float) -> None:
    """What ``sshchat admin unban`` writes: the unban, its audit entry, then the counter."""
    store.save(Unban(ban_kind, value))
    store.save(ChangedOutside(t))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> HeldStore:
    return HeldStore()


@pytest.fixture
def hub(store: HeldStore, clock: Clock) -> Hub:
    return Hub(store, chat_settings(), clock=clock, admins={ADMIN})


def ban(hub: Hub, admin: object, name: str, fp: str, address: str) -> None:
    member = hub.join(name, fp, Recorder(), address)
    hub.handle_line(admin, f"/ban {name}")  # type: ignore[arg-type]
    assert name not in hub.members, f"{name} still online after /ban"
    del member


def test_an_unban_by_the_tool_lets_the_person_in_at_the_next_poll(hub: Hub, store: HeldStore, clock: Clock) -> None:
    boss = hub.join("boss", ADMIN, Recorder(), "192.0.2.1")
    ban(hub, boss, "bob", BOB, "198.51.100.7")
    assert not lets_in(hub, "bob", BOB, "198.51.100.7")
    admin_unban(store, "fingerprint", BOB, clock.now)
    admin_unban(store, "ip", "198.51.100.7/32", clock.now)
    clock.now += 1
    hub.tick()
    store.answer()
    assert lets_in(hub, "bob", BOB, "198.51.100.7")


def test_nothing_changed_costs_one_counter_read_a_second_and_no_read_of_the_bans(
    hub: Hub, store: HeldStore, clock: Clock
) -> None:
    for _ in range(10):
        clock.now += 0.25
        hub.tick()
    assert store.serial_reads == 3 and store.held == []  # at +0.25, +1.25 and +2.25 s: once a second


def test_a_ban_made_while_the_bans_are_read_again_stays(hub: Hub, store: HeldStore, clock: Clock) -> None:
    """The read was asked before /ban carol was saved: its answer lacks her
    ban, and must not lift it; the ban the tool lifted is lifted."""
    boss = hub.join("boss", ADMIN, Recorder(), "192.0.2.1")
    ban(hub, boss, "bob", BOB, "198.51.100.7")
    ban(hub, boss, "dave", DAVE, "198.51.100.9")
    admin_unban(store, "fingerprint", BOB, clock.now)
    admin_unban(store, "ip", "198.51.100.7/32", clock.now)
    clock.now += 1
    hub.tick()  # the counter moved: the bans are read (held open here)
    answer_then = store.kept_now()  # what the read saw: bob lifted, dave banned, carol not yet
    ban(hub, boss, "carol", CAROL, "198.51.100.8")  # saved and applied while the read is open
    hub.handle_line(boss, "/unban dave")  # lifted here while the read is open
    done = store.held.pop(0)
    done(answer_then)
    assert lets_in(hub, "bob", BOB, "198.51.100.7")
    assert not lets_in(hub, "carol", CAROL, "198.51.100.8")  # her fresh ban stays
    assert lets_in(hub, "dave", DAVE, "198.51.100.9")  # his fresh unban stays too


def test_a_ban_another_node_made_while_the_bans_are_read_again_stays(
    hub: Hub, store: HeldStore, clock: Clock
) -> None:
    """In a cluster: node A's /ban reaches this node on the bus while this
    node's read of the shared database (asked before A committed) is open."""
    boss = hub.join("boss", ADMIN, Recorder(), "192.0.2.1")
    ban(hub, boss, "bob", BOB, "198.51.100.7")
    admin_unban(store, "fingerprint", BOB, clock.now)
    clock.now += 1
    hub.tick()
    answer_then = store.kept_now()
    carol = Recorder()
    hub.join("carol", CAROL, carol, "198.51.100.8")
    hub.receive(StateChanged(Ban("fingerprint", CAROL, None, "spam", "boss", clock.now)))  # node A's, on the bus
    assert carol.closed is not None
    store.held.pop(0)(answer_then)
    assert lets_in(hub, "bob", BOB, "203.0.113.1")
    assert not lets_in(hub, "carol", CAROL, "198.51.100.8")


def test_a_failed_read_lifts_nothing_and_is_asked_again(hub: Hub, store: HeldStore, clock: Clock) -> None:
    boss = hub.join("boss", ADMIN, Recorder(), "192.0.2.1")
    ban(hub, boss, "bob", BOB, "198.51.100.7")
    ban(hub, boss, "carol", CAROL, "198.51.100.8")
    admin_unban(store, "fingerprint", BOB, clock.now)
    clock.now += 1
    hub.tick()
    store.held.pop(0)(None)  # the database did not answer
    assert not lets_in(hub, "carol", CAROL, "198.51.100.8") and not lets_in(hub, "bob", BOB, "203.0.113.1")
    clock.now += 1
    hub.tick()
    store.answer()
    assert lets_in(hub, "bob", BOB, "203.0.113.1")
    assert not lets_in(hub, "carol", CAROL, "198.51.100.8")


def test_a_ban_kept_but_unknown_here_ends_the_sessions_it_covers(clock: Clock) -> None:
    """The poll applies what it finds through the path another node's
    changes take: a ban it brings in turns the person out."""
    store = HeldStore()
    hub = Hub(store, chat_settings(), clock=clock)
    out = Recorder()
    hub.join("bob", BOB, out, "198.51.100.7")
    store.save(Ban("fingerprint", BOB, None, "spam", "boss", clock.now))  # saved by a node whose publish was lost
    store.save(ChangedOutside(clock.now))
    clock.now += 1
    hub.tick()
    store.answer()
    assert out.closed is not None and "banned by boss" in out.closed
    assert "bob" not in hub.members


def test_merge_leaves_what_changed_here_meanwhile() -> None:
    old = Ban("fingerprint", BOB, None, "", "boss", 1.0)
    again = Ban("fingerprint", BOB, 99.0, "", "boss", 2.0)
    before = {("fingerprint", BOB): old}
    assert merge(before, {("fingerprint", BOB): old}, [], 0.0) == [Unban("fingerprint", BOB)]
    assert merge(before, {("fingerprint", BOB): again}, [], 0.0) == []  # banned again here meanwhile
    assert merge(before, {}, [old], 0.0) == []  # lifted here meanwhile
    assert merge({}, {}, [again], 0.0) == [again]
    assert merge({}, {}, [again], 100.0) == []  # over already


def test_the_moderation_state_equals_the_store_after_a_poll(hub: Hub, store: HeldStore, clock: Clock) -> None:
    boss = hub.join("boss", ADMIN, Recorder(), "192.0.2.1")
    for name, fp, address in (("bob", BOB, "198.51.100.7"), ("carol", CAROL, "198.51.100.8")):
        ban(hub, boss, name, fp, address)
    admin_unban(store, "ip", "198.51.100.8/32", clock.now)
    clock.now += 1
    hub.tick()
    store.answer()
    moderation: Moderation = hub.moderation
    assert set(moderation.bans) == {(b.kind, b.value) for b in store.kept_now()}
