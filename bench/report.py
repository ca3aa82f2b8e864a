"""Turning raw counts into figures: percentiles, the JSON object, the table.

Percentiles are nearest-rank over every delivery (no sampling, no
histogram), so p99 and max are the real ones; sorting a few million
integers once at the end is cheaper than any per-delivery bookkeeping.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any


def percentiles(values: Sequence[float], points: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """{"p50": .., "p90": .., "p99": .., "max": ..} of ``values`` (nearest rank)."""
    if not values:
        return {**{f"p{p:g}": 0.0 for p in points}, "max": 0.0}
    ordered = sorted(values)
    n = len(ordered)
    out = {f"p{p:g}": float(ordered[min(n - 1, max(0, math.ceil(n * p / 100) - 1))]) for p in points}
    out["max"] = float(ordered[-1])
    return out


def scaled(figures: dict[str, float], factor: float, digits: int = 2) -> dict[str, float]:
    """The same figures times ``factor`` (e.g. microseconds to milliseconds), rounded."""
    return {k: round(v * factor, digits) for k, v in figures.items()}


def from_enter(
    latencies_us: Sequence[int], keys: Sequence[int], enter_late_us: Mapping[int, Sequence[int]]
) -> tuple[array[int], int]:
    """Latencies of typed lines, counted from when Enter actually went out.

    A typed line carries the time its Enter was due (its text is fixed
    before the first key); its sender kept how late (or early) Enter really
    went, by sequence number. ``keys[i]`` is ``sender << 32 | seq`` of
    ``latencies_us[i]``. Returns the corrected latencies and how many could
    not be corrected (kept as they were; should be 0).
    """
    out: array[int] = array("q")
    missing = 0
    for latency, key in zip(latencies_us, keys, strict=True):
        late = enter_late_us.get(key >> 32)
        seq = key & 0xFFFFFFFF
        if late is None or seq >= len(late):
            missing += 1
            out.append(latency)
        else:
            out.append(latency - late[seq])
    return out, missing


def write_json(path: str, report: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=False)
        f.write("\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(report: dict[str, Any]) -> str:
    """A short human summary: one figure per line, the ones people compare."""
    p = report["params"]
    pids = " ".join(map(str, report["server"].get("pids") or []))
    rows: list[tuple[str, Any]] = [
        ("server", f"{report['server']['target']} (pid {pids or '?'})"),
        ("users / senders / rate", f"{p['users']} / {p['senders']} / {p['rate']:g} msg/s"),
        ("terminals", _terminals(p)),
        ("generator processes", p["processes"]),
        ("logins/s", report["logins"]["per_second"]),
        ("login p50/p99 ms", "{p50:.1f} / {p99:.1f}".format(**report["logins"]["latency_ms"])),
        ("server CPU ms/login", report["logins"].get("server_cpu_ms_per_login")),
        ("host CPU % during logins", report["logins"].get("host_cpu_percent")),
        ("other load during logins (cores)", report["logins"].get("other_load_cores")),
    ]
    if report.get("mode") == "messages":
        lat = report["latency_ms"]
        rows += [
            ("deliveries/s", report["deliveries_per_second"]),
            ("expected / received", f"{report['expected']:,} / {report['received']:,}"),
            ("lost / late", f"{report['lost']:,} / {report['late']:,} (late > {p['late_ms']:g} ms, of timed)"),
            ("timed: receivers / deliveries",
             f"{report['timed_receivers']:,} of {report['receivers']:,} / {report['timed_deliveries']:,}"),
            ("latency p50/p90/p99/max ms", f"{lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['max']}"),
            ("server CPU us/delivery", report.get("server_cpu_us_per_delivery")),
        ]
        cross = report.get("cross_node_latency_ms")
        if cross:
            rows.append(("cross-node latency p50/p99 ms", f"{cross['p50']} / {cross['p99']}"))
        if report.get("service_cpu_us_per_delivery") is not None:
            rows.append(("Redis+PostgreSQL CPU us/delivery", report["service_cpu_us_per_delivery"]))
        rows += [
            ("packets to the server/s", report.get("generator_packets_per_second")),
            ("server CPU % of a core", report.get("server_cpu_percent")),
            ("host CPU % (all cores)", report.get("host_cpu_percent")),
            ("other load (cores)", report.get("other_load_cores")),
            ("disconnected", report["disconnected"]),
        ]
        typing = report.get("typing")
        if typing:
            rows += [
                ("keys typed/s (all senders)", typing["keys_per_second"]),
                ("keys typed / packets sent typing", f"{typing['keys_typed']:,} / {typing['key_packets']:,}"),
            ]
    rss = report["rss_kib"]
    rows += [
        ("server RSS KiB start/idle/end", " / ".join(_fmt(rss.get(k)) for k in ("start", "idle", "end"))),
        ("RSS per idle session KiB", report.get("rss_per_idle_session_kib")),
        ("generator busy (max worker)", report["generator"].get("max_busy")),
        ("generator saturated?", report["generator"].get("saturated")),
        ("machine (all cores) saturated?", report.get("host_saturated")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {_fmt(v)}" for k, v in rows)


def _terminals(params: dict[str, Any]) -> str:
    """Who had a PTY, whether senders typed, whether clients ack every read."""
    pty = params.get("pty", "none")
    text = {"none": "no PTY", "senders": "PTY for senders", "all": "PTY for all"}.get(pty, pty)
    if params.get("typing"):
        text += f", typing {params['keys_per_second']:g} keys/s (one packet a key)"
    if params.get("ack_every_read"):
        text += ", ack every read"
    return text
