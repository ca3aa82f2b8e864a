"""Changes made to the kept state from outside the running servers: ``sshchat admin``.

A server keeps bans in memory, loaded at its start; ``sshchat admin unban``
changes the database beside it, and then raises a counter there
(``ChangedOutside``). Every second, on the hub's clockwork, each server asks
the store for that counter: one primary-key read on the store's own thread,
never on the event loop. When it moved, the server reads the bans again and
applies the difference through the path another node's changes take
(chat/state.py): a lifted ban stops turning the person away, a ban found
kept but not known here ends the sessions it covers. In a cluster every node
polls the shared database, so each learns it within about a second without
the tool having to reach the bus.

The read must not undo a change made here while it ran (a /ban, or one
another node published, applied between the question and the answer). So
the bans in memory are noted as the read is asked, and only a ban left as it
was meanwhile is brought to what the store holds; one that changed is newer
than the read and stays. On one node this is exact: the store answers in the
order it was asked, so a /ban saved before the read is in its answer, and
one saved after is applied after it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

from sshchat.chat.logged import event
from sshchat.chat.moderation import Moderation
from sshchat.chat.sanitize import clean
from sshchat.chat.store import Ban, Change, Store, Unban

# Seconds between two questions; "every second or so", whatever the clockwork's pace.
POLL_EVERY = 1.0
_SLACK = 0.1  # a tick a little early still asks: the clockwork sleeps 1 s, then does its work

BanKey = tuple[str, str]


def merge(before: dict[BanKey, Ban], now: dict[BanKey, Ban], kept: Iterable[Ban], t: float) -> list[Change]:
    """The changes that bring the bans in memory (``now``) to those ``kept``
    in the store, leaving alone every ban that changed here since the read
    was asked (``before``: the bans in memory then, the same objects).

    Bans kept but already over at ``t`` are not brought in."""
    found: dict[BanKey, Ban] = {}
    for b in kept:
        if b.until is None or b.until > t:
            found[(b.kind, b.value)] = dataclasses.replace(b, reason=clean(b.reason), by=clean(b.by))
    changes: list[Change] = []
    for key, ban in now.items():
        if before.get(key) is not ban:
            continue  # made (or made again) here while the read ran: newer than it
        if key not in found:
            changes.append(Unban(*key))
        elif (found[key].until, found[key].time) != (ban.until, ban.time):
            changes.append(found[key])  # made again elsewhere, with another end
    for key, ban in found.items():
        if key not in now and key not in before:  # (in before only: lifted here meanwhile)
            changes.append(ban)
    return changes


class OutsideChanges:
    """Polls the store's counter of outside changes and applies them (see the module)."""

    def __init__(
        self,
        store: Store,
        moderation: Moderation,
        apply: Callable[[Change], None],
        clock: Callable[[], float],
        serial: int,
    ) -> None:
        """``apply``: how another node's change is applied here (StateApplier.apply);
        ``serial``: the counter as the snapshot the server started from had it."""
        self._store = store
        self._moderation = moderation
        self._apply = apply
        self._clock = clock
        self.serial = serial
        self._asking = False  # one question at a time: a slow database gets no queue of them
        self._asked = float("-inf")

    def tick(self) -> None:
        """Ask the counter, at most once every POLL_EVERY seconds (called by Hub.tick)."""
        now = self._clock()
        if self._asking or now - self._asked < POLL_EVERY - _SLACK:
            return
        self._asking = True
        self._asked = now
        self._store.outside_serial(self._heard)

    def _heard(self, serial: int | None) -> None:
        if serial is None or serial == self.serial:  # (None: the read failed; asked again next time)
            self._asking = False
            return
        before = dict(self._moderation.bans)  # as the read is queued: what changes meanwhile is newer
        self._store.bans(lambda bans: self._reread(serial, before, bans))

    def _reread(self, serial: int, before: dict[BanKey, Ban], bans: list[Ban] | None) -> None:
        self._asking = False
        if bans is None:
            return  # the counter is not taken as seen: the next poll reads again
        self.serial = serial
        changes = merge(before, self._moderation.bans, bans, self._clock())
        lifted = [f"{c.kind}:{c.value}" for c in changes if isinstance(c, Unban)]
        added = [f"{c.kind}:{c.value}" for c in changes if isinstance(c, Ban)]
        for change in changes:
            self._apply(change)
        event(
            logging.INFO, "outside_change",
            f"bans read again (changed by sshchat admin): {len(lifted)} lifted, {len(added)} added or changed",
            lifted=lifted or None, added=added or None, serial=serial,
        )
