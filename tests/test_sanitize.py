"""What strangers send is made safe to print."""

from __future__ import annotations

import pytest

from sshchat.chat.sanitize import clean


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("hi \x1b[31mred\x1b[0m", "hi red"),  # colour codes go whole, no "[31m" debris
        ("\x1b[2J\x1b[Hclear", "clear"),  # clear screen, cursor home
        ("\x1b]0;title\x07x", "x"),  # window title (OSC, BEL-terminated)
        ("\x1b]52;c;aGk=\x1b\\y", "y"),  # clipboard write (OSC, ST-terminated)
        ("\x1bPq#0\x1b\\z", "z"),  # DCS (sixel)
        ("a\x07b\x08c\x0cd\x7fe", "abcde"),  # bell, backspace, form feed, DEL
        ("\x9b2Jc1", "c1"),  # 8-bit CSI
        ("left\u202eright", "leftright"),  # bidi override
        ("zero\u200bwidth\u2060joiner\ufeff", "zerowidthjoiner"),
        ("line\u2028sep", "linesep"),
        ("tab\there", "tab here"),
        ("  trimmed  ", "trimmed"),
        ("e\u0301\u0301\u0301\u0301\u0301\u0301", "e\u0301\u0301\u0301"),  # zalgo capped
        ("日本語 😀 ok", "日本語 😀 ok"),
        ("\x1b", ""),
        ("\x1b[", ""),
    ],
)
def test_clean(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def test_nothing_unsafe_survives_any_byte() -> None:
    raw = "".join(chr(c) for c in range(0x00, 0x250)) + "\u200e\u200f\u202a\u2066\u2069\u061c"
    out = clean(raw)
    assert all(ch >= " " and not "\x7f" <= ch <= "\x9f" for ch in out)
    for bad in "\u200e\u200f\u202a\u2066\u2069\u061c":
        assert bad not in out


def test_marks_that_combining_misses_are_capped_too() -> None:
    assert clean("a" + "\u0489" * 300) == "a" + "\u0489" * 3
    assert clean("\u20dd" * 5 + "x") == "x"
