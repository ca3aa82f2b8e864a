"""Readers of /proc: CPU time, resident memory, listening ports.

Everything is read from /proc rather than asked of the process, so the
server under test needs no cooperation and pays nothing for being measured,
and the same code measures a server written in another language.
"""

from __future__ import annotations

import contextlib
import os
import re

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_VMRSS = re.compile(rb"VmRSS:\s+(\d+)\s+kB")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of ``pid`` (all threads), or "self".

    Fields 14 and 15 of /proc/PID/stat; the command name in field 2 may hold
    spaces and parentheses, so split after its last ``)``.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat.

    With the server and the generator on one machine, this tells whether
    the machine itself was the limit, whichever process looked busy.
    """
    with open("/proc/stat", "rb") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])  # guest time is already counted in user
    idle = fields[3] + fields[4]  # idle + iowait
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of ``pid`` in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status", "rb") as f:
        m = _VMRSS.search(f.read())
    return int(m.group(1)) if m else 0


def family(pids: list[int]) -> list[int]:
    """``pids`` and all their living descendants (from each /proc/PID/stat's ppid).

    A server with ``--workers N`` is a parent and N worker processes; its
    CPU and memory are the whole family's. Read afresh each time, so a
    restarted worker is counted too.
    """
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [p for p in pids if alive(p)]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(parents.get(pid, []))
    return found


def family_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` and their descendants (see :func:`family`)."""
    total = 0.0
    for pid in family(pids):
        with contextlib.suppress(OSError):  # ended meanwhile
            total += cpu_seconds(pid)
    return total


def family_rss_kib(pids: list[int]) -> int:
    """Resident KiB of ``pids`` and their descendants, summed."""
    total = 0
    for pid in family(pids):
        with contextlib.suppress(OSError):
            total += rss_kib(pid)
    return total


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (whose /proc stays readable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def listening_ports(pid: int) -> list[tuple[str, int]]:
    """(IPv4 address, port) of the TCP sockets ``pid`` is listening on.

    Finds the port of a server started with ``--port 0`` even when its log
    level hides the "listening on" line: the socket inodes among its open
    files, looked up in /proc/PID/net/tcp.
    """
    inodes: set[str] = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open(f"/proc/{pid}/net/tcp") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return []
    found = []
    for row in rows:
        cols = row.split()
        if len(cols) < 10 or cols[3] != _LISTEN or cols[9] not in inodes:
            continue
        addr_hex, port_hex = cols[1].split(":")
        addr = ".".join(str(b) for b in reversed(bytes.fromhex(addr_hex)))
        found.append((addr, int(port_hex, 16)))
    return found
