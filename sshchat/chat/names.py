"""The one rule for chat names.

Every place that accepts a name (login, /nick, /msg targets) goes through
``check_name`` so the rule and its wording live here and nowhere else.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,15}")
RULE = "use 1-16 letters, digits, _ or -, starting with a letter"
ROOM_RE = re.compile(r"#[A-Za-z0-9_-]{1,24}")
ROOM_RULE = "use # followed by 1-24 letters, digits, - or _"

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


def shown(text: str) -> str:
    """``text`` with control characters escaped and cut to a sane length."""
    shown = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return shown if len(shown) <= 40 else shown[:37] + "..."


def name_key(name: str) -> str:
    """The key under which names are compared: unique ignoring case.

    NFKC and case folding, so that should the rule ever admit more than
    ASCII, compatibility forms and case variants still compare equal.
    """
    return unicodedata.normalize("NFKC", name).casefold()


# Characters that pass for one another in common terminal fonts.
# After case folding a capital I is an i, so i, l and 1 are one class: being
# strict here refuses a few honest names (ali while all is taken), which is
# the price of never letting "aIice" pass for "alice".
_LOOKALIKES = str.maketrans({"0": "o", "1": "l", "i": "l"})


def skeleton(name: str) -> str:
    """What a name looks like: "aIice", "alice" and "a1ice" share one.

    Two names with the same skeleton but different keys would let one person
    pass for another, so the second one is refused.
    """
    text = name_key(name).translate(_LOOKALIKES)
    return text.replace("rn", "m").replace("vv", "w")


def check_name(name: str) -> str:
    """Return ``name`` if it may be used as a chat name, else raise InvalidName.

    The message quotes the name with control characters escaped, so a hostile
    login name cannot paint on the terminal that reads the refusal.
    """
    if NAME_RE.fullmatch(name) is None:
        raise InvalidName(f'invalid name "{shown(name)}": {RULE}')
    if name_key(name) in RESERVED:
        raise InvalidName(f'the name "{name}" is reserved; please pick another')
    return name


def check_room(name: str) -> str:
    """Return ``name`` if it may name a room, else raise InvalidName."""
    if ROOM_RE.fullmatch(name) is None:
        raise InvalidName(f'invalid room name "{shown(name)}": {ROOM_RULE}')
    return name


_WORD_RE = re.compile(r"[A-Za-z0-9_-]+")


@lru_cache(maxsize=1024)
def words(text: str) -> frozenset[str]:
    """The name-like words of a message (casefolded), once per message text,
    not per reader: a line names you if your name key is among them."""
    return frozenset(w.casefold() for w in _WORD_RE.findall(text))

