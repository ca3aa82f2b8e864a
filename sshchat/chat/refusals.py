"""Why a connection or a login was turned away, as a fixed set of codes.

The text a client is shown says it in words (and may change); the code is
what a log collector or a metric counts by, so it never changes once
released. A refusal is a ``Reason``: the words themselves (a ``str``, so
every caller that shows or compares the text is unchanged) carrying its
code. The log (``login_refused``, ``connection_refused``) and any counter
of refusals read ``reason_code``.
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    """Every reason a connection or a login is refused; the values are stable."""

    # The connection, before the SSH handshake (ssh/limits.py, chat/admission.py)
    BUSY = "busy"  # max_startups logins in progress
    FULL = "full"  # max_connections reached
    PER_ADDRESS = "per_address"  # max_per_address connections from one address
    RATE = "rate"  # new connections from one address came too fast
    BLOCKED = "blocked"  # the address earned a block (too many refusals or floods)
    # A key (ssh/server.py): its line in --admin-keys/--allowlist has a from= or expiry-time= it does not meet
    KEY_RESTRICTED = "key_restricted"
    # The login (chat/admission.py, chat/hub.py)
    SHUTTING_DOWN = "shutting_down"
    INVALID_NAME = "invalid_name"
    BANNED = "banned"
    ALLOWLIST = "allowlist"  # an allowlist is in force and the key is not on it
    NAME_REGISTERED = "name_registered"  # the name (or one it looks like) is another key's, or the key holds its share
    LOOK_ALIKE = "look_alike"  # the name looks like that of someone online
    NAME_TAKEN = "name_taken"  # someone online has the name
    UNAVAILABLE = "unavailable"  # a cluster could not check the name (Redis did not answer)
    OTHER = "other"  # a refusal with no code of its own (never expected)


class Reason(str):
    """The words of a refusal, with its ``code``."""

    code: Refusal

    def __new__(cls, code: Refusal, text: str) -> Reason:
        reason = super().__new__(cls, text)
        reason.code = code
        return reason


def reason_code(reason: object) -> Refusal:
    """The code of a refusal's words (or of a JoinRefused); OTHER for words without one."""
    if isinstance(reason, BaseException) and reason.args:
        reason = reason.args[0]
    return reason.code if isinstance(reason, Reason) else Refusal.OTHER
