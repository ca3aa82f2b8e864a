"""One log line per event worth keeping: its name and its fields.

Each login, refusal, moderation action, cut-off and error is logged through
``event`` with a stable ``event`` name (snake_case; the list is in README.md
"Logs") and its fields (name, fingerprint, address, room, reason, ...). The
text of the line reads as before for a person; the fields travel on the
record (``extra``) for the JSON format (sshchat/logs.py), which writes them
as they are: no collector has to parse our sentences.

Only the stdlib ``logging`` is used, so the chat core may log this way too.
Nothing here runs per message: these lines are logins, refusals (bounded
by the connection limits) and operators' actions.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("sshchat")

EVENT = "event"  # the record attribute holding the event's name
FIELDS = "fields"  # ...and the one holding its fields (a dict)


def event(level: int, name: str, message: str, /, *, exc_info: bool = False, **fields: Any) -> None:
    """Log ``message`` as event ``name`` with ``fields`` (None values are left out of JSON)."""
    if log.isEnabledFor(level):
        # "%s": the message is final text; a "%" a person typed in it must not be read as a format
        log.log(level, "%s", message, exc_info=exc_info, extra={EVENT: name, FIELDS: fields})


def iso_time(t: float | None) -> str | None:
    """A moment as the JSON log writes it: 2026-12-02T16:00:33.123Z (None stays None)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Throttle:
    """At most one line per key (an address and a reason, say) per ``window``
    seconds, for lines a flood could repeat: a refused connection costs its
    sender little, and must not cost the server a log line each. The next
    line logged for a key says how many were left out (``suppressed``).
    Keys are kept for the last ``size`` of them only (the oldest forgotten).
    """

    def __init__(self, window: float = 60.0, size: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._size = size
        self._clock = clock
        self._seen: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [last logged, left out since]

    def admit(self, key: Hashable) -> int | None:
        """None: leave this line out; else log it, with this many left out before it."""
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._window:
            seen[1] += 1
            return None
        left_out = int(seen[1]) if seen is not None else 0
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return left_out
