"""The server's log on stderr: for people (``human``, the default) or for
collectors (``json``, one object per line).

Both formats hold to one rule: one record is one line. Words a client
controls (a refused login name, a kick reason, a topic) can hold newlines
and escape codes; written raw, a newline would start a line that looks like
the server's own ("forged"), and an escape code would act on the terminal
of whoever reads the log. The human format writes control characters of
the message as visible escapes (``\\n``, ``\\x1b``); JSON escapes them by
itself (and everything outside ASCII, so no reader's terminal sees a raw
C1 control either). A traceback stays as it is: it is ours, not theirs.

JSON keys: ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``event``,
``message``, ``worker`` (a worker of ``--workers``), then the event's fields
(sshchat/chat/logged.py), None values left out; an exception adds ``error``
and ``traceback``. A line logged without an event name (asyncssh's, a
library's) has the event ``log``, or ``error`` if it carries an exception.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from sshchat.chat.logged import EVENT, FIELDS, iso_time

FORMATS = ("human", "json")
_RESERVED = frozenset({"time", "level", "event", "message", "worker"})
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_format = "human"  # the format of this process's log, once set up
_worker: int | None = None
_handler: logging.Handler | None = None


def escape_controls(text: str) -> str:
    """``text`` with each control character written as a visible escape: one line, inert."""
    if _CONTROL.search(text) is None:  # the usual case: nothing to do
        return text
    return _CONTROL.sub(_visible, text)


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c)
    return named or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


class HumanFormatter(logging.Formatter):
    """The readable line, as ever: time, level, (worker,) message; the message made one inert line."""

    def __init__(self, worker: int | None = None) -> None:
        who = f"worker {worker}: " if worker else ""
        super().__init__(f"%(asctime)s %(levelname)s {who}%(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        name = getattr(record, EVENT, None) or ("error" if record.exc_info else "log")
        line: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "event": name,
            "message": record.getMessage(),
        }
        if self.worker:
            line["worker"] = self.worker
        fields: dict[str, Any] = getattr(record, FIELDS, None) or {}
        for key, value in fields.items():
            if value is not None and key not in _RESERVED:
                line[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = f"{type(error).__name__}: {error}"
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(level: str, log_format: str = "human", worker: int | None = None) -> None:
    """The log of this process on stderr, in ``log_format``.

    ``worker``: its lines say which worker wrote them (they share the parent's stderr).
    """
    global _format, _worker, _handler
    _format, _worker = log_format, worker
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(worker) if log_format == "json" else HumanFormatter(worker))
    root = logging.getLogger()
    if _handler is not None:  # set up again: ours replaced, anyone else's (pytest's) kept
        root.removeHandler(_handler)
    _handler = handler
    root.addHandler(handler)
    root.setLevel(level.upper())
    # asyncssh logs every connection and channel at INFO: noise, and CPU.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def console(text: str, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """A line for the console whatever the log level (the readiness line,
    a failure to start): ``text`` as it is in the human format, a JSON
    object in the JSON format, so a collector's every line parses.

    One write per line: a worker's log line written in between (they share
    stderr) must not run into it.
    """
    if _format == "json":
        record = logging.LogRecord("sshchat", level, "", 0, "%s", (text,), None)
        record.__dict__[EVENT] = event
        record.__dict__[FIELDS] = fields
        line = JsonFormatter(_worker).format(record)
    else:
        line = text
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
