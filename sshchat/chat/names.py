"""The one rule for chat names.

Every place that accepts a name (login, /nick, /msg targets) goes through
``check_name`` so the rule and its wording live here and nowhere else.
"""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")
RULE = "use 1-16 letters, digits, _ or -, starting with a letter"

# Names that could pass for the server speaking, or address everyone at once.
RESERVED = frozenset(
    {
        "admin",
        "administrator",
        "all",
        "everyone",
        "here",
        "mod",
        "moderator",
        "nobody",
        "notice",
        "operator",
        "root",
        "server",
        "sshchat",
        "system",
    }
)


class InvalidName(ValueError):
    """A name that may not be used; ``str()`` is the reason, fit to show."""


def name_key(name: str) -> str:
    """The key under which names are compared: unique ignoring case."""
    return name.casefold()


def check_name(name: str) -> str:
    """Return ``name`` if it may be used as a chat name, else raise InvalidName.

    The message quotes the name with control characters escaped, so a hostile
    login name cannot paint on the terminal that reads the refusal.
    """
    if NAME_RE.fullmatch(name) is None:
        shown = name.encode("unicode_escape", "backslashreplace").decode("ascii")
        if len(shown) > 40:
            shown = shown[:37] + "..."
        raise InvalidName(f'invalid name "{shown}": {RULE}')
    if name_key(name) in RESERVED:
        raise InvalidName(f'the name "{name}" is reserved; please pick another')
    return name
