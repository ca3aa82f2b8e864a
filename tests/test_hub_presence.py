"""Presence across the nodes of a cluster, in the core (no sockets, no Redis):
two hubs on one bus that hands every event to both, and a roster that keeps
claims in a dict as Redis would. Each node sees the other's people in
/names, /whois, /rooms and Tab completion; /msg, /reply and /kick reach
them; a node that stops answering takes its people with it; a name is
claimed before it is taken."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from sshchat.bus.codec import decode, encode
from sshchat.chat.bus import Arrived, Departed, Hello, Kick
from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.member import Member
from sshchat.chat.message import Kind
from sshchat.chat.names import name_key
from sshchat.chat.roster import CLAIMED, Claim, ClaimThen, RosterListener
from sshchat.store.memory import MemoryStore
from tests.support.bus import LossyNet
from tests.support.chat import Clock, Recorder, person
from tests.support.settings import chat_settings


class DictRoster:
    """Claims in a shared dict, with Redis's rules (sshchat/bus/roster.py)."""

    cluster = True

    def __init__(self, node: str, claims: dict[str, tuple[str, str]]) -> None:
        self.node = node
        self.claims = claims
        self.hub: RosterListener | None = None

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        key, mine = name_key(name), (self.node, fingerprint or "")
        held = self.claims.get(key)
        if held is None or held == mine or held[0] == self.node:
            self.claims[key] = mine
            then(CLAIMED)
        elif take_over and fingerprint and held[1] == fingerprint:
            self.claims[key] = mine
            then(Claim(displaced=held[0]))
        else:
            then(Claim(taken=True))

    def release(self, name: str, fingerprint: str | None) -> None:
        if self.claims.get(name_key(name)) == (self.node, fingerprint or ""):
            del self.claims[name_key(name)]

    def attach(self, listener: RosterListener) -> None:
        self.hub = listener

    def record(self, event: Arrived | Departed) -> None:
        """Nothing to keep: this bus loses no event."""


def cluster(admins: Iterable[str] = ()) -> tuple[Hub, Hub, dict[str, tuple[str, str]]]:
    store, net = MemoryStore(), LossyNet()
    claims: dict[str, tuple[str, str]] = {}
    a = Hub(store, chat_settings(), bus=net.bus(), roster=DictRoster("a", claims), admins=admins)
    b = Hub(store, chat_settings(), bus=net.bus(), roster=DictRoster("b", claims), admins=admins)
    return a, b, claims


def login(hub: Hub, name: str, fp: str | None = None) -> tuple[Member, Recorder]:
    """What the transport does: claim, then join (or the refusal)."""
    answer: list[str | None] = []
    hub.claim(name, fp, answer.append)
    if answer[0] is not None:
        raise JoinRefused(answer[0])
    return person(hub, name, fp)


def test_every_kind_of_presence_event_survives_the_round_trip() -> None:
    for event in (Arrived("n1", 3, "alice", "SHA256:x", "10.0.0.1", "#dev", ["#lobby", "#dev"], "lunch", 1.5, 2.5),
                  Departed("n1", 3), Departed("n1", None), Kick("n1", "alice", "session:3", None, "bye"),
                  Hello("n2")):
        assert decode(encode(event)) == event


def test_the_people_of_the_other_node_are_seen_here() -> None:
    a, b, _ = cluster()
    login(a, "alice")
    bob, bob_sees = login(b, "bob")
    b.handle_line(bob, "/names")
    b.handle_line(bob, "/whois alice")
    b.handle_line(bob, "/rooms")
    assert "2 in #lobby: alice, bob" in bob_sees.notices
    assert any(n.startswith("alice: no key (not registered)") and n.endswith("on another server of this chat")
               for n in bob_sees.notices)
    assert any("#lobby (2 online" in n for n in bob_sees.notices)
    assert complete(b, bob, "al") == (0, ["alice: "])


def test_a_name_held_on_the_other_node_is_refused_here() -> None:
    a, b, claims = cluster()
    login(a, "alice")
    with pytest.raises(JoinRefused, match=re.escape('the name "Alice" is already in use')):
        login(b, "Alice")
    bob, _ = login(b, "bob")
    a.leave(a.find("alice"))  # type: ignore[arg-type]
    assert "alice" not in claims and b.find("alice") is None  # released, and gone from b's list
    b.handle_line(bob, "/nick alice")
    assert claims["alice"] == ("b", "") and a.find("alice") is not None  # claimed first, then seen on a
    assert "bob" not in claims


def test_msg_reply_and_kick_reach_the_other_node() -> None:
    a, b, _ = cluster(admins=["SHA256:boss"])
    alice, alice_sees = login(a, "alice")
    bob, bob_sees = login(b, "bob", "SHA256:boss")
    b.handle_line(bob, "/msg alice psst")
    assert alice_sees.texts(Kind.PRIVATE) == ["psst"]
    a.handle_line(alice, "/reply hi back")
    assert bob_sees.texts(Kind.PRIVATE) == ["psst", "hi back"]
    b.handle_line(bob, "/kick alice enough")
    assert alice_sees.closed == "you were kicked by bob: enough"
    assert a.find("alice") is None and b.find("alice") is None


def test_the_same_key_on_the_other_node_replaces_the_old_session_quietly() -> None:
    a, b, claims = cluster()
    _, old_sees = login(a, "alice", "SHA256:a")
    _, carol_sees = login(a, "carol")
    login(b, "alice", "SHA256:a")
    assert old_sees.closed == "you logged in from elsewhere"
    assert claims["alice"] == ("b", "SHA256:a")
    assert a.find("alice") is not None and a.find("alice").node == "b"  # type: ignore[union-attr]
    assert not [t for t in carol_sees.texts() if t.startswith("alice")]  # neither left nor joined


def test_a_node_that_stops_answering_takes_its_people_with_it() -> None:
    a, b, _ = cluster()
    login(a, "alice")
    _, bob_sees = login(b, "bob")
    b.node_gone("a")  # as the roster says when a's heartbeat expired
    assert b.find("alice") is None and b.online() == 1
    assert "alice left (their server stopped answering)" in bob_sees.texts(Kind.LEAVE)


def test_a_name_that_looks_like_someone_on_the_other_node_is_refused() -> None:
    a, b, _ = cluster()
    login(a, "alice")
    with pytest.raises(JoinRefused, match=re.escape('the name "aIice" looks too much like "alice"')):
        login(b, "aIice")
    bob, bob_sees = login(b, "bob")
    b.handle_line(bob, "/nick a1ice")
    assert 'the name "a1ice" looks too much like "alice"; please pick another' in bob_sees.notices
    a.leave(a.find("alice"))  # type: ignore[arg-type]
    b.handle_line(bob, "/nick a1ice")  # alice is gone: the shape is free again
    assert b.find("a1ice") is bob


def test_whois_shows_the_idle_time_of_a_person_on_the_other_node() -> None:
    clock = Clock()
    store, net, claims = MemoryStore(), LossyNet(), {}
    a = Hub(store, chat_settings(), clock, bus=net.bus(), roster=DictRoster("a", claims))
    b = Hub(store, chat_settings(), clock, bus=net.bus(), roster=DictRoster("b", claims))
    alice, _ = login(a, "alice")
    bob, bob_sees = login(b, "bob")
    clock.now += 300
    a.tick()
    b.handle_line(bob, "/whois alice")
    assert "idle 5m (within 30s), on another server of this chat" in bob_sees.notices[-1]
    a.handle_line(alice, "hello")  # she is back: her node says so at its next tick
    a.tick()
    b.handle_line(bob, "/whois alice")
    assert "idle 0s (within 30s), on another server of this chat" in bob_sees.notices[-1]


def test_a_node_that_stops_answering_with_many_people_is_one_line_per_room() -> None:
    """A node with a crowd goes: its leaves are summed up, as a storm of leaves
    is, not one line per person to everyone here (a crowd times everyone)."""
    a, b, _ = cluster()
    for n in range(40):
        login(a, f"guest{n}")
    _, bob_sees = login(b, "bob")
    b.node_gone("a")
    assert b.online() == 1
    assert bob_sees.texts(Kind.LEAVE) == [
        "guest0, guest1, guest2, guest3, guest4 and 35 others left (their server stopped answering)"
    ]


class LateRoster(DictRoster):
    """Claims answered when the test says (Redis answers on a later turn)."""

    def __init__(self, node: str, claims: dict[str, tuple[str, str]]) -> None:
        super().__init__(node, claims)
        self.waiting: list[tuple[str, str | None, bool, ClaimThen]] = []

    def claim(self, name: str, fingerprint: str | None, take_over: bool, then: ClaimThen) -> None:
        self.waiting.append((name, fingerprint, take_over, then))

    def answer(self, index: int = 0) -> None:
        """A claim waiting is answered (the oldest, unless told which)."""
        super().claim(*self.waiting.pop(index))


def test_a_nick_and_a_login_of_one_name_on_one_node_leave_one_holder() -> None:
    """Redis answers "yes" to a claim this same node holds (the node keeps its
    own people's names apart): carol's /nick bob and a login as bob, both sent
    before either answer came, once gave both the name (the login's session
    lost from the list of people), and carol's refusal let go of the claim."""
    claims: dict[str, tuple[str, str]] = {}
    roster = LateRoster("a", claims)
    hub = Hub(MemoryStore(), chat_settings(), bus=LossyNet().bus(), roster=roster)
    hub.claim("carol", None, lambda refusal: None)
    roster.answer()
    carol, carol_sees = person(hub, "carol")
    hub.handle_line(carol, "/nick bob")  # claimed in Redis; the answer comes later
    refusals: list[str | None] = []
    hub.claim("bob", None, refusals.append)  # a login as bob meanwhile, answered first
    roster.answer(1)
    assert refusals == [None]
    bob, bob_sees = person(hub, "bob")
    roster.answer()  # carol's answer, once bob is here
    assert carol.name == "carol" and carol_sees.notices[-1] == 'the name "bob" is already in use'
    hub.handle_line(bob, "/names")
    assert "2 in #lobby: bob, carol" in bob_sees.notices
    assert name_key("bob") in claims  # still held for bob: carol's refusal let go of nothing


def test_a_login_refused_here_for_a_name_held_here_leaves_its_claim_in_place() -> None:
    """A keyless bob is on node a; another keyless bob tries node a and is
    refused. Both claims are "a, no key" in Redis: the refused login's
    release let go of the real bob's, and node b then gave bob away."""
    a, b, _ = cluster()
    login(a, "bob")
    refusals: list[str | None] = []
    a.claim("bob", None, refusals.append)
    assert refusals == [None]  # Redis: the name is this node's already
    with pytest.raises(JoinRefused):  # a second keyless bob may not join node a
        person(a, "bob")
    a.unclaim("bob", None)  # what the transport does with a refused login
    with pytest.raises(JoinRefused, match=re.escape('the name "bob" is already in use')):
        login(b, "bob")
