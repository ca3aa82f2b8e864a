"""Bans and per-address limits that hold (issue 14, point 3).

/ban NAME turns away the person's key and their address network, so a
fresh key or none from there does not get them back in; and every limit
kept per address counts an IPv6 /64 as one address and a /48 together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncssh
import pytest

from sshchat.chat.addresses import NETWORK_SHARE
from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.ratelimit import Offences
from sshchat.ssh.limits import ConnectionLimits
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder
from tests.support.clients import KeylessClient
from tests.support.server import Server
from tests.support.settings import chat_settings
from tests.support.waiting import eventually

ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")
BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")
FRESH = "SHA256:freshKeyFingerprint".ljust(50, "0")
OTHER = "SHA256:otherKeyFingerprint".ljust(50, "0")
OPS_ADDRESS = "192.0.2.1"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(clock: Clock) -> Hub:
    return Hub(MemoryStore(), chat_settings(), clock=clock, admins={ADMIN})


def join(hub: Hub, name: str, fp: str | None, address: str):
    out = Recorder()
    return hub.join(name, fp, out, address), out


def refused(hub: Hub, name: str, fp: str | None, address: str) -> bool:
    try:
        hub.leave(join(hub, name, fp, address)[0])
    except JoinRefused:
        return True
    return False


# ------------------------------------------------------------------ /ban


@pytest.mark.parametrize(
    ("address", "same_network", "elsewhere"),
    [
        ("198.51.100.30", "198.51.100.30", "198.51.100.31"),
        ("2001:db8:1:2::30", "2001:db8:1:2:ffff::9", "2001:db8:1:3::30"),  # a /64 is one address
    ],
)
def test_ban_by_name_bans_key_and_address_for_the_same_time(
    hub: Hub, clock: Clock, address: str, same_network: str, elsewhere: str
) -> None:
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    join(hub, "bob", BOB, address)
    hub.handle_line(admin, "/ban bob 1h spam")
    assert out.notices[-1].startswith("banned bob (their key and their address ")
    assert refused(hub, "bob2", FRESH, same_network)  # a fresh key from there
    assert refused(hub, "bob3", None, same_network)  # no key from there
    assert refused(hub, "bob4", BOB, elsewhere)  # the key from anywhere
    assert not refused(hub, "carol", FRESH, elsewhere)
    clock.now += 3601  # both end together
    assert not refused(hub, "bob5", None, same_network)
    assert not refused(hub, "bob", BOB, address)


def test_ban_by_name_of_someone_who_just_left_bans_the_address_they_came_from(hub: Hub, clock: Clock) -> None:
    """Offline, a key holder's address is known while the server remembers
    where they were (a day, in memory): banned with the key, as if online."""
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    bob, _ = join(hub, "bob", BOB, "198.51.100.50")
    hub.leave(bob)
    hub.handle_line(admin, "/ban bob spam")
    assert out.notices[-1] == "banned bob (their key and their address 198.51.100.50/32)"
    assert refused(hub, "fresh", None, "198.51.100.50")
    anon, _ = join(hub, "anon", None, "2001:db8:7:8::1")  # keyless: the name is all there is
    hub.leave(anon)
    hub.handle_line(admin, "/ban anon")
    assert out.notices[-1] == "banned anon (gone, no key, so the address they came from 2001:db8:7:8::/64)"
    assert refused(hub, "anon", None, "2001:db8:7:8::2")
    other, _ = join(hub, "other", OTHER, "203.0.113.60")
    hub.leave(other)
    clock.now += 86_401  # a day on, the address is forgotten: the key alone
    hub.handle_line(admin, "/ban other")
    assert out.notices[-1] == "banned other"
    assert not refused(hub, "fresh2", None, "203.0.113.60")


def test_banned_lists_both_and_unban_name_lifts_both(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    join(hub, "bob", BOB, "2001:db8::5")
    hub.handle_line(admin, "/ban bob spam")
    hub.handle_line(admin, "/banned")
    assert out.notices[-3] == "2 bans:"
    assert out.notices[-2].startswith(f"  fingerprint:{BOB} by boss")
    assert out.notices[-1].startswith("  ip:2001:db8::/64 by boss")
    hub.handle_line(admin, "/unban bob")  # bob's key owns the name "bob"
    assert out.notices[-1] == f"lifted the ban on {BOB} and 2001:db8::/64"
    hub.handle_line(admin, "/banned")
    assert out.notices[-1] == "no bans"
    assert not refused(hub, "anon", None, "2001:db8::77")


def test_key_and_ip_forms_ban_just_one(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    join(hub, "bob", BOB, "198.51.100.40")
    for form in ("key:", "fingerprint:"):
        hub.handle_line(admin, f"/ban {form}{BOB} spam")
        assert out.notices[-1] == f"banned {BOB}"
        assert refused(hub, "bob", BOB, "203.0.113.1")
        assert not refused(hub, "anon", None, "198.51.100.40")  # the address is not banned
        hub.handle_line(admin, f"/unban {form}{BOB}")
        assert out.notices[-1] == f"lifted the ban on {BOB}"
    hub.handle_line(admin, "/ban key:SHA256:short")
    assert out.notices[-1].startswith("not a fingerprint:")
    hub.handle_line(admin, "/ban ip:198.51.100.40")
    assert refused(hub, "anon", None, "198.51.100.40")
    assert not refused(hub, "bob", BOB, "203.0.113.1")  # the key is not banned


def test_keyless_ban_covers_the_ipv6_64(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    join(hub, "anon", None, "2001:db8:5:6::1")
    hub.handle_line(admin, "/ban anon")
    assert out.notices[-1] == "banned anon (no key, so their address 2001:db8:5:6::/64)"
    assert refused(hub, "anon2", None, "2001:db8:5:6:dead:beef::1")
    assert not refused(hub, "anon3", None, "2001:db8:5:7::1")


def test_an_ipv6_address_ban_covers_its_64_unless_a_range_is_given(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN, OPS_ADDRESS)
    hub.handle_line(admin, "/ban ip:2001:db8:7:7::1")
    assert out.notices[-1] == "banned 2001:db8:7:7::/64"
    assert refused(hub, "anon", None, "2001:db8:7:7:1:2:3:4")
    hub.handle_line(admin, "/unban ip:2001:db8:7:7::99")  # any address in it names it
    assert out.notices[-1] == "lifted the ban on 2001:db8:7:7::/64"
    hub.handle_line(admin, "/ban ip:2001:db8:7:7::1/128")
    assert out.notices[-1] == "banned 2001:db8:7:7::1/128"
    assert not refused(hub, "anon", None, "2001:db8:7:7::2")


def test_an_address_ban_never_locks_out_or_ends_an_admin(hub: Hub) -> None:
    admin, admin_out = join(hub, "boss", ADMIN, "198.51.100.50")
    op, _ = join(hub, "deputy", OTHER, OPS_ADDRESS)
    hub.handle_line(admin, "/op deputy")
    join(hub, "bob", BOB, "198.51.100.50")  # the admin's own network
    hub.handle_line(op, "/ban bob spam")
    hub.handle_line(op, "/ban ip:198.51.100.0/24 spam")
    assert hub.find("bob") is None
    assert hub.find("boss") is admin and admin_out.closed is None
    hub.leave(admin)
    assert not refused(hub, "boss", ADMIN, "198.51.100.50")


# ------------------------------------------------------- per-address limits


def test_open_connections_count_an_ipv6_64_as_one_address() -> None:
    limits = ConnectionLimits(10**6, 2, 10**6, new_connections_burst=10**6, new_connections_per_minute=10**6)
    assert limits.admit("2001:db8:0:1::1") is None
    assert limits.admit("2001:db8:0:1::2") is None
    assert limits.admit("2001:db8:0:1:ffff::3") == "too many connections from your address (at most 2)"
    assert limits.admit("10.0.0.1") is None and limits.admit("::ffff:10.0.0.1") is None
    assert limits.admit("10.0.0.1") is not None  # one IPv4 address, however spelt
    limits.release("2001:db8:0:1::2", handshaking=True)
    assert limits.admit("2001:db8:0:1::9") is None  # a released one frees its place


def test_open_connections_of_an_ipv6_48_share_a_larger_cap() -> None:
    limits = ConnectionLimits(10**6, 2, 10**6, new_connections_burst=10**6, new_connections_per_minute=10**6)
    for n in range(2 * NETWORK_SHARE):
        assert limits.admit(f"2001:db8:0:{n:x}::1") is None, n
    assert limits.admit("2001:db8:0:ffff::1") is not None  # the /48 holds its share
    assert limits.admit("2001:db8:1::1") is None


def test_offences_block_the_whole_ipv6_64_and_then_the_48() -> None:
    clock = Clock()
    offences = Offences(3, 60.0, 300.0, clock)
    for n in range(3):
        offences.record(f"2001:db8:0:1::{n + 1:x}")  # a new address each time, one /64
    assert offences.blocked_until("2001:db8:0:1:abcd::1") is not None
    assert offences.blocked_until("2001:db8:0:2::1") is None
    for n in range(3 * NETWORK_SHARE):
        offences.record(f"2001:db8:0:{n + 100:x}::1")  # a new /64 each time, one /48
    assert offences.blocked_until("2001:db8:0:ffff::1") is not None
    assert offences.blocked_until("2001:db8:1::1") is None
    clock.now += 301
    assert offences.blocked_until("2001:db8:0:1::1") is None


def test_refused_logins_from_one_64_block_it_at_the_door(hub: Hub) -> None:
    for n in range(10):
        with contextlib.suppress(JoinRefused):
            join(hub, "bad name", None, f"2001:db8:9:9::{n + 1:x}")
        if hub.screen_address("2001:db8:9:9::ffff") is not None:
            break
    assert hub.screen_address("2001:db8:9:9::ffff") is not None
    assert hub.screen_address("2001:db8:9:a::1") is None


# ------------------------------------------------------------ login_timeout


class _Watching(KeylessClient):
    """A keyless client that records why its connection ended."""

    def __init__(self) -> None:
        self.lost: Exception | None = None
        self.closed = asyncio.Event()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.closed.set()


async def test_a_connection_with_no_chat_session_is_closed_after_login_timeout(start_server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="sshchat")
    server: Server = await start_server(login_timeout=1.0)
    chatting = await server.connect("alice")  # has a session: stays
    conn, client = await asyncssh.create_connection(
        _Watching, "127.0.0.1", server.port, username="idle", known_hosts=None,
        client_keys=None, agent_path=None,
    )  # authenticated, and then opens no session
    assert isinstance(client, _Watching)
    await asyncio.wait_for(client.closed.wait(), timeout=10)  # closed by the server, not by us
    # A disconnect "by application" reaches asyncssh clients as a clean close
    # (OpenSSH prints its reason); the server says why in its log.
    assert "no chat session within login_timeout" in caplog.text
    await eventually(lambda: server.app.ctx.limits.total == 1, message="its place under the limits is released")
    chatting.line("still here")
    await chatting.wait_for("still here")
    conn.close()


async def test_a_session_channel_that_never_starts_a_shell_is_closed_after_login_timeout(start_server, caplog) -> None:
    """Opening the channel is not the end of logging in: a client that opens
    one and never asks for a shell or a command would otherwise hold its
    place under the address limits for ever."""
    caplog.set_level(logging.INFO, logger="sshchat")
    server: Server = await start_server(login_timeout=1.0)
    conn, client = await asyncssh.create_connection(
        _Watching, "127.0.0.1", server.port, username="lurker", known_hosts=None,
        client_keys=None, agent_path=None,
    )
    assert isinstance(client, _Watching)
    # asyncssh's public API always asks for a shell or command: open the channel by hand
    channel = asyncssh.SSHClientChannel(conn, asyncio.get_running_loop(), None, "utf-8", "strict", 2**20, 32768)
    await channel._open(b"session")  # open, then ask for nothing
    await asyncio.wait_for(client.closed.wait(), timeout=10)
    assert "no chat session within login_timeout" in caplog.text
    await eventually(lambda: server.app.ctx.limits.total == 0, message="its place under the limits is released")
    conn.close()
