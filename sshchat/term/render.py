"""Turn messages into the text a terminal shows, in one of a few styles.

A message is rendered once per style and the string shared by every session
that uses that style, so the per-delivery cost does not grow with the size
of the message or the room (see the cache on ``render``).
"""

from __future__ import annotations

import enum
import zlib
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import NamedTuple

from wcwidth import wcswidth

from sshchat.chat.message import Kind, Message
from sshchat.chat.prefs import parse_zone
from sshchat.term.wrap import wrap


class Style(enum.Enum):
    """How much colour a terminal gets."""

    ANSI256 = "256"
    ANSI16 = "16"
    MONO = "mono"

    # Members are singletons compared by identity, so the identity hash (C)
    # will do; Enum's own is Python code, run on every cache lookup of a Look.
    __hash__ = object.__hash__


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


class Look(NamedTuple):
    """Everything about a reader that changes how a line looks.

    Lines are cached per Look, so readers who share one share the work (a
    NamedTuple: hashed in C, on every delivery).
    """

    style: Style = Style.MONO
    timestamps: str = "off"  # off | time | datetime
    zone: str = "UTC"


PLAIN = Look()
"""How scripts (no PTY) and bots see a line: no colour, no timestamps."""

_HIGHLIGHT = {Style.ANSI256: "\x1b[1;38;5;226m", Style.ANSI16: "\x1b[1;93m", Style.MONO: "\x1b[1m"}


@lru_cache(maxsize=64)
def _tz(zone: str) -> tzinfo:
    return parse_zone(zone) or UTC


def _stamp(t: float, look: Look) -> str:
    """The time of a message as the reader wants it, plain, with a space."""
    if look.timestamps == "off":
        return ""
    when = datetime.fromtimestamp(t, _tz(look.zone))
    return when.strftime("%H:%M " if look.timestamps == "time" else "%Y-%m-%d %H:%M ")


def _cells(text: str) -> int:
    return wcswidth(text)


@lru_cache(maxsize=1024)
def render(msg: Message, look: Look, elsewhere: bool = False, mention: bool = False) -> tuple[str, int]:
    """One message as one logical line, and the column its text starts at.

    ``elsewhere``: the reader is looking at another room, so the line says
    which room it comes from. ``mention``: the line names the reader; its
    text is highlighted. The column lets long lines wrap under the text.
    """
    style = look.style
    prefix_plain = _stamp(msg.time, look)
    stamp = prefix_plain and _paint(prefix_plain[:-1], _DIM.get(style, "")) + " "
    if elsewhere:
        label = f"[{msg.room}] "
        stamp += _paint(label[:-1], _ELSEWHERE.get(style, "")) + " "
        prefix_plain += label
    text = _paint(msg.text, _HIGHLIGHT[style]) if mention else msg.text
    name = _paint(msg.sender, name_colour(msg.sender, style))
    if msg.kind is Kind.CHAT:
        head, head_plain = f"{name}: ", f"{msg.sender}: "
    elif msg.kind is Kind.EMOTE:
        head, head_plain = f"* {name} ", f"* {msg.sender} "
    elif msg.kind is Kind.PRIVATE:
        to = msg.recipient or "?"
        head = f"{_paint('[pm]', _PM.get(style, ''))} {name} -> {_paint(to, name_colour(to, style))}: "
        head_plain = f"[pm] {msg.sender} -> {to}: "
    else:
        return stamp + _paint(f"* {msg.text}", _DIM.get(style, "")), _cells(prefix_plain) + 2
    return stamp + head + text, _cells(prefix_plain) + _cells(head_plain)


@lru_cache(maxsize=1024)
def render_rows(msg: Message, look: Look, elsewhere: bool, mention: bool, width: int) -> tuple[str, ...]:
    """A message rendered and wrapped for one kind of reader: one cache
    lookup per delivery, shared by every reader with the same look and width."""
    text, indent = render(msg, look, elsewhere, mention)
    return wrap(text, indent, width)


def render_notice(text: str, style: Style) -> str:
    """A line meant for one person only: command replies, errors, welcome."""
    return _paint(f"-> {text}", _DIM.get(style, ""))


@lru_cache(maxsize=1024)
def plain(msg: Message) -> str:
    """A message for scripts: no colour, no timestamp, no wrapping (cached by
    the message alone: hashing it is an identity hash)."""
    return render(msg, PLAIN)[0]


def render_prompt(name: str, room: str, style: Style) -> tuple[str, str]:
    """The prompt as (plain, styled): plain for measuring, styled for drawing."""
    plain = f"[{name} {room}] "
    return plain, f"[{_paint(name, name_colour(name, style))} {room}] "
