"""Turn messages into the text a terminal shows, in one of a few styles.

A message is rendered once per style and the string shared by every session
that uses that style, so the per-delivery cost does not grow with the size
of the message or the room (see the cache on ``render``).
"""

from __future__ import annotations

import enum
import zlib
from functools import lru_cache

from sshchat.chat.message import Kind, Message


class Style(enum.Enum):
    """How much colour a terminal gets."""

    ANSI256 = "256"
    ANSI16 = "16"
    MONO = "mono"


# Name colours chosen to read well on both dark and light backgrounds: no
# greys, no near-black, no near-white.
_PALETTE_256 = (
    33, 38, 39, 41, 43, 44, 69, 70, 72, 75, 77, 78, 99, 105, 111, 113, 128,
    134, 135, 141, 160, 166, 167, 168, 169, 170, 172, 173, 178, 179, 197, 202,
    203, 204, 205, 208, 209, 214,
)
_PALETTE_16 = ("31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96")

_RESET = "\x1b[0m"
_DIM = {Style.ANSI256: "\x1b[38;5;245m", Style.ANSI16: "\x1b[90m"}
_PM = {Style.ANSI256: "\x1b[38;5;170m", Style.ANSI16: "\x1b[35m"}
_ELSEWHERE = {Style.ANSI256: "\x1b[1;38;5;214m", Style.ANSI16: "\x1b[1;33m"}

_MONO_TERMS = frozenset({"dumb", "vt52", "vt100", "vt102", "vt220", "vt320"})
_TRUECOLOUR_TERMS = ("xterm-kitty", "alacritty", "wezterm", "foot", "xterm-ghostty")


def style_for_term(term: str | None) -> Style:
    """Pick a style from the TERM the client sent with its PTY request."""
    term = (term or "").lower()
    if not term or term in _MONO_TERMS:
        return Style.MONO
    if "256color" in term or "direct" in term or term.startswith(_TRUECOLOUR_TERMS):
        return Style.ANSI256
    return Style.ANSI16


def name_colour(name: str, style: Style) -> str:
    """The SGR sequence that starts ``name``'s colour: stable across restarts.

    crc32 rather than hash(): Python salts str hashes per process.
    """
    if style is Style.MONO:
        return ""
    h = zlib.crc32(name.casefold().encode())
    if style is Style.ANSI256:
        return f"\x1b[38;5;{_PALETTE_256[h % len(_PALETTE_256)]}m"
    return f"\x1b[{_PALETTE_16[h % len(_PALETTE_16)]}m"


def _paint(text: str, sgr: str) -> str:
    return f"{sgr}{text}{_RESET}" if sgr else text


@lru_cache(maxsize=4096)
def render(msg: Message, style: Style, elsewhere: bool = False) -> str:
    """One message as one logical line (the terminal wraps it), no newline.

    ``elsewhere``: the reader is looking at another room, so the line says
    which room it comes from, highlighted (it reached them because it names
    them).
    """
    if elsewhere:
        return f"{_paint(f'[{msg.room}]', _ELSEWHERE.get(style, ''))} {render(msg, style)}"
    name = _paint(msg.sender, name_colour(msg.sender, style))
    if msg.kind is Kind.CHAT:
        return f"{name}: {msg.text}"
    if msg.kind is Kind.EMOTE:
        return f"* {name} {msg.text}"
    if msg.kind is Kind.PRIVATE:
        to = _paint(msg.recipient or "?", name_colour(msg.recipient or "?", style))
        return f"{_paint('[pm]', _PM.get(style, ''))} {name} -> {to}: {msg.text}"
    return _paint(f"* {msg.text}", _DIM.get(style, ""))


def render_notice(text: str, style: Style) -> str:
    """A line meant for one person only: command replies, errors, welcome."""
    return _paint(f"-> {text}", _DIM.get(style, ""))


def render_prompt(name: str, room: str, style: Style) -> tuple[str, str]:
    """The prompt as (plain, styled): plain for measuring, styled for drawing."""
    plain = f"[{name} {room}] "
    return plain, f"[{_paint(name, name_colour(name, style))} {room}] "
