"""What every node must count holds across nodes (issue 15): a flooder or a
troll gains nothing by spreading over two nodes. Offences, commands' share
of the rate limit, a keyless person's mute and the names an address
registers are one count (or one rule) in the whole cluster, in the core:
two hubs in one process (tests/support/nodes.py)."""

from __future__ import annotations

import pytest

from sshchat.chat.admission import JoinRefused
from sshchat.chat.bus import Charged
from sshchat.chat.message import Kind
from sshchat.ssh.limits import ConnectionLimits
from tests.support.chat import Clock, Recorder, person
from tests.support.nodes import Wire, nodes

ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")
BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")
CAROL = "SHA256:carolKeyFingerprint".ljust(50, "0")


def test_offences_split_across_nodes_earn_the_block_as_on_one() -> None:
    """A refused login is an offence; four of them block the address, two on
    each node as well as four on one."""
    a, b = nodes(offence_threshold=4)
    address = "198.51.100.44"
    for node in (a, b, a, b):
        with pytest.raises(JoinRefused):
            node.join("no spaces allowed", None, Recorder(), address)
    for node in (a, b):
        refusal = node.screen_address(address)
        assert refusal is not None and "too many refused logins or floods" in refusal
    assert a.screen_address("198.51.100.45") is None


def test_floods_split_across_nodes_earn_the_block() -> None:
    a, b = nodes(rate_burst=1, rate_per_second=0.001, offence_threshold=2)
    address = "198.51.100.46"
    for n, node in enumerate((a, b)):  # one flood on each node: two offences
        flooder, sees = person(node, f"flood{n}", None, address)
        node.handle_line(flooder, "x")
        node.handle_line(flooder, "y")
    assert sees.closed is not None and "flooding" in sees.closed
    assert a.screen_address(address) is not None and b.screen_address(address) is not None


def test_commands_given_on_one_node_spend_the_rate_on_the_other_once_each() -> None:
    """Seven commands on node a (three /names, two /me, two /msg) leave bob
    three of his ten tokens on node b: each is charged once there, none twice
    (a /me's line and a /msg are their command's own)."""
    a, b = nodes(rate_burst=10, rate_per_second=0.001)
    bob_a, _ = person(a, "bob", BOB, "198.51.100.7")
    bob_b, bob_b_sees = person(b, "bob2", BOB, "198.51.100.8")  # the same key, on the other node
    _, carol_sees = person(b, "carol", CAROL)
    for line in ("/names", "/names", "/names", "/me waves", "/me waves", "/msg carol hi", "/msg carol hi"):
        a.handle_line(bob_a, line)
    assert carol_sees.texts(Kind.EMOTE) == ["waves", "waves"] and carol_sees.texts(Kind.PRIVATE) == ["hi", "hi"]
    for n in range(4):
        b.handle_line(bob_b, f"b{n}")
    assert carol_sees.texts(Kind.CHAT) == ["b0", "b1", "b2"]
    assert any(n.startswith("slow down") for n in bob_b_sees.notices)


def test_a_command_carries_no_text_over_the_bus() -> None:
    wire = Wire()
    a, _b = nodes(wire=wire)
    bob, _ = person(a, "bob", BOB)
    a.handle_line(bob, "/away a secret reason")
    assert [e for e in wire.sent if isinstance(e, Charged)] == [Charged(f"fingerprint:{BOB}")]
    assert "secret" not in repr(wire.sent)


def test_a_keyless_persons_mute_holds_their_address_on_the_other_node() -> None:
    """Muted on node a, a keyless person who comes back on node b under a new
    name (a new session) is muted there too: their address holds the mute."""
    a, b = nodes(admins={ADMIN})
    admin, admin_sees = person(a, "boss", ADMIN, "192.0.2.1")
    anon, _ = person(a, "anon", None, "198.51.100.30")
    a.handle_line(admin, "/mute anon 1h")
    assert admin_sees.notices[-1].startswith("muted anon")
    a.leave(anon)
    again, again_sees = person(b, "someone", None, "198.51.100.30")
    _, carol_sees = person(b, "carol", CAROL)
    assert any(n.startswith("you are muted") for n in again_sees.notices)
    b.handle_line(again, "can you hear me")
    assert "can you hear me" not in carol_sees.texts(Kind.CHAT)


def test_a_keyless_person_on_the_other_node_is_muted_and_unmuted_from_here() -> None:
    a, b = nodes(admins={ADMIN})
    admin, _ = person(a, "boss", ADMIN, "192.0.2.1")
    anon, anon_sees = person(b, "anon", None, "198.51.100.31")
    _, carol_sees = person(b, "carol", CAROL)
    a.handle_line(admin, "/mute anon")
    assert any(n.startswith("you were muted by boss") for n in anon_sees.notices)
    b.handle_line(anon, "muted line")
    assert "muted line" not in carol_sees.texts(Kind.CHAT)
    a.handle_line(admin, "/unmute anon")
    assert "you were unmuted" in anon_sees.notices[-1]
    b.handle_line(anon, "heard again")
    assert "heard again" in carol_sees.texts(Kind.CHAT)
    back, _ = person(b, "back", None, "198.51.100.31")  # the address is free again too
    b.handle_line(back, "and me")
    assert "and me" in carol_sees.texts(Kind.CHAT)


def test_a_node_that_starts_later_learns_the_keyless_mutes_in_force() -> None:
    """No store keeps a keyless mute: the nodes up tell a node that says Hello."""
    a, b = nodes(admins={ADMIN})
    admin, _ = person(a, "boss", ADMIN, "192.0.2.1")
    person(a, "anon", None, "198.51.100.32")
    a.handle_line(admin, "/mute anon")
    b.moderation.mutes.clear()  # as a node (re)started since would have it
    b.greet()
    again, _ = person(b, "other", None, "198.51.100.32")
    assert b.moderation.mute_for(again.person, again.address) is not None


def test_names_registered_per_address_count_on_every_node() -> None:
    """names_per_address_per_hour is one count across the nodes: fresh keys
    from one address register no more names by spreading over two nodes."""
    a, b = nodes(names_per_address_per_hour=2)
    person(a, "first", "SHA256:" + "1" * 43, "198.51.100.50")
    person(b, "second", "SHA256:" + "2" * 43, "198.51.100.50")
    _third, third_sees = person(a, "third", "SHA256:" + "3" * 43, "198.51.100.50")
    assert a.names.binding("third") is None and b.names.binding("third") is None
    assert any("was not registered to your key" in n for n in third_sees.notices)


def test_connections_per_address_count_the_people_on_other_nodes() -> None:
    """max_per_address is one count across the nodes: three people from one
    address on node a leave it no place on node b (at most three), until one
    of them goes. An IPv6 /64 counts as one address, as on one node."""
    a, b = nodes()
    limits = ConnectionLimits(100, 3, 100, new_connections_burst=100, new_connections_per_minute=100,
                              elsewhere=b.people_elsewhere)
    people = [person(a, f"p{n}", None, f"2001:db8:5:6::{n + 1}")[0] for n in range(3)]
    refusal = limits.admit("2001:db8:5:6::ff")
    assert refusal is not None and refusal.startswith("too many connections from your address")
    assert limits.admit("2001:db8:5:7::1") is None  # another /64
    a.leave(people[0])
    assert limits.admit("2001:db8:5:6::ff") is None


def test_logins_on_another_node_spend_the_addresss_arrivals_here() -> None:
    """new_connections_burst is one across the nodes for people who log in:
    two logins from an address on node a leave it none of its two here."""
    clock = Clock()
    a, b = nodes(clock=clock)
    limits = ConnectionLimits(100, 100, 100, new_connections_burst=2, new_connections_per_minute=0.001,
                              clock=clock)
    b.on_arrival_elsewhere = limits.arrived_elsewhere
    for n in range(2):
        person(a, f"fresh{n}", None, "198.51.100.60")
    refusal = limits.admit("198.51.100.60")
    assert refusal is not None and refusal.startswith("too many new connections")
    assert limits.admit("198.51.100.61") is None


def test_a_node_told_of_people_who_came_long_ago_counts_no_arrivals() -> None:
    """A node that says Hello is told of everyone on the others: old arrivals,
    retold, spend nothing."""
    clock = Clock()
    a, b = nodes(clock=clock)
    limits = ConnectionLimits(100, 100, 100, new_connections_burst=2, new_connections_per_minute=0.001,
                              clock=clock)
    for n in range(2):
        person(a, f"settled{n}", None, "198.51.100.62")
    clock.now += 60
    b.remote.drop_node("a")  # as a node (re)started since would have it
    b.on_arrival_elsewhere = limits.arrived_elsewhere
    b.greet()
    assert len(b.remote) == 2
    assert limits.admit("198.51.100.62") is None
