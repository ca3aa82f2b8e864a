"""A connection's input may take only so much server time (issue 14):
over the budget it is slowed, then cut off with a reason."""

from __future__ import annotations

import asyncio
import time

from sshchat.chat.addresses import address_keys
from sshchat.ssh.input_budget import AddressBudgets, ServerTimeBudget
from tests.support.chat import Clock
from tests.support.server import Server
from tests.support.waiting import eventually


def test_over_budget_is_slowed_until_refilled_then_cut_off() -> None:
    clock = Clock()
    budget = ServerTimeBudget(ms_per_second=10, burst_ms=100, max_slowdowns=2, clock=clock)
    assert budget.spent(0.090) == 0.0  # within the burst
    pause = budget.spent(0.020)  # 10 ms over: 1 s at 10 ms a second to earn it back
    assert pause is not None and abs(pause - 1.0) < 1e-9
    clock.now += 1.0
    assert budget.spent(0.005) is not None  # slowed a second time
    clock.now += 0.5
    assert budget.spent(0.005) is None  # a third time with no recovery: cut off


def test_a_full_recovery_forgives_past_slowdowns() -> None:
    clock = Clock()
    budget = ServerTimeBudget(ms_per_second=10, burst_ms=100, max_slowdowns=1, clock=clock)
    for _ in range(5):
        assert budget.spent(0.110) is not None  # over, slowed
        clock.now += 60  # idle long enough to fill the bucket again
    assert budget.spent(0.001) == 0.0


def test_a_normal_typist_is_never_slowed() -> None:
    clock = Clock()
    budget = ServerTimeBudget(ms_per_second=50, burst_ms=500, max_slowdowns=5, clock=clock)
    for _ in range(10_000):  # 10 keys a second at 0.2 ms each
        clock.now += 0.1
        assert budget.spent(0.0002) == 0.0


async def test_input_that_takes_too_much_server_time_is_cut_off(start_server) -> None:
    server: Server = await start_server(input_ms_per_second=0.5, input_ms_burst=1.0, input_slowdowns=2)
    hog = await server.connect("hog", pty=True)
    watcher = await server.connect("watcher")
    hog.send("漢" * 1500)  # a long line: each later chunk of keys redraws part of it
    deadline = time.monotonic() + 30
    while "server time" not in hog.text and time.monotonic() < deadline:
        hog.send("\x01" + "漢" + "\x05" + "\x7f" * 2)  # Home, type, End, delete: a redraw each
        await asyncio.sleep(0.01)  # pacing only; the wait is the one below
    await eventually(lambda: "server time" in hog.text, timeout=30, message="the reason shown")
    assert "your input took more than 0.5 ms of server time a second" in hog.text
    await watcher.wait_for("hog left (sent too much)")


async def test_a_big_packet_of_keys_is_handled_a_slice_per_loop_turn() -> None:
    from sshchat.chat.hub import Hub
    from sshchat.ssh.session import INPUT_SLICE
    from sshchat.store.memory import MemoryStore
    from tests.support.channel import open_session
    from tests.support.settings import chat_settings

    hub = Hub(MemoryStore(), chat_settings())
    session, chan, _ = open_session(hub, "typist", pty=True)
    reading = []
    chan.pause_reading = lambda: reading.append("paused")  # type: ignore[attr-defined]
    chan.resume_reading = lambda: reading.append("resumed")  # type: ignore[attr-defined]
    handler = session.handler
    assert handler is not None
    pieces: list[int] = []
    real_input = handler.input

    def recording(data: str) -> None:
        pieces.append(len(data))
        real_input(data)

    handler.input = recording  # type: ignore[method-assign]
    session.data_received("\x02\x06" * 10_000, None)  # type: ignore[arg-type]
    assert pieces == [INPUT_SLICE] and reading == ["paused"]  # the rest waits for later loop turns
    await eventually(lambda: sum(pieces) == 20_000, message="all the keys handled")
    assert max(pieces) <= INPUT_SLICE
    await eventually(lambda: reading == ["paused", "resumed"], message="reading resumed")


# ------------------------------------------------- one address, many connections


def test_connections_from_one_address_share_its_budget() -> None:
    """16 connections from one address, each well within its own budget,
    get the address's share between them, not 16 times one connection's."""
    clock = Clock()
    shared = AddressBudgets(ms_per_second=150, burst_ms=1000, clock=clock)
    hogs = [ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7") for _ in range(16)]
    paused = [hog.spent(0.1) for hog in hogs]  # 1.6 s in all: 0.1 s each, within a connection's 0.5 s burst
    assert paused[:10] == [0.0] * 10  # the address's burst (1 s)...
    assert all(p is not None and p > 0 for p in paused[10:])  # ...and then everyone from there waits
    assert abs(max(p for p in paused if p) - 0.6 / 0.150) < 1e-9  # until the 0.6 s of debt is earned back
    other = ServerTimeBudget(50, 500, 5, clock, shared, "198.51.100.1")
    assert other.spent(0.1) == 0.0  # another address is not slowed


def test_an_address_over_budget_slows_its_connections_and_cuts_off_only_those_over_their_own() -> None:
    clock = Clock()
    shared = AddressBudgets(ms_per_second=150, burst_ms=1000, clock=clock)
    hogs = [ServerTimeBudget(50, 500, 2, clock, shared, "203.0.113.7") for _ in range(16)]
    outcomes = []
    for _ in range(4):  # each hog comes back after its pause, still at 20 ms a slice
        outcomes = [hog.spent(0.02) for hog in hogs for _ in range(4)]
        clock.now += 0.5
    assert None not in outcomes and max(p for p in outcomes if p is not None) > 0  # slowed, each within its own
    greedy = ServerTimeBudget(50, 500, 2, clock, shared, "203.0.113.7")
    assert None in [greedy.spent(0.3) for _ in range(4)]  # its own budget in debt, again and again: cut off


def test_a_quiet_neighbour_of_hogs_is_slowed_with_its_address_but_never_cut_off() -> None:
    """15 hogs and one person typing behind one IPv4 address (a NAT): the
    person waits while the address is in debt, but is neither cut off nor
    counted as an offender for what the others did."""
    clock = Clock()
    shared = AddressBudgets(ms_per_second=150, burst_ms=500, clock=clock)
    hogs = [ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7") for _ in range(15)]
    typist = ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7")
    keys = []
    for _ in range(100):  # 10 s: each hog 20 ms of every 100 ms, the typist a key of 0.5 ms
        for hog in hogs:
            hog.spent(0.02)
        keys.append(typist.spent(0.0005))
        clock.now += 0.1
    assert any(p for p in keys)  # slowed: its address is over budget...
    assert None not in keys  # ...but never cut off


def test_hogs_with_a_backlog_of_packets_are_cut_off_for_their_address_s_debt() -> None:
    """Behind one address, each within its own budget (the address's pauses
    keep it there) but always with more packets waiting than a slice
    handles: a flood, struck for the address's debt; the typist is not."""
    clock = Clock()
    shared = AddressBudgets(ms_per_second=150, burst_ms=500, clock=clock)
    hogs = [ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7") for _ in range(15)]
    typist = ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7")
    cut: set[int] = set()
    keys = []
    for _ in range(100):
        for n, hog in enumerate(hogs):
            if n not in cut and hog.spent(0.002, backlog=True) is None:
                cut.add(n)
        keys.append(typist.spent(0.0005))
        clock.now += 0.1
    assert len(cut) == len(hogs)
    assert None not in keys


def test_ipv6_counts_by_64_and_the_48_shares_ten_times() -> None:
    clock = Clock()
    shared = AddressBudgets(ms_per_second=100, burst_ms=1000, clock=clock)
    assert shared.charge(address_keys("2001:db8:1:1::1"), 1.0) == (True, 0.0)
    full, pause = shared.charge(address_keys("2001:db8:1:1::2"), 0.5)  # the same /64: another address of the same host
    assert not full and abs(pause - 5.0) < 1e-9
    # another /64 of the /48: its own bucket, the /48's shared
    assert shared.charge(address_keys("2001:db8:1:2::1"), 1.0) == (False, 0.0)
    for n in range(3, 11):  # eight more /64s, a second each: 10.5 s, past the /48's ten
        shared.charge(address_keys(f"2001:db8:1:{n}::1"), 1.0)
    assert shared.charge(address_keys("2001:db8:1:99::1"), 0.1)[1] > 0  # the /48 is spent: a fresh /64 in it waits too
    assert shared.charge(address_keys("2001:db8:2::1"), 0.1) == (True, 0.0)  # another /48 does not


def test_the_table_of_addresses_is_bounded() -> None:
    clock = Clock()
    shared = AddressBudgets(ms_per_second=100, burst_ms=1000, clock=clock, max_addresses=100)
    for n in range(5000):
        shared.charge(address_keys(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"), 0.5)
        assert len(shared) <= 100  # capped even while every bucket is in use
    clock.now += 10  # all full again
    shared.charge(address_keys("192.0.2.1"), 0.001)
    assert len(shared) == 1  # full buckets are dropped: only the one just charged is left


async def test_hogs_behind_one_address_are_cut_off_and_their_quiet_neighbours_are_not(start_server) -> None:
    """Each connection within its own (generous) budget, together over their
    address's: the hogs, with packets always waiting, are cut off; the
    neighbours (same address, a line now and then) are slowed with them
    while the address is in debt, but stay, and their lines get through."""
    server: Server = await start_server(
        input_ms_per_second=1000.0, input_ms_burst=1000.0, input_ms_per_address=20.0,
        input_ms_burst_per_address=1.0, input_slowdowns=2,
    )
    hogs = [await server.connect(f"hog{n}", pty=True) for n in range(3)]
    neighbour = await server.connect("neighbour")
    watcher = await server.connect("watcher")
    for hog in hogs:
        hog.send("漢" * 1500)

    async def flood() -> None:
        # Faster than they are served (20 packets per hog per 10 ms): the
        # packets pile up while the address is in debt, which marks a flood.
        # At one packet per 10 ms the hogs were only slowed where a packet
        # is cheap, and cut off only where it is dear (a slower machine).
        while True:
            for hog in hogs:
                if not hog.conn.is_closed():
                    for _ in range(20):
                        hog.send("\x01" + "漢" + "\x05" + "\x7f" * 2)  # Home, type, End, delete: a redraw each
            await asyncio.sleep(0.01)  # pacing of the flood, not a wait of the test

    flooding = asyncio.create_task(flood())
    try:
        await eventually(lambda: any("server time" in hog.text for hog in hogs), timeout=30, message="a hog cut off")
        neighbour.line("still here")
        await watcher.wait_for("neighbour: still here", timeout=30)  # once the address has paid its debt
    finally:
        flooding.cancel()
    assert "server time" not in neighbour.text and "server time" not in watcher.text
    cut = next(hog for hog in hogs if "server time" in hog.text)
    assert "or that of all connections from your address more than 20 ms; disconnected" in cut.text


async def test_input_of_all_connections_takes_turns_a_bounded_amount_per_loop_turn() -> None:
    """Busy connections' slices share each loop turn's input allowance, so a
    turn (and everyone else's message waiting for it) is never 16 slices long."""
    from sshchat.ssh.input_turns import InputTurns

    turns = InputTurns(per_turn=0.005)
    ran: list[int] = []

    def slice_of(n: int) -> None:  # a slice of input that takes 2 ms of server time
        ran.append(n)
        until = time.perf_counter() + 0.002
        while time.perf_counter() < until:
            pass

    for n in range(16):
        turns.later(lambda n=n: slice_of(n))
    assert turns.busy
    await asyncio.sleep(0)  # one loop turn
    assert 1 <= len(ran) <= 3  # 5 ms of slices, not all 16 (32 ms)
    await eventually(lambda: len(ran) == 16, message="every slice served, in the order asked")
    assert ran == list(range(16)) and not turns.busy


async def test_input_that_arrives_in_its_connection_s_turn_is_handled_in_that_turn() -> None:
    """bounded_receive hands a connection's packets over in its turn; the
    session's data they carry is handled then too, not queued a second time
    behind every other connection's input."""
    from sshchat.ssh.input_turns import InputTurns

    turns = InputTurns(per_turn=0.005)
    ran: list[str] = []

    def session_data() -> None:  # what Session.data_received does with data
        if turns.busy:
            turns.later(lambda: ran.append("data"))
        else:
            ran.append("data")

    turns.later(lambda: (ran.append("packets"), session_data()))  # the Receiver's turn
    for n in range(3):
        turns.later(lambda n=n: ran.append(f"other {n}"))
    await eventually(lambda: len(ran) == 5, message="all served")
    assert ran[:2] == ["packets", "data"]


async def test_input_from_a_connection_that_spent_nothing_goes_before_the_flood() -> None:
    """A person's line does not wait behind every slice of those flooding:
    input from a connection whose budgets are (at least half) full goes first."""
    from sshchat.ssh.input_turns import InputTurns

    turns = InputTurns(per_turn=0.005)
    ran: list[str] = []
    for n in range(16):
        turns.later(lambda n=n: ran.append(f"flood {n}"))
    clock = Clock()
    shared = AddressBudgets(ms_per_second=150, burst_ms=1000, clock=clock)
    typist = ServerTimeBudget(50, 500, 5, clock, shared, "198.51.100.1")
    hog = ServerTimeBudget(50, 500, 5, clock, shared, "203.0.113.7")
    hog.spent(0.3)  # more than half its burst
    assert typist.unspent and not hog.unspent
    turns.later(lambda: ran.append("person"), first=typist.unspent)
    await eventually(lambda: len(ran) == 17, message="all served")
    assert ran[0] == "person"
