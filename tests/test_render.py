"""Rendering: colours stable per name, styles per terminal."""

from __future__ import annotations

import subprocess
import sys

from sshchat.chat.message import Kind, Message
from sshchat.term.render import Look, Style, name_colour, render, style_for_term


def test_name_colour_is_stable_across_processes_and_case() -> None:
    code = "from sshchat.term.render import *; print(repr(name_colour('alice', Style.ANSI256)))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert other.strip() == repr(name_colour("ALICE", Style.ANSI256))


def test_names_spread_over_the_palette() -> None:
    colours = {name_colour(f"user{i}", Style.ANSI256) for i in range(100)}
    assert len(colours) > 20


def test_styles_by_term() -> None:
    assert style_for_term("xterm-256color") is Style.ANSI256
    assert style_for_term("tmux-256color") is Style.ANSI256
    assert style_for_term("xterm-kitty") is Style.ANSI256
    assert style_for_term("xterm") is Style.ANSI16
    assert style_for_term("linux") is Style.ANSI16
    assert style_for_term("vt100") is Style.MONO
    assert style_for_term(None) is Style.MONO


def test_mono_has_no_escape_codes() -> None:
    for kind in Kind:
        msg = Message(1, "#lobby", kind, "alice", "text", 0.0, "bob")
        assert "\x1b" not in render(msg, Look(Style.MONO))[0]
    chat = Message(2, "#lobby", Kind.CHAT, "alice", "hi", 0.0)
    assert render(chat, Look(Style.MONO)) == ("alice: hi", 7)
