"""What a batch of pending output looks like on a screen (term/batch.py).

No server, no channel: the batch function is called and its rows are fed to
a terminal emulator (pyte), then read back as a person would read them.
"""

from __future__ import annotations

import itertools

import pyte
import pytest

from sshchat.chat.message import Kind, Message
from sshchat.term.batch import Elsewhere, Pending, screen_rows, script_text
from sshchat.term.render import Look, Style

_ids = itertools.count(1)
ME, MY_KEY = "Bob", "bob"


def msg(sender: str, text: str, kind: Kind = Kind.CHAT, room: str = "#lobby", to: str | None = None) -> Message:
    return Message(next(_ids), room, kind, sender, text, 0.0, to)


def rows_for(items: list[Pending], *, width: int = 80, bell: str = "mention", style: Style = Style.ANSI16) -> list[str]:
    return screen_rows(items, Look(style), width, ME, MY_KEY, bell)[0]


def rings(item: Pending, bell: str) -> bool:
    return screen_rows([item], Look(Style.ANSI16), 80, ME, MY_KEY, bell)[1]


class Screen:
    """The rows as a terminal of ``width`` columns shows them."""

    def __init__(self, rows: list[str], width: int) -> None:
        self.screen = pyte.Screen(width, 24)
        pyte.Stream(self.screen).feed("\r\n".join(rows) + "\r\n")

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display if line.strip()]

    def bold(self, word: str) -> bool:
        """Is every character of ``word`` (first place it is shown) in bold?"""
        for y, line in enumerate(self.screen.display):
            x = line.find(word)
            if x >= 0:
                return all(self.screen.buffer[y][x + i].bold for i in range(len(word)))
        raise AssertionError(f"{word!r} is not on the screen: {self.lines}")


# ------------------------------------------------------------------- rows


def test_a_batch_shows_every_item_in_order() -> None:
    items: list[Pending] = [msg("alice", "hello"), "welcome back", msg("carol", "waves", Kind.EMOTE)]
    assert Screen(rows_for(items), 80).lines == ["alice: hello", "-> welcome back", "* carol waves"]


def test_notices_wrap_under_their_text() -> None:
    notice = "this notice is long enough that it cannot fit on one row of thirty cells"
    screen = Screen(rows_for([notice], width=30), 30)
    assert screen.lines[0].startswith("-> this")
    assert len(screen.lines) > 2
    assert all(line.startswith("   ") and not line.startswith("    ") for line in screen.lines[1:])
    assert " ".join(line.strip() for line in screen.lines) == "-> " + notice


def test_long_lines_wrap_at_the_width_under_the_text() -> None:
    text = "a message that goes on and on, well past the edge of a narrow terminal window"
    rows = rows_for([msg("alice", text)], width=32)
    screen = Screen(rows, 32)
    assert len(screen.lines) == len(rows) > 2  # no row was wrapped again by the terminal
    assert screen.lines[0].startswith("alice: a message")
    assert all(line.startswith(" " * 7) for line in screen.lines[1:])  # under the text, not the name
    assert " ".join(line.strip() for line in screen.lines) == f"alice: {text}"


def test_wide_characters_count_two_cells() -> None:
    text = "日本語のテキストはセルを二つずつ使うので早く折り返します"
    screen = Screen(rows_for([msg("alice", text)], width=24), 24)
    assert len(screen.lines) > 2
    assert "".join(line.strip() for line in screen.lines) == f"alice:{text}"


def test_private_messages_say_who_to_whom() -> None:
    pm = msg("alice", "psst", Kind.PRIVATE, to=ME)
    assert Screen(rows_for([pm]), 80).lines == ["[pm] alice -> Bob: psst"]


def test_lines_from_elsewhere_say_which_room() -> None:
    there = Elsewhere(msg("alice", "bob, look", room="#ops"))
    assert Screen(rows_for([there]), 80).lines == ["[#ops] alice: bob, look"]


# -------------------------------------------------------------- mentions


def test_a_line_naming_the_reader_is_highlighted() -> None:
    screen = Screen(rows_for([msg("alice", "ask BOB about it"), msg("carol", "ask bobby")]), 80)
    assert screen.bold("ask BOB about it")  # any case, a whole word
    assert not screen.bold("ask bobby")  # a longer name is someone else


def test_the_readers_own_lines_are_not_highlighted() -> None:
    assert not Screen(rows_for([msg(ME, "I am bob")]), 80).bold("I am bob")


def test_lines_from_elsewhere_are_always_highlighted() -> None:
    there = Elsewhere(msg("alice", "the deploy is done", room="#ops"))
    assert Screen(rows_for([there]), 80).bold("the deploy is done")
    mine = Elsewhere(msg(ME, "bob deployed", room="#ops"))  # but not the reader's own
    assert not Screen(rows_for([mine]), 80).bold("bob deployed")


def test_notices_and_join_lines_naming_the_reader_are_not_mentions() -> None:
    joined = msg("bob", "bob joined", Kind.JOIN)
    screen = Screen(rows_for(["bob: you have mail", joined]), 80)
    assert not screen.bold("you have mail") and not screen.bold("bob joined")
    assert not rings("bob: you have mail", "all") and not rings(joined, "all")


def test_mono_highlights_with_bold_alone() -> None:
    rows = rows_for([msg("alice", "hi bob")], style=Style.MONO)
    assert rows == ["alice: \x1b[1mhi bob\x1b[0m"]


# ------------------------------------------------------------------ bell


@pytest.mark.parametrize(
    ("item", "off", "mention", "all"),
    [
        (msg("alice", "hello all"), False, False, True),
        (msg("alice", "hello bob"), False, True, True),
        (msg("alice", "waves at bob", Kind.EMOTE), False, True, True),
        (msg("alice", "waves", Kind.EMOTE), False, False, True),
        (msg("alice", "psst", Kind.PRIVATE, to=ME), False, True, True),
        (Elsewhere(msg("alice", "over here", room="#ops")), False, True, True),
        (msg("alice", "alice joined", Kind.JOIN), False, False, False),
        (msg("alice", "alice left", Kind.LEAVE), False, False, False),
        (msg("alice", "topic changed", Kind.SYSTEM), False, False, False),
        ("a notice", False, False, False),
        # the reader's own lines never ring, whatever they say
        (msg(ME, "hello bob"), False, False, False),
        (msg(ME, "psst", Kind.PRIVATE, to="alice"), False, False, False),
        (Elsewhere(msg(ME, "bob posted this", room="#ops")), False, False, False),  # e.g. as a bot
    ],
)
def test_bell_rules(item: Pending, off: bool, mention: bool, all: bool) -> None:
    assert (rings(item, "off"), rings(item, "mention"), rings(item, "all")) == (off, mention, all)


def test_one_ring_for_a_batch_however_many_lines_ring() -> None:
    items: list[Pending] = [msg("alice", "bob?"), msg("carol", "bob!"), msg("dave", "quiet")]
    rows, ring = screen_rows(items, Look(), 80, ME, MY_KEY, "mention")
    assert ring and not any("\x07" in row for row in rows)  # the caller rings once, after the rows


# --------------------------------------------------------------- scripts


def test_scripts_get_plain_lines() -> None:
    items: list[Pending] = [
        msg("alice", "hi bob"), "a notice", Elsewhere(msg("carol", "bob?", room="#ops")),
        msg("dave", "ünïcode ✓"),
    ]
    assert script_text(items).decode() == "alice: hi bob\n-> a notice\n[#ops] carol: bob?\ndave: ünïcode ✓\n"
    assert script_text(items[:1]) == b"alice: hi bob\n"
