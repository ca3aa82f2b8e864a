"""Each connection's incoming packets handled a bounded slice at a time, and their server time measured.

What asyncssh does (2.24, ``SSHConnection.data_received`` and
``_recv_data``): it appends what one socket read brought to the
connection's input buffer and handles every complete packet in it before
returning: decrypting, checking the MAC, dispatching, calling the
application. A socket read holds up to 256 KB; of one-byte channel data
packets or empty SSH_MSG_IGNORE packets (~36-110 us of Python each) that is
up to ~0.4 s in one callback, during which the event loop serves no one
else. None of that time is counted anywhere: IGNORE packets never reach
the application at all, and pausing a channel does not slow them (its
window counts data bytes, not packets). One keyless client sending 100,000
one-NUL packets cost 10.9 s of server CPU and delayed others' chat by up to
6.7 s; 300,000 IGNORE packets cost 10.8 s.

What we change: a connection the application has given a ``Receiver``
(``attach``) has its buffer handled for at most SLICE seconds per call (a
packet, once started, is finished); the rest stays in asyncssh's buffer,
the transport stops being read, and the handling goes on in a later
event-loop turn, when the application's queue of input (``turns``) serves
it. The time each slice took (less what the application charged for
itself meanwhile, so nothing counts twice) is charged to the application's
budget: over it, the transport is not read until the budget allows; cut
off, the application is told (and disconnects the client). While others'
input waits its turn, newly arrived bytes wait behind it too. Connections
without a Receiver (clients) run asyncssh's own code. Upstream this would
be a per-connection "max work per callback" option and a hook.

Gain: the event loop is never held by one connection's packets for more
than ~SLICE; a flood of one-byte or IGNORE packets is paid for from the
sender's own time budget and is cut off like any other input flood.
Measured with ``python -m bench.keys_latency --seconds 6 --nice 0`` (one
sitting, without the patch against with it; bob's p99 chat latency while
the attack runs, and the server's CPU time meanwhile): one client, a NUL
key per packet: 1909 ms, never cut off, 7.1 s CPU, against 12 ms, cut off,
0.8 s; 16 such clients from one address: 9.7 s, none cut off, 18.1 s CPU,
against 52 ms, all cut off, 1.1 s; one client's IGNORE flood: 127 ms,
never cut off, 2.9 s, against 7 ms, cut off, 1.0 s; 16 IGNORE flooders:
653 ms, none cut off, against 29 ms, all cut off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from sshchat.ssh.patches.touch import Class, Function, SetBy, Swap, Swaps, Touch

# Seconds of packet handling per call, for one connection.
SLICE = 0.002

_ATTR = "_sshchat_receiver"  # where a connection's Receiver is kept: on the connection, dropped with it

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.connection:SSHConnection._recv_data", "(self)"),
    Function("asyncssh.connection:SSHConnection.data_received", "(self, data, datatype)"),
    Function("asyncssh.connection:SSHConnection._reset_keepalive_timer", "(self)"),
    Function("asyncssh.connection:SSHConnection._send_disconnect", "(self, code, reason, lang)"),
    Function("asyncssh.connection:SSHConnection._force_close", "(self, exc)"),
    Function("asyncssh.connection:SSHConnection.internal_error", "(self, exc_info, error_logger)"),
    SetBy("asyncssh.connection:SSHConnection.__init__", ("_inpbuf", "_recv_handler", "_transport")),
    Class("asyncssh.misc:DisconnectError"),
)


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Turns(Protocol):
    """The application's queue of input work (sshchat.ssh.input_turns.InputTurns)."""

    @property
    def busy(self) -> bool: ...

    def later(self, callback: Callable[[], None], first: bool = False) -> Cancellable: ...


class Budget(Protocol):
    """The connection's server-time budget (sshchat.ssh.input_budget.ServerTimeBudget)."""

    @property
    def charged(self) -> float:
        """Seconds charged so far, by anyone."""
        ...

    @property
    def struck(self) -> int:
        """Strikes (slowdowns counted towards a cut-off) so far, by anyone."""
        ...

    @property
    def unspent(self) -> bool: ...

    def spent(self, seconds: float, backlog: bool = False, strike: bool = True) -> float | None:
        """Charge; how long to stop reading (0.0: not), or None: cut off.
        ``backlog``: more was waiting than one slice handled; ``strike``:
        False if this slowdown was struck already (by the application)."""
        ...


class Receiver:
    """How one connection's incoming bytes are handled: a slice at a time,
    in turn with others' input, paid for from ``budget``; ``cut_off`` is
    called (once) when the budget says so."""

    __slots__ = ("_budget", "_conn", "_cut", "_cut_off", "_paused", "_turns", "_waiting")

    def __init__(self, conn: Any, budget: Budget, turns: Turns, cut_off: Callable[[], None]) -> None:
        self._conn = conn
        self._budget = budget
        self._turns = turns
        self._cut_off = cut_off
        self._waiting: Cancellable | None = None  # a pause, or a place in the queue
        self._paused = False  # we stopped the transport being read
        self._cut = False

    def receive(self) -> None:
        """New bytes are in the buffer (or an async packet handler finished)."""
        if self._cut:
            return
        if self._waiting is not None:  # handled when its turn comes
            self._pause()
            return
        if self._turns.busy:  # others' input waits: queue with it
            self._pause()
            self._waiting = self._turns.later(self._run, first=self._budget.unspent)
            return
        self._run()

    def close(self) -> None:
        """The connection is gone: nothing more is handled."""
        self._cut = True
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None

    def _run(self) -> None:
        """Handle one slice of the buffer, as asyncssh's ``_recv_data`` does
        all of it, and charge its time."""
        self._waiting = None
        conn = self._conn
        if self._cut or conn._transport is None:
            return
        budget = self._budget
        before, struck = budget.charged, budget.struck
        started = time.perf_counter()
        deadline = started + SLICE
        more = False
        conn._reset_keepalive_timer()
        try:
            while conn._inpbuf and conn._recv_handler():
                if time.perf_counter() >= deadline:
                    more = bool(conn._inpbuf)
                    break
        except _disconnect_error() as exc:
            conn._send_disconnect(exc.code, exc.reason, exc.lang)
            conn._force_close(exc)
        except Exception:
            conn.internal_error(None, None)
        seconds = time.perf_counter() - started - (budget.charged - before)
        # The application, slowed (or cut off) for its own share of this slice,
        # has struck this slowdown already: one slowdown, one strike (a second
        # would cut a flooder off after half its input_slowdowns, and record
        # its offence twice).
        pause = budget.spent(max(seconds, 0.0), more, strike=budget.struck == struck)
        if conn._transport is None or self._cut:
            return
        if pause is None:
            self._cut = True
            self._pause()
            self._cut_off()
        elif pause > 0:
            self._pause()
            self._waiting = asyncio.get_running_loop().call_later(pause, self._queue)
        elif more:
            self._pause()
            self._queue()
        elif self._paused:
            self._paused = False
            conn._transport.resume_reading()

    def _queue(self) -> None:
        self._waiting = self._turns.later(self._run)

    def _pause(self) -> None:
        transport = self._conn._transport
        if not self._paused and transport is not None:
            self._paused = True
            transport.pause_reading()


def _disconnect_error() -> Any:
    from asyncssh.misc import DisconnectError

    return DisconnectError


def attach(conn: Any, receiver: Receiver) -> None:
    """Give ``conn`` (an asyncssh connection) its Receiver. Harmless with the
    patch out: then asyncssh handles its packets as it always does."""
    setattr(conn, _ATTR, receiver)


def _recv_data(self: Any) -> None:
    receiver = self.__dict__.get(_ATTR)
    if receiver is None:
        _swap.original(self)
    else:
        receiver.receive()


_swap = Swap("asyncssh.connection:SSHConnection._recv_data", _recv_data)
_swaps = Swaps(_swap)

install, uninstall, installed = _swaps.install, _swaps.uninstall, _swaps.installed
