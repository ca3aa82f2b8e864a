"""Cluster nodes for tests: `sshchat serve` processes on one Redis and one
PostgreSQL, and what a person asks of them to see who is online.

Shared by the cluster's end-to-end tests (test_cluster_e2e.py,
test_cluster_presence.py, test_cluster_faults.py), so that a node is
started one way and ``/names`` read one way, and no test module imports
another.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.clients import Client
from tests.support.server import ServerProcess
from tests.support.waiting import eventually


def start_node(folder: Path, redis_url: str, db_url: str, *args: str, rate_burst: int,
               env: dict[str, str] | None = None) -> ServerProcess:
    """A node in ``folder`` (made here: its host key and log live there) on
    the given bus and database, with ``args`` added and the burst of lines
    one person may send (SSHCHAT_RATE_BURST) set by the caller, who says why;
    ``env``: more settings (SSHCHAT_...)."""
    folder.mkdir()
    return ServerProcess(folder, "--bus", redis_url, "--db", db_url, *args, cwd=folder,
                         env={"SSHCHAT_RATE_BURST": str(rate_burst), **(env or {})})


def node_logs(nodes: dict[str, ServerProcess]) -> str:
    """Every node's log under its name, for a failure's report."""
    return "\n".join(f"node {name}:\n{''.join(server.log)}" for name, server in nodes.items())


def names_line(client: Client) -> str:
    """The last ``/names`` answer for #lobby this person was shown ("" before any)."""
    lines = re.findall(r"(?m)^.*\d+ in #lobby: .*$", client.text)
    return lines[-1] if lines else ""


async def names_on(client: Client, *expected: str, absent: tuple[str, ...] = (), timeout: float = 5.0) -> str:
    """Ask /names (every 0.2 s) until every one of ``expected`` is listed and
    none of ``absent``; return that answer."""

    async def listed_as_wanted() -> bool:
        before = client.text.count(" in #lobby: ")
        client.line("/names")
        await client.wait_for(lambda c: c.text.count(" in #lobby: ") > before)
        listed = set(re.split(r",\s*", names_line(client).split(": ", 1)[1]))
        return all(n in listed for n in expected) and not any(n in listed for n in absent)

    await eventually(listed_as_wanted, timeout=timeout, interval=0.2,
                     message=lambda: f"/names shows {names_line(client)!r}; wanted {expected}, not {absent}")
    return names_line(client)
