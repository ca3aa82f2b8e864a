"""The hub on a bus: what the store committed is published, and ``receive``
delivers it, whichever node it came from. Tested in the core, without sockets:
a second node is a second hub whose events this test carries across by hand."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import pytest

from sshchat.bus.local import LocalBus
from sshchat.chat import names
from sshchat.chat.bus import APPLIED_HERE, Event, Private, Receive, RoomLine
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.store import Committed, Draft
from sshchat.store.memory import MemoryStore
from tests.support.chat import person
from tests.support.settings import chat_settings


class Wire:
    """A bus that hands every event to its own node and keeps it for another."""

    crosses_processes = True

    def __init__(self) -> None:
        self.sent: list[Event] = []
        self.receive: Receive | None = None

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        self.receive = receive

    def publish(self, event: Event) -> None:
        self.sent.append(event)
        assert self.receive is not None
        if type(event) not in APPLIED_HERE:  # (applied already by the node that made it, as Redis never hands back)
            self.receive(event)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class HeldStore(MemoryStore):
    """Commits only when the test says: time passes between a send and its commit."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[tuple[list[Draft], Committed]] = []

    def append(self, drafts: list[Draft], done: Committed) -> None:
        self.held.append((drafts, done))

    def commit_all(self) -> None:
        held, self.held = self.held, []
        for drafts, done in held:
            super().append(drafts, done)


def two_nodes() -> tuple[Hub, Wire, Hub, Wire]:
    store = MemoryStore()  # shared, as the cluster's database is
    wire_a, wire_b = Wire(), Wire()
    return Hub(store, chat_settings(), bus=wire_a), wire_a, Hub(store, chat_settings(), bus=wire_b), wire_b


def test_a_line_said_on_one_node_reaches_the_room_on_the_other() -> None:
    a, wire_a, b, _ = two_nodes()
    alice, _ = person(a, "alice")
    bob, bob_sees = person(b, "bob")
    a.handle_line(alice, "/join #dev")
    b.handle_line(bob, "/join #DEV")
    a.handle_line(alice, "hello from node a")
    for event in wire_a.sent:  # what node a published, as node b's reader gets it
        b.receive(event)
    assert "hello from node a" in bob_sees.texts(Kind.CHAT)
    line = next(e for e in wire_a.sent if isinstance(e, RoomLine) and e.msg.text == "hello from node a")
    assert line.msg.id > 0 and line.keep and line.sender == alice.person
    assert [m.text for m in b.room("#dev").recent(5) if m.kind is Kind.CHAT] == ["hello from node a"]  # type: ignore[union-attr]


def test_ignore_holds_for_lines_from_another_node() -> None:
    a, wire_a, b, _ = two_nodes()
    alice, _ = person(a, "alice", "SHA256:alice")
    bob, bob_sees = person(b, "bob", "SHA256:bob")
    _, carol_sees = person(b, "carol", "SHA256:carol")
    # /ignore of someone on another node comes with cluster-wide presence; what it keeps is the person:
    bob.prefs.ignore(alice.person)
    a.handle_line(alice, "can you hear me")
    for event in wire_a.sent:
        b.receive(event)
    assert "can you hear me" in carol_sees.texts(Kind.CHAT)  # it did reach node b's room
    assert "can you hear me" not in bob_sees.texts(Kind.CHAT)


def test_a_private_message_from_another_node_reaches_its_recipient_here() -> None:
    a, wire_a, b, _ = two_nodes()
    alice, alice_sees = person(a, "alice")
    bob, bob_sees = person(b, "bob")
    _, carol_sees = person(a, "carol")
    a._pipeline.private(alice, bob, "psst")  # the sender's node knows bob (presence, later step)
    assert alice_sees.texts(Kind.PRIVATE) == ["psst"]  # the sender's own copy, at once
    assert [type(e) for e in wire_a.sent if isinstance(e, Private)] == [Private]
    for event in wire_a.sent:
        b.receive(event)
    assert bob_sees.texts(Kind.PRIVATE) == ["psst"]
    assert carol_sees.texts(Kind.PRIVATE) == []


def test_a_private_message_never_reaches_whoever_took_the_name_meanwhile() -> None:
    store = HeldStore()
    hub = Hub(store, chat_settings(), bus=LocalBus())
    alice, alice_sees = person(hub, "alice")
    bob, _ = person(hub, "bob")
    hub.handle_line(alice, "/msg bob are you there")
    hub.leave(bob)
    _, impostor_sees = person(hub, "bob")  # a keyless stranger takes the free name before the commit
    store.commit_all()
    assert impostor_sees.texts(Kind.PRIVATE) == []
    assert alice_sees.texts(Kind.PRIVATE) == ["are you there"]


def test_a_private_message_reaches_its_people_who_renamed_before_the_commit() -> None:
    store = HeldStore()
    hub = Hub(store, chat_settings(), bus=LocalBus())
    alice, alice_sees = person(hub, "alice")
    bob, bob_sees = person(hub, "bob")
    hub.handle_line(alice, "/msg bob are you there")
    hub.handle_line(bob, "/nick robert")  # keyless: no registration to wait for
    hub.handle_line(alice, "/nick alicia")
    store.commit_all()
    assert bob_sees.texts(Kind.PRIVATE) == ["are you there"]
    assert alice_sees.texts(Kind.PRIVATE) == ["are you there"]


def test_a_line_for_a_room_removed_meanwhile_reaches_nobody() -> None:
    a, wire_a, b, _ = two_nodes()
    alice, _ = person(a, "alice")
    a.handle_line(alice, "/join #gone")
    a.handle_line(alice, "anyone?")
    line = next(e for e in wire_a.sent if isinstance(e, RoomLine) and e.msg.text == "anyone?")
    b.receive(line)  # node b has no #gone: nothing happens, nothing breaks
    assert b.room("#gone") is None


def test_a_message_on_the_in_process_bus_works_out_no_name_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A room's key and each person's are known already: working one out again
    (NFKC, casefold: ~1 us) for every message cost as much as a delivery."""
    hub = Hub(MemoryStore(), chat_settings(rate_burst=100), bus=LocalBus())
    alice, _ = person(hub, "alice")
    _, bob_sees = person(hub, "bob")
    hub.handle_line(alice, "warm-up")  # the hub learns the lobby's key from its name once
    worked_out = 0
    real = names.name_key

    def counting(name: str) -> str:
        nonlocal worked_out
        worked_out += 1
        return real(name)

    for module in list(sys.modules.values()):  # every module of ours that imported it by name
        if module is not None and module.__name__.startswith("sshchat.") and getattr(module, "name_key", None) is real:
            monkeypatch.setattr(module, "name_key", counting)
    for n in range(10):
        hub.handle_line(alice, f"hello {n}")
    assert bob_sees.texts(Kind.CHAT)[-10:] == [f"hello {n}" for n in range(10)]
    assert worked_out == 0
