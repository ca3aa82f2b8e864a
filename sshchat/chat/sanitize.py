"""Make text that strangers send safe to print on other people's terminals.

It is the chat core's rule (everything said is cleaned before anyone sees
it); the input line editor in term/ uses the same rule for what it accepts.

What a client types is never trusted: an escape sequence could move another
person's cursor, retitle their window or clear their screen; a bidi override
could make a line read differently from what it is; zero-width characters
let two different texts look the same. We keep printable text and drop the
rest, removing whole escape sequences (not just the ESC byte) so that no
``[31m`` debris is left behind.
"""

from __future__ import annotations

import re
import unicodedata

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/APC/PM/SOS strings
# (terminated by BEL or ST, or left unterminated), and two-byte ESC X forms.
# The 8-bit C1 forms (U+009B CSI, U+009D OSC, ...) are handled the same way.
_ESCAPE_RE = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?          # CSI ... final
  | (?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])          # OSC DCS SOS PM APC
        [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?         #   ... BEL or ST
  | \x1b[\x20-\x2f]*[\x30-\x7e]?                      # ESC (intermediates) final
    """,
    re.VERBOSE,
)

# Unicode general categories never let through: controls, format characters
# (bidi overrides, zero-width joiners and spaces, BOM), surrogates, and the
# line/paragraph separators that would break a line on some terminals.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_MARKS = frozenset({"Mn", "Me", "Mc"})

# More combining marks than this on one character is "zalgo" text that spills
# over the lines above and below it.
MAX_COMBINING = 3


def is_printable(ch: str) -> bool:
    """True for a character that may appear in a message or the input line."""
    return unicodedata.category(ch) not in _DROP_CATEGORIES


def clean(text: str) -> str:
    """Return ``text`` with escape sequences and unsafe characters removed.

    Tabs become a space; runs of combining marks are capped; leading and
    trailing whitespace is trimmed. The result is a single printable line.
    """
    if text.isascii() and text.isprintable():  # most lines: nothing to remove (no ESC, tab or mark)
        return text.strip()
    text = _ESCAPE_RE.sub("", text).replace("\t", " ")
    out: list[str] = []
    marks = 0
    for ch in text:
        category = unicodedata.category(ch)
        if category in _DROP_CATEGORIES:
            continue
        if category in _MARKS:  # combining() misses ~1000 marks (U+0489...)
            marks += 1
            if marks > MAX_COMBINING or not out or out[-1].isspace():
                continue  # a mark needs a letter to sit on
        else:
            marks = 0
        out.append(ch)
    return "".join(out).strip()
