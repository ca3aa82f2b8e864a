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
