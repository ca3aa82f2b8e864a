"""State changes hold on every node: what one node saves, the others apply;
and a flooder gains nothing by opening sessions on two nodes.

Two hubs on one shared store (as a cluster's database is), joined by a bus
that carries every event to the other node at once, as Redis does, and never
hands a node back its own state change (it applied it already). The
real two-node runs are in test_cluster_e2e.py."""

from __future__ import annotations

from collections.abc import Mapping

from sshchat.bus.codec import decode, encode
from sshchat.chat.bus import APPLIED_HERE, Event, Receive, StateChanged
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.store import Ban, DropRoom
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, person
from tests.support.settings import chat_settings

ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")
BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")
CAROL = "SHA256:carolKeyFingerprint".ljust(50, "0")


class Link:
    """One node's side of a two-node bus."""

    crosses_processes = True

    def __init__(self) -> None:
        self.receive: Receive | None = None
        self.elsewhere: Receive | None = None
        self.other: Link | None = None
        self.sent: list[Event] = []

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        self.receive = receive
        self.elsewhere = elsewhere

    def publish(self, event: Event) -> None:
        self.sent.append(event)
        assert self.receive is not None and self.other is not None and self.other.receive is not None
        if type(event) not in APPLIED_HERE:  # as Redis: never handed back to the node that applied it
            self.receive(event)
        carried = decode(encode(event))  # as Redis carries it to the other node: what the codec refuses never arrives
        if self.other.elsewhere is not None:
            self.other.elsewhere(carried)
        self.other.receive(carried)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


def two_nodes(clock: Clock | None = None, **settings: object) -> tuple[Hub, Hub, MemoryStore, Link, Link]:
    store = MemoryStore()
    link_a, link_b = Link(), Link()
    link_a.other, link_b.other = link_b, link_a
    clock = clock or Clock()
    a = Hub(store, chat_settings(**settings), clock=clock, admins={ADMIN}, bus=link_a)
    b = Hub(store, chat_settings(**settings), clock=clock, admins={ADMIN}, bus=link_b)
    return a, b, store, link_a, link_b


def test_a_ban_made_on_one_node_ends_the_session_on_the_other_and_refuses_the_login_there() -> None:
    a, b, *_ = two_nodes()
    admin, admin_sees = person(a, "boss", ADMIN, "192.0.2.1")
    _bob, bob_sees = person(b, "bob", BOB, "198.51.100.7")  # his name's binding reaches node a
    a.handle_line(admin, "/ban bob spamming")
    assert any(n.startswith("banned bob") for n in admin_sees.notices)
    assert bob_sees.closed is not None and "banned by boss" in bob_sees.closed
    assert b.find("bob") is None
    try:
        person(b, "bob", BOB, "198.51.100.7")
    except Exception as e:  # JoinRefused
        assert "you are banned" in str(e)
    else:
        raise AssertionError("a banned key got in on the other node")


def test_an_unban_on_one_node_lets_them_in_on_the_other() -> None:
    a, b, *_ = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    a.handle_line(admin, f"/ban fingerprint:{BOB}")
    a.handle_line(admin, f"/unban fingerprint:{BOB}")
    bob, _ = person(b, "bob", BOB)
    assert b.find("bob") is bob


def test_a_topic_set_on_one_node_shows_on_the_other() -> None:
    a, b, *_ = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    a.handle_line(admin, "/topic be kind")
    _, carol_sees = person(b, "carol", CAROL)  # a login on node b shows the room's topic
    assert "#lobby: be kind" in carol_sees.notices


def test_a_room_made_on_one_node_exists_on_the_other_with_its_creators_rights() -> None:
    a, b, *_ = two_nodes()
    carol_a, _ = person(a, "carol", CAROL)
    a.handle_line(carol_a, "/join #dev")
    room = b.room("#dev")
    assert room is not None and room.info.creator_fp == CAROL
    bob, bob_sees = person(b, "bob", BOB)
    b.handle_line(bob, "/join #dev")
    assert not any("created" in n for n in bob_sees.notices)
    b.handle_line(bob, "/topic mine now")  # not his room
    assert "only #dev's creator or an operator can set its topic" in bob_sees.notices


def test_an_operator_made_on_one_node_can_act_on_the_other() -> None:
    a, b, *_ = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    carol, carol_sees = person(b, "carol", CAROL)
    _, dave_sees = person(b, "dave")
    a.handle_line(admin, "/op carol")  # carol is online on node b only: her name's binding tells a her key
    assert any("made you an operator" in n for n in carol_sees.notices)
    b.handle_line(carol, "/kick dave")
    assert dave_sees.closed is not None and "kicked by carol" in dave_sees.closed


def test_a_mute_made_on_one_node_holds_on_the_other() -> None:
    a, b, *_ = two_nodes()
    admin, admin_sees = person(a, "boss", ADMIN)
    bob, bob_sees = person(b, "bob", BOB)
    _, carol_sees = person(b, "carol", CAROL)
    a.handle_line(admin, "/mute bob")
    assert any(n.startswith("you were muted by boss") for n in bob_sees.notices)
    b.handle_line(bob, "can anyone hear me")
    assert "can anyone hear me" not in carol_sees.texts(Kind.CHAT)
    assert "can anyone hear me" not in admin_sees.texts(Kind.CHAT)
    a.handle_line(admin, "/unmute bob")
    b.handle_line(bob, "and now")
    assert "and now" in carol_sees.texts(Kind.CHAT)


def test_a_room_removed_on_one_node_sends_its_people_on_the_other_to_the_lobby() -> None:
    a, b, *_ = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    bob, bob_sees = person(b, "bob", BOB)
    b.handle_line(bob, "/join #dev")
    a.handle_line(admin, "/rmroom #dev")
    assert b.room("#dev") is None
    assert b.room_of(bob).name == "#lobby"
    assert any("#dev was removed" in n for n in bob_sees.notices)


def test_a_room_expired_on_a_node_where_it_was_empty_is_kept_where_people_are_in_it() -> None:
    a, b, _store, link_a, _ = two_nodes()
    bob, _ = person(b, "bob", BOB)
    b.handle_line(bob, "/join #dev")
    link_a.publish(StateChanged(DropRoom("#dev", "#dev", expired=True)))  # node a saw it empty
    assert b.room("#dev") is not None and b.room_of(bob).name == "#dev"
    assert a.room("#dev") is not None  # saved again by node b, and so known to node a again


def test_applying_a_change_twice_does_nothing_twice_and_nothing_is_saved_again() -> None:
    a, b, store, link_a, link_b = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    _bob, bob_sees = person(b, "bob", BOB, "198.51.100.7")
    a.handle_line(admin, f"/ban fingerprint:{BOB}")
    ban = next(e for e in link_a.sent if isinstance(e, StateChanged) and isinstance(e.change, Ban))
    assert bob_sees.closed is not None
    admin_b, admin_b_sees = person(b, "boss2", ADMIN)
    saved, published, notices = len(store.changes), len(link_b.sent), len(admin_b_sees.notices)
    b.receive(ban)  # the same change again (a retried publish)
    assert len(store.changes) == saved and len(link_b.sent) == published
    assert len(admin_b_sees.notices) == notices and b.find("boss2") is admin_b


def test_a_single_process_publishes_no_state_change() -> None:
    class Local(Link):
        crosses_processes = False

        def publish(self, event: Event) -> None:
            self.sent.append(event)
            assert self.receive is not None
            self.receive(event)

    bus = Local()
    hub = Hub(MemoryStore(), chat_settings(), admins={ADMIN}, bus=bus)
    admin, _ = person(hub, "boss", ADMIN)
    hub.handle_line(admin, "/join #dev")
    hub.handle_line(admin, "/topic hi")
    hub.handle_line(admin, f"/ban fingerprint:{BOB}")
    assert not any(isinstance(e, StateChanged) for e in bus.sent)


# ------------------------------------------------------ floods across nodes


def test_sessions_on_two_nodes_share_one_rate_limit() -> None:
    clock = Clock()
    a, b, *_ = two_nodes(clock, rate_burst=5, rate_per_second=1.0)
    bob_a, _ = person(a, "bob", BOB, "198.51.100.7")
    bob_b, bob_b_sees = person(b, "bob2", BOB, "198.51.100.8")  # the same key, on the other node
    _, carol_sees = person(b, "carol", CAROL)
    for n in range(5):  # the burst, on node a
        a.handle_line(bob_a, f"a{n}")
    for n in range(5):  # ...and again on node b: spent already
        b.handle_line(bob_b, f"b{n}")
    assert carol_sees.texts(Kind.CHAT) == [f"a{n}" for n in range(5)]
    assert any(n.startswith("slow down") for n in bob_b_sees.notices)
    clock.now += 2  # the rate refills wherever they are
    b.handle_line(bob_b, "later")
    assert carol_sees.texts(Kind.CHAT)[-1] == "later"


def test_a_keyless_flooder_shares_the_limit_of_the_name_across_nodes() -> None:
    a, b, *_ = two_nodes(rate_burst=3, rate_per_second=0.01)
    anon_a, _ = person(a, "anon", None, "198.51.100.9")
    anon_b, _ = person(b, "anon", None, "198.51.100.9")  # (until names are unique across nodes)
    _, carol_sees = person(b, "carol", CAROL)
    for n in range(3):
        a.handle_line(anon_a, f"a{n}")
    b.handle_line(anon_b, "one more")
    assert "one more" not in carol_sees.texts(Kind.CHAT)


def test_an_address_blocked_for_flooding_on_one_node_is_turned_away_by_the_other() -> None:
    a, b, *_ = two_nodes(rate_burst=1, rate_per_second=0.001, offence_threshold=2)
    address = "198.51.100.66"
    assert b.screen_address(address) is None
    for n in range(2):  # two floods, two offences: blocked
        flooder, sees = person(a, f"flood{n}", None, address)
        a.handle_line(flooder, "x")
        a.handle_line(flooder, "y")
    assert sees.closed is not None and "flooding" in sees.closed
    refusal = b.screen_address(address)
    assert refusal is not None and "too many refused logins or floods" in refusal
    assert b.screen_address("198.51.100.67") is None


def test_a_room_in_use_on_another_node_is_not_expired_here() -> None:
    """A room made without a key expires once empty for keyless_room_ttl; a
    node where nobody is in it still hears its people on the other node."""
    clock = Clock()
    a, b, store, *_ = two_nodes(clock, keyless_room_ttl=60.0)
    anon, _ = person(b, "anon", None, "198.51.100.5")
    b.handle_line(anon, "/join #chat")
    for n in range(4):
        b.handle_line(anon, f"still here {n}")
        clock.now += 40
        a.tick()
    assert a.room("#chat") is not None and b.room_of(anon).name == "#chat"
    assert not any(isinstance(c, DropRoom) for c in store.changes)


def test_a_room_removed_while_its_member_is_offline_is_gone_from_their_rooms_on_every_node() -> None:
    a, b, *_ = two_nodes()
    admin, _ = person(a, "boss", ADMIN)
    bob, _ = person(b, "bob", BOB)
    b.handle_line(bob, "/join #dev")  # node a remembers bob's rooms as node b saved them
    b.leave(bob)
    a.handle_line(admin, "/rmroom #dev")
    bob, _ = person(a, "bob", BOB)  # logs in again, on node a
    assert a.room_of(bob).name == "#lobby"
    assert bob.rooms == ["#lobby"]
