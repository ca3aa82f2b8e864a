"""The in-process bus, the default: ``publish`` is a direct call of ``receive``.

One process needs no transport between the commit and the delivery, so
there is none: the same order and the same cost as calling the room itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from sshchat.chat.bus import Event, Receive


def _nobody(event: Event) -> None:
    """Before ``attach``: nothing is online to receive anything."""


class LocalBus:
    """Delivers each event at once, synchronously, on the caller's stack."""

    crosses_processes = False  # nobody else to tell: state changes are not published at all

    def __init__(self) -> None:
        self.publish: Receive = _nobody  # replaced by the receiver itself: no extra call per event

    def attach(self, receive: Receive, last_ids: Mapping[str, int], elsewhere: Receive | None = None) -> None:
        """Every event published from now on goes to ``receive`` (``last_ids``:
        nothing came before this process, so there is nothing to skip;
        ``elsewhere``: there is no other node)."""
        self.publish = receive

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to hand over: every event was delivered when published."""
