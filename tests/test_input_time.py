"""A connection's input may take only so much server time (issue 14):
over the budget it is slowed, then cut off with a reason."""

from __future__ import annotations

import asyncio
import time

from sshchat.ssh.input_budget import ServerTimeBudget
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
    assert "your input took more than 0.5 ms of server time a second; disconnected" in hog.text
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
