"""asyncssh's log calls look at the level before they format anything.

What asyncssh does (2.24): ``SSHPacketLogger._log_packet``, run for every
packet sent and received, formats the packet's name and size before its
logger finds packet logging (debug level 3) off; and ``SSHLogger.log``
turns every argument of every log call into text (host and port tuples,
bytes) before the logging module finds the level disabled. With its
logger at WARNING (as sshchat sets it) all of that work is thrown away,
several times per login and once per packet.

What we change: ``_log_packet`` returns at once unless the debug level is
3 or more, the level its logger's ``packet()`` checks in the end; ``log``
returns at once unless ``isEnabledFor(level)``. Whatever is logged is
logged as before.

Gain: a packet's log call 0.52 -> 0.09 us (every packet, both ways), an
INFO call with a host/port argument 1.34 -> 0.18 us (``python -m
bench.patches``); server CPU per login ~3.0 -> 2.7-2.9 ms (1000 logins,
bench.loadgen).
"""

from __future__ import annotations

from typing import Any

from asyncssh import logging as ssh_logging

from sshchat.ssh.patches.touch import Function, Swap, Swaps, Touch, Value

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.packet:SSHPacketLogger._log_packet", "(self, msg, pkttype, pktid, packet, note)"),
    Function("asyncssh.logging:SSHLogger.log", "(self, level, msg, *args, **kwargs)"),
    Function("asyncssh.logging:SSHLogger.isEnabledFor", "(self, level)"),
    Value("asyncssh.logging:SSHLogger._debug_level", kind=int),
)


def _log_packet(self: Any, msg: str, pkttype: int, pktid: Any, packet: Any, note: str) -> None:
    if _ssh_logger._debug_level >= 3:  # what asyncssh's logger.packet() checks, in the end
        _packet_swap.original(self, msg, pkttype, pktid, packet, note)


def _log(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
    if self.isEnabledFor(level):
        _log_swap.original(self, level, msg, *args, **kwargs)


_packet_swap = Swap("asyncssh.packet:SSHPacketLogger._log_packet", _log_packet)
_log_swap = Swap("asyncssh.logging:SSHLogger.log", _log)
_swaps = Swaps(_packet_swap, _log_swap)

_ssh_logger: Any = None


def install() -> None:
    global _ssh_logger
    _ssh_logger = ssh_logging.SSHLogger
    _swaps.install()


uninstall, installed = _swaps.uninstall, _swaps.installed
