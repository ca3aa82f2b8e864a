"""Plugins for measuring what plugins cost the chat, enabled in a spawned
server through the environment, e.g.::

    python -m bench.loadgen --spawn --users 200 --duration 10 \\
        --server-env SSHCHAT_PLUGINS=bench.plugins:Sleepy

``Sleepy`` sleeps 10 s in every hook (and ignores being cancelled): the
figures to compare with no plugin at all are the latency percentiles and
the loss. ``Passing`` has a message hook that lets everything through at
once: what the host's task per screened message costs.
"""

from __future__ import annotations

import asyncio

from sshchat.chat.plugins import PASS, Plugin, Presence, Said, Verdict

SLEEP = 10.0


async def _sleep_through(seconds: float) -> None:
    """Sleep, and sleep on when cancelled once (a hostile plugin)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(seconds)


class Sleepy(Plugin):
    """Sleeps 10 s in every hook."""

    async def on_message(self, said: Said) -> Verdict:
        await _sleep_through(SLEEP)
        return PASS

    async def on_join(self, event: Presence) -> None:
        await _sleep_through(SLEEP)

    async def on_leave(self, event: Presence) -> None:
        await _sleep_through(SLEEP)


class Passing(Plugin):
    """A message hook that answers at once."""

    async def on_message(self, said: Said) -> Verdict:
        return PASS


class Slow(Plugin):
    """A message hook that takes 0.15 s, under the default limit of 0.2 s:
    never skipped, so every message waits for it. What it shows: a message
    is late by the hook's time, not by the time of everyone's hooks before
    it (each sender waits only for their own)."""

    async def on_message(self, said: Said) -> Verdict:
        await asyncio.sleep(0.15)
        return PASS
