"""Hostile clients: floods, too many connections, repeat offenders, idling.

Every limit here is a setting; each test sets the ones it exercises.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import asyncssh
import pytest

from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.ratelimit import Offences, TokenBucket
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder
from tests.support.clients import KeylessClient
from tests.support.server import Server
from tests.support.settings import chat_settings
from tests.support.waiting import eventually

# ------------------------------------------------------------- in the core


def test_token_bucket_lets_a_burst_through_then_a_steady_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 1.0, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0
    assert bucket.take() and not bucket.take()
    clock.now += 100
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_rate_limit_tells_once_per_burst_and_lets_nothing_through() -> None:
    clock = Clock()
    hub = Hub(MemoryStore(), chat_settings(rate_burst=10, rate_per_second=1.0), clock)
    sender_out, other_out = Recorder(), Recorder()
    sender = hub.join("paster", None, sender_out)
    hub.join("other", None, other_out)
    for n in range(15):  # a pasted block of 15 lines
        hub.handle_line(sender, f"line {n}")
    assert [t for t in other_out.texts() if t.startswith("line")] == [f"line {n}" for n in range(10)]
    assert sum("slow down" in n for n in sender_out.notices) == 1
    clock.now += 2
    hub.handle_line(sender, "later")
    assert "later" in other_out.texts()
    assert hub.offences.blocked_until("") is None


def test_repeated_floods_block_the_address_and_disconnect() -> None:
    clock = Clock()
    settings = chat_settings(rate_burst=2, rate_per_second=1.0, offence_threshold=3, offence_block=600)
    hub = Hub(MemoryStore(), settings, clock)
    out = Recorder()
    flooder = hub.join("flooder", None, out, "198.51.100.7")
    for _ in range(10):  # three bursts over the limit, a second apart
        for n in range(5):
            hub.handle_line(flooder, f"spam {n}")
        clock.now += 1.01
    assert out.closed is not None and "disconnected for flooding" in out.closed
    assert hub.find("flooder") is None
    with pytest.raises(JoinRefused, match="too many refused logins or floods from your address"):
        hub.join("innocent", None, Recorder(), "198.51.100.7")
    clock.now += 601
    hub.join("innocent", None, Recorder(), "198.51.100.7")


def test_refused_logins_earn_a_temporary_block() -> None:
    clock = Clock()
    hub = Hub(MemoryStore(), chat_settings(offence_threshold=5, offence_window=60, offence_block=300), clock)
    for _ in range(5):
        with pytest.raises(JoinRefused, match="invalid name"):
            hub.join("bad name", None, Recorder(), "203.0.113.9")
    assert hub.screen_address("203.0.113.9") is not None
    assert hub.screen_address("203.0.113.10") is None
    clock.now += 301
    assert hub.screen_address("203.0.113.9") is None


def test_offences_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    offences = Offences(3, 10.0, 60.0, clock)
    for _ in range(10):
        assert not offences.record("a")
        clock.now += 6
    assert offences.blocked_until("a") is None


def test_offence_memory_is_bounded() -> None:
    offences = Offences(5, 60.0, 60.0, Clock(), max_addresses=100)
    for n in range(10_000):
        offences.record(f"10.0.{n // 256}.{n % 256}")
    assert len(offences._recent) <= 101


def test_a_full_list_of_blocks_drops_the_ones_over_before_any_in_force() -> None:
    """At ``max_addresses`` blocks, a new one must not lift a block still in
    force while one that is over takes the place; with all in force, the one
    ending soonest goes, and the list stays bounded."""
    clock = Clock()
    offences = Offences(1, 10.0, 60.0, clock, max_addresses=2)
    assert offences.record("192.0.2.1")  # ends at +60
    clock.now += 1
    assert offences.record("192.0.2.2")  # ends at +61
    clock.now += 99
    assert offences.record("192.0.2.1")  # blocked again: ends at +160; .2 is over
    clock.now += 1
    assert offences.record("192.0.2.3")  # past the limit: .2's place is taken
    assert offences.blocked_until("192.0.2.1") is not None
    assert offences.blocked_until("192.0.2.3") is not None
    clock.now += 1
    assert offences.record("192.0.2.4")  # all in force: the soonest to end (.1) goes
    assert offences.blocked_until("192.0.2.1") is None
    assert offences.blocked_until("192.0.2.3") is not None and offences.blocked_until("192.0.2.4") is not None
    assert len(offences._blocked) == 2


@pytest.mark.parametrize(
    ("taken", "wanted"), [("alice", "aIice"), ("alice", "a1ice"), ("bob", "b0b"), ("modem", "modern")]
)
def test_look_alike_names_are_refused(taken: str, wanted: str) -> None:
    hub = Hub(MemoryStore(), chat_settings())
    hub.join(taken, "SHA256:k", Recorder())
    with pytest.raises(JoinRefused, match=f'"{wanted}" looks too much like "{taken}"'):
        hub.join(wanted, None, Recorder())
    other = hub.join("zed", None, Recorder())
    out = other.outlet
    hub.handle_line(other, f"/nick {wanted}")
    assert "looks too much like" in out.notices[-1]  # type: ignore[attr-defined]
    hub.leave(hub.find(taken))  # type: ignore[arg-type]
    with pytest.raises(JoinRefused, match="looks too much like"):  # registered, still taken
        hub.join(wanted, "SHA256:other", Recorder())


def test_idle_people_are_marked_away_and_come_back() -> None:
    clock = Clock()
    hub = Hub(MemoryStore(), chat_settings(idle_away=600), clock)
    sleepy = hub.join("sleepy", None, Recorder())
    out = Recorder()
    watcher = hub.join("watcher", None, out)
    clock.now += 601
    hub.handle_line(watcher, "/names")
    hub.sweep_idle()
    hub.handle_line(watcher, "/names")
    assert out.notices[-1] == "2 in #lobby: sleepy (away), watcher"
    hub.handle_line(sleepy, "I'm back")
    hub.handle_line(watcher, "/names")
    assert out.notices[-1] == "2 in #lobby: sleepy, watcher"


# --------------------------------------------------------------- over SSH


async def _refusal(port: int, name: str = "x", local: str = "127.0.0.1") -> str:
    """Connect and return the disconnect reason the server gave."""
    with pytest.raises(asyncssh.DisconnectError) as e:
        conn = await asyncssh.connect(
            "127.0.0.1", port, username=name, known_hosts=None, client_keys=None,
            agent_path=None, client_factory=KeylessClient, local_addr=(local, 0),
        )
        process = await conn.create_process()
        await process.wait_closed()
    return e.value.reason


async def test_rate_limit_over_ssh(start_server) -> None:
    server: Server = await start_server(rate_burst=10, rate_per_second=1.0)
    paster = await server.connect("paster")
    other = await server.connect("other")
    paster.send("".join(f"line {n}\n" for n in range(15)))
    await paster.wait_for("slow down: 10 messages at once, then 1 a second")
    paster.line("marker")  # still over the limit: nobody gets it
    await other.wait_for("line 9")
    # The behaviour under test: a real pause refills the bucket (1 a second).
    # The server's clock is the real one here; the refill arithmetic itself
    # is tested with a fake clock above. What follows waits for the line.
    await asyncio.sleep(1.2)
    paster.line("after a pause")
    await other.wait_for("paster: after a pause")
    assert "line 10" not in other.text and "marker" not in other.text


async def test_per_address_cap_is_explained(start_server) -> None:
    server: Server = await start_server(max_per_address=2)
    await server.connect("one")
    await server.connect("two")
    reason = await _refusal(server.port, "three")
    assert reason.startswith("too many connections from your address (at most 2)")
    # Another source address (all of 127/8 is this machine) is not affected.
    await server.connect("four", local_addr=("127.0.0.2", 0))


async def test_new_connections_per_address_are_rate_limited(start_server) -> None:
    """Reconnecting as someone new (a fresh message allowance each time) is
    bounded per address, before any handshake."""
    server: Server = await start_server(new_connections_burst=3, new_connections_per_minute=60)
    now = [0.0]
    server.app.ctx.limits._clock = lambda: now[0]  # time moves when the test says
    for n in range(3):
        client = await server.connect(f"fresh{n}")
        await client.close()
    reason = await _refusal(server.port, "fresh3")
    assert reason.startswith("too many new connections from your address (at most 3 at once, then 60 a minute)")
    await server.connect("elsewhere", local_addr=("127.0.0.7", 0))  # another address is not affected
    now[0] += 1.0  # a token a second comes back
    assert "Welcome" in (await server.connect("later")).text
    assert (await _refusal(server.port, "again")).startswith("too many new connections")


def test_arrivals_count_per_ipv4_address_and_ipv6_64() -> None:
    from sshchat.ssh.limits import ConnectionLimits

    now = [0.0]
    limits = ConnectionLimits(
        100, 100, 100, new_connections_burst=2, new_connections_per_minute=6, clock=lambda: now[0]
    )
    for address in ("10.0.0.1", "10.0.0.1"):
        assert limits.admit(address) is None
    assert limits.admit("10.0.0.1") is not None
    assert limits.admit("10.0.0.2") is None
    assert limits.admit("2001:db8::1") is None and limits.admit("2001:db8::ffff:2") is None
    assert limits.admit("2001:db8::3") is not None  # the same /64
    assert limits.admit("2001:db8:0:1::1") is None  # the next /64
    assert limits.admit("::ffff:10.0.0.2") is None  # 10.0.0.2 by another spelling: its second token...
    assert limits.admit("10.0.0.2") is not None  # ...so the same bucket is empty now
    now[0] = 10.0  # 6 a minute: one back after 10 s
    assert limits.admit("10.0.0.1") is None and limits.admit("10.0.0.1") is not None
    assert limits.total == 8  # refused connections are not counted


def test_an_ipv6_site_shares_a_larger_allowance() -> None:
    """A /48 holds 65,536 /64s, each with its own burst: together they get
    NETWORK_SHARE times one /64's, not 65,536 times."""
    from sshchat.ssh.limits import NETWORK_SHARE, ConnectionLimits

    limits = ConnectionLimits(10**6, 10**6, 10**6, new_connections_burst=2, new_connections_per_minute=6,
                              clock=lambda: 0.0)
    for n in range(2 * NETWORK_SHARE):
        assert limits.admit(f"2001:db8:0:{n:x}::1") is None, n  # a new /64 each time, one connection each
    assert limits.admit("2001:db8:0:ffff::1") is not None  # the /48's allowance is spent
    assert limits.admit("2001:db8:1::1") is None  # the next /48 is not affected
    assert limits.admit("10.1.2.3") is None  # nor IPv4


async def test_global_cap_is_explained(start_server) -> None:
    server: Server = await start_server(max_connections=2)
    await server.connect("one")
    await server.connect("two", local_addr=("127.0.0.2", 0))
    assert "the server is full (2 connections)" in await _refusal(server.port, "three", "127.0.0.3")


async def test_blocked_address_is_refused_before_the_handshake(start_server) -> None:
    server: Server = await start_server(offence_threshold=3)
    for _ in range(3):
        bad = await server.connect("9bad", local_addr=("127.0.0.5", 0))
        assert await bad.exit_status() == 1
    reason = await _refusal(server.port, "good", "127.0.0.5")
    assert reason.startswith("too many refused logins or floods from your address; try again until")
    ok = await server.connect("good", local_addr=("127.0.0.6", 0))
    assert "Welcome" in ok.text


async def test_input_flood_ends_the_session(start_server) -> None:
    server: Server = await start_server(input_bytes_per_minute=20_000)
    flooder = await server.connect("flooder")
    watcher = await server.connect("watcher")
    for _ in range(30):
        flooder.send("x" * 900 + "\n")
    assert await flooder.exit_status() == 0
    assert "you sent more than 20000 bytes in a minute; disconnected" in flooder.text
    await watcher.wait_for("flooder left (sent too much)")


async def test_idle_kick_when_configured(start_server) -> None:
    server: Server = await start_server(idle_away=0.2, idle_kick=0.6)
    sleepy = await server.connect("sleepy")
    watcher = await server.connect("watcher")

    async def names_show_sleepy_away() -> bool:
        answers = watcher.text.count(" in #lobby: ")
        watcher.line("/names")
        await watcher.wait_for(lambda c: c.text.count(" in #lobby: ") > answers)
        return "sleepy (away)" in watcher.text.rsplit(" in #lobby: ", 1)[1]

    # Away after 0.2 s idle, and still there (not yet kicked at 0.6 s).
    await eventually(names_show_sleepy_away, timeout=5, interval=0.05)
    assert await sleepy.exit_status(timeout=5) == 0
    assert "disconnected after 0 minutes idle" in sleepy.text


async def test_handshake_flood_does_not_slow_the_chat(start_server) -> None:
    """Hundreds of TCP connections that never finish the SSH handshake."""
    server: Server = await start_server(max_startups=50, max_per_address=100_000, login_timeout=30)
    alice = await server.connect("alice")
    bob = await server.connect("bob", local_addr=("127.0.0.2", 0))
    loop = asyncio.get_running_loop()
    sockets = []
    try:
        for _ in range(int(os.environ.get("SSHCHAT_TEST_FLOOD", "1000"))):
            s = socket.socket()
            s.setblocking(False)
            try:
                await loop.sock_connect(s, ("127.0.0.1", server.port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        latencies = []
        for n in range(20):
            sent = time.perf_counter()
            alice.line(f"ping {n}")
            await bob.wait_for(f"alice: ping {n}")
            latencies.append(time.perf_counter() - sent)
        assert server.app.ctx.limits.handshaking <= 50
        latencies.sort()
        print(f"\nhandshake flood: {len(sockets)} idle TCP connections; chat latency "
              f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
        assert latencies[-1] < 0.5, latencies
        # New real logins are refused while the flood holds every slot...
        assert "busy with other logins" in await _refusal(server.port, "carol", "127.0.0.3")
    finally:
        for s in sockets:
            s.close()
    # ...and get in once it is gone.
    await eventually(lambda: server.app.ctx.limits.handshaking == 0, message="the flood's handshakes are over")
    carol = await server.connect("carol", local_addr=("127.0.0.3", 0))
    assert "Welcome" in carol.text


async def test_environment_requests_are_bounded(start_server) -> None:
    server: Server = await start_server()
    env = {f"VAR{n}": "x" * 100 for n in range(50)}
    env["HUGE"] = "y" * 100_000
    env["NO_COLOR"] = "1"
    client = await server.connect("envy", pty=True, env=env)
    client.send("hello\r")
    await client.wait_for("envy: hello")
    [conn] = [c for c in server.app.ctx.connections]
    channel = next(iter(conn._channels.values()))
    assert len(channel._env) <= 16
    assert all(len(v) <= 256 for v in channel._env.values())


async def test_resize_storm_counts_as_input(start_server) -> None:
    server: Server = await start_server(input_bytes_per_minute=20_000)
    storm = await server.connect("storm", pty=True)
    watcher = await server.connect("watcher")
    for n in range(200):  # 200 resizes x 256 bytes of budget each
        storm.process.change_terminal_size(40 + n % 40, 24)
    assert await storm.exit_status() == 0
    await watcher.wait_for("storm left (sent too much)")


def test_editing_a_long_ascii_line_measures_no_characters(monkeypatch) -> None:
    """Each key lays the line out again: for ASCII that is arithmetic, not a
    wcwidth call per character (a 4000-character line once cost ~4 ms a key)."""
    from sshchat.term.editor import LineEditor
    from tests.support.screen import Counting

    count = Counting(monkeypatch)
    editor = LineEditor(80, max_chars=2048, max_submit=1024)
    editor.set_prompt("[x #lobby] ")
    editor.draw()
    editor.feed("y" * 2000)
    count.calls = 0
    for _ in range(50):
        editor.feed("\x02")  # Ctrl-B: one step left, a full redraw
    assert count.calls <= 50 * 2  # moving the cursor looks at a character or two, not the line
    editor.feed("\x01")  # Ctrl-A: to the start, so each edit lays out the whole line again
    count.calls = 0
    for _ in range(25):
        editor.feed("z")
        editor.feed("\x7f")
    assert editor.text == "y" * 2000
    assert count.calls <= 50 * 2  # each edit measures the key's character, not the 2000 after it


async def test_the_clockwork_goes_on_after_a_turn_that_failed(start_server: Any, caplog: Any) -> None:
    """One fault in a turn (a bug of ours, met once) must not stop the
    summaries, idle marks and cluster updates for good."""
    server: Server = await start_server(idle_away=0.2)
    hub, turns = server.app.hub, []
    tick = hub.tick

    def failing_once() -> None:
        turns.append(1)
        if len(turns) == 1:
            raise RuntimeError("a fault of ours")
        tick()

    hub.tick = failing_once  # type: ignore[method-assign]
    await eventually(lambda: len(turns) >= 3, timeout=5)
    assert "the clockwork's turn failed" in caplog.text
