"""asyncssh's own work on each packet counts against the sender's time budget
(issue 14; sshchat/ssh/patches/bounded_receive.py): a flood of packets that
cost the chat nothing (SSH_MSG_IGNORE, one no-op byte each) is cut off, and
others' messages keep arriving while it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import asyncssh
import paramiko
import pytest
from asyncssh.constants import MSG_IGNORE
from asyncssh.packet import String

from sshchat.ssh import patches
from sshchat.ssh.input_budget import ServerTimeBudget
from sshchat.ssh.input_turns import InputTurns
from sshchat.ssh.patches import bounded_receive
from tests.support.chat import Clock
from tests.support.clients import Client
from tests.support.server import Server
from tests.support.waiting import eventually

# Budgets a flood goes over within a second or so once asyncssh's work on
# its packets counts. Not smaller: the handler's own time for a NUL key per
# packet (~10 us each when each packet is handled alone, as before) would
# then be enough to cut this flood off, though not one sent by a client
# on another machine at the defaults.
BUDGET = {"input_ms_per_second": 150.0, "input_ms_burst": 200.0, "input_slowdowns": 2}
PROBE_WITHIN = 1.0  # seconds: how late one probe line may reach the other person during a flood


async def _flood(client: Client, kind: str, stop: asyncio.Event) -> int:
    """Send packets until cut off (or ``stop``): IGNORE packets, or one NUL
    key per packet. Yields to the loop now and then, as a client on
    another machine would not need to."""
    sent = 0
    while not stop.is_set() and not client.conn.is_closed():
        try:
            for _ in range(200):
                if kind == "ignore":
                    client.conn.send_packet(MSG_IGNORE, String(b""))  # type: ignore[attr-defined]
                else:
                    client.process.stdin.write("\0")  # each write is one packet
                sent += 1
        except (OSError, asyncssh.Error, BrokenPipeError):
            break
        await asyncio.sleep(0)
    return sent


async def _probes_arrive_until(alice: Client, bob: Client, done: asyncio.Event, timeout: float) -> int:
    """alice says numbered lines while the flood lasts; each must reach bob
    within PROBE_WITHIN seconds. Returns how many were said."""
    n = 0
    end = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < end:
        alice.line(f"probe {n}")
        await bob.wait_for(f"alice: probe {n}\n", timeout=PROBE_WITHIN)
        n += 1
        await asyncio.sleep(0.05)  # the probes' pace; the waits are the ones above
    return n


async def _flood_is_cut_off_while_others_chat(server: Server, kind: str) -> Client:
    alice = await server.connect("alice")
    bob = await server.connect("bob")
    mallory = await server.connect("mallory", pty=True)
    await alice.wait_for("mallory joined")
    stop = asyncio.Event()
    gone = asyncio.Event()
    flooding = asyncio.create_task(_flood(mallory, kind, stop))
    flooding.add_done_callback(lambda _: gone.set())
    try:
        probes = await _probes_arrive_until(alice, bob, gone, timeout=30)
        assert gone.is_set(), "the flood was never cut off"
        assert probes >= 1
        assert mallory.conn.is_closed() or mallory.process.exit_status is not None
        await bob.wait_for("mallory left (sent too much)")
        assert "server time" in mallory.text  # the reason, on mallory's screen
    finally:
        stop.set()
        await flooding
    alice.line("after the flood")
    await bob.wait_for("alice: after the flood")
    return mallory


async def test_an_ignore_flood_is_cut_off_and_others_keep_chatting(start_server) -> None:
    server: Server = await start_server(**BUDGET)
    await _flood_is_cut_off_while_others_chat(server, "ignore")


async def test_one_no_op_byte_per_packet_is_cut_off_and_others_keep_chatting(start_server) -> None:
    server: Server = await start_server(**BUDGET)
    await _flood_is_cut_off_while_others_chat(server, "nul")


def _ignore_flood_before_login(port: int, result: dict[str, object]) -> None:
    """A paramiko client that does the key exchange, never logs in, and
    sends IGNORE packets until the server hangs up."""
    transport = paramiko.Transport(("127.0.0.1", port))
    ignore = paramiko.Message()  # an empty one, as RFC 4253 11.2 has it (paramiko's send_ignore sends raw bytes)
    ignore.add_byte(bytes([MSG_IGNORE]))
    ignore.add_string(b"")
    try:
        transport.start_client(timeout=10)
        sent, hung_up, end = 0, False, time.monotonic() + 30
        while transport.is_active() and time.monotonic() < end:
            try:
                transport._send_message(ignore)
            except Exception:  # the server hung up mid-send
                hung_up = True
                break
            sent += 1
        result["sent"] = sent
        result["cut off"] = hung_up or not transport.is_active()
    finally:
        transport.close()


async def test_an_ignore_flood_before_logging_in_is_cut_off_and_recorded(start_server, caplog) -> None:
    server: Server = await start_server(**BUDGET, offence_threshold=1)
    bob = await server.connect("bob")
    result: dict[str, object] = {}
    thread = threading.Thread(target=_ignore_flood_before_login, args=(server.port, result), daemon=True)
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        thread.start()
        await eventually(lambda: not thread.is_alive(), timeout=40, message="the flooding client done")
    assert result.get("cut off") is True, result
    assert any("packet flood" in r.getMessage() for r in caplog.records)
    # recorded as an offence of the address: with a threshold of 1 it is blocked now
    with pytest.raises((asyncssh.Error, OSError)):
        await server.connect("again")
    bob.line("still chatting")
    await bob.wait_for("bob: still chatting")


async def test_with_the_patches_off_the_server_still_works_unbudgeted(start_server, monkeypatch, caplog) -> None:
    """The gate keeps bounded_receive out (an asyncssh it was not checked
    against): a warning says what that means, and people still chat, a
    flood of IGNORE packets included (it is not cut off: nothing counts it)."""
    monkeypatch.setattr(asyncssh, "__version__", "2.25.0")
    try:
        with caplog.at_level(logging.WARNING, logger="sshchat"):
            server: Server = await start_server(**BUDGET)
        assert patches.RECEIVE_BOUND_OFF in [r.getMessage() for r in caplog.records]
        alice = await server.connect("alice")
        bob = await server.connect("bob")
        mallory = await server.connect("mallory")
        stop = asyncio.Event()
        flooding = asyncio.create_task(_flood(mallory, "ignore", stop))
        try:
            for n in range(3):
                alice.line(f"line {n}")
                await bob.wait_for(f"alice: line {n}", timeout=10)
        finally:
            stop.set()
            await flooding
        assert not mallory.conn.is_closed()
    finally:
        monkeypatch.undo()
        with contextlib.suppress(Exception):
            patches.install()


class _Transport:
    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _Connection:
    """What a Receiver reads of an asyncssh connection: a buffer of packets,
    each handled (by ``_recv_handler``) by calling it."""

    def __init__(self) -> None:
        self._inpbuf: list[Callable[[], None]] = []
        self._transport = _Transport()

    def _reset_keepalive_timer(self) -> None:
        pass

    def _recv_handler(self) -> bool:
        self._inpbuf.pop(0)()
        return True


async def test_a_slowdown_of_the_session_inside_a_packet_is_one_strike_not_two() -> None:
    """Each packet's data takes the session over its own budget (the session
    charges that, and is slowed); then the Receiver charges the packet's
    handling. One slowdown is one strike: the session is cut off at the
    third, as input_slowdowns=2 says, not at the second, and the Receiver
    does not cut it off (and record its offence) a second time."""
    budget = ServerTimeBudget(ms_per_second=10, burst_ms=10, max_slowdowns=2, clock=Clock())
    conn = _Connection()
    outcomes: list[float | None] = []
    cut: list[str] = []
    for _ in range(3):  # three packets, each its own Receiver slice
        receiver = bounded_receive.Receiver(conn, budget, InputTurns(0.005), lambda: cut.append("cut off"))
        conn._inpbuf.append(lambda: outcomes.append(budget.spent(0.05)))  # the session's charge for its input
        receiver.receive()
        receiver.close()
    assert [p is None for p in outcomes] == [False, False, True]
    assert cut == []
