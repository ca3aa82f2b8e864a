"""A line longer than the screen: only the rows around the cursor are drawn,
and a key costs what the screen holds, not what the line holds (issue 14).

Checked as a person sees it, on a terminal emulator (pyte): the newest chat
line stays in sight above the input, the rows shown are consecutive pieces
of the line, the cursor sits on the right character, and each key leaves the
screen a full redraw would draw. The cost of a key is counted, not timed:
characters measured (``char_width`` calls) and characters echoed.
"""

from __future__ import annotations

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshchat.term import cells
from tests.support.screen import Counting, Screen

LEFT, RIGHT, UP, DOWN = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[B"
HOME, END, DELETE = "\x1b[H", "\x1b[F", "\x1b[3~"
CJK = "漢"
PROMPT = "[alice] "


def numbered(count: int, wide: bool = False) -> str:
    """``count`` characters in which every piece is different: no spaces (a
    row's trailing spaces would not show) and no two rows alike."""
    piece = (lambda i: f"{i:03d}{CJK}") if wide else (lambda i: f"{i:03d}x")
    return "".join(piece(i) for i in range(count // 4 + 1))[:count]


def check_window(s: Screen, chat: str = "bob: hi") -> list[str]:
    """What a person must see: the chat line, then at most the screen's
    rows less one of input, consecutive pieces of prompt + text, and the
    cursor where its character is. Returns the rows of input shown."""
    lines = s.lines
    assert chat in lines, lines
    first = len(lines) - lines[::-1].index(chat)  # the row after the (last) chat line
    shown = [line for line in lines[first:] if line]
    assert 1 <= len(shown) <= s.screen.lines - 1
    assert lines[first + len(shown) :] == [""] * (len(lines) - first - len(shown)), "input after a blank row"
    line = PROMPT + s.editor.text
    joined = "".join(shown)
    offset = line.find(joined)
    assert offset >= 0, shown
    k = len(PROMPT) + s.editor.pos - offset  # the cursor, in what is shown
    assert 0 <= k <= len(joined), (k, shown)
    row = 0
    while row < len(shown) - 1 and k >= len(shown[row]):
        k -= len(shown[row])
        row += 1
    col = sum(cells.char_width(ch) for ch in shown[row][:k])
    if col == s.screen.columns:  # after a full last row: on the next, empty one
        row, col = row + 1, 0
    assert s.cursor == (first + row, col), (s.cursor, first + row, col, shown)
    return shown


def long_screen(text: str, cols: int = 30, rows: int = 8) -> Screen:
    s = Screen(cols=cols, rows=rows)
    s.message("bob: hi")
    s.type(text)
    return s


@pytest.mark.parametrize("wide", [False, True])
def test_a_line_longer_than_the_screen_shows_the_rows_around_the_cursor(wide: bool) -> None:
    text = numbered(600, wide)
    s = long_screen(text)
    shown = check_window(s)
    assert len(shown) == 7 and shown[-1] and text.endswith(shown[-1])  # the end, at the bottom
    assert s.cursor[0] == 7
    s.type(HOME)
    shown = check_window(s)
    assert shown[0].startswith(PROMPT + text[:5]) and s.cursor == (1, len(PROMPT))
    s.type(RIGHT * 300)  # down through the line: the window follows
    check_window(s)
    assert s.editor.pos == 300
    s.message("carol: hello")  # a message: the input comes back as it was
    lines = s.lines
    assert lines[0] == "carol: hello" and s.char_at_cursor() == text[300]
    s.type("\x1bb" * 3 + "\x1bf")  # word moves: the line is one word
    assert s.editor.pos == len(text)
    check_window(s, "carol: hello")


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("where", ["start", "middle"])
def test_edits_in_a_long_line_redraw_what_a_full_redraw_would(wide: bool, where: str) -> None:
    text = numbered(500, wide)
    s = long_screen(text)
    s.type(HOME if where == "start" else HOME + RIGHT * 250)
    at = s.editor.pos
    for key in ["a", "b", "\x7f", DELETE, CJK, LEFT, "z", "\x17", "\x15", "c" * 40, "\x0b"]:
        s.type(key)
        check_window(s)
        assert_same_as_full_redraw(s)
    assert s.editor.text == "c" * 40
    assert at == (0 if where == "start" else 250)


def assert_same_as_full_redraw(s: Screen) -> None:
    """The screen below the chat line is what drawing the editor afresh draws."""
    fresh = pyte.Screen(s.screen.columns, s.screen.lines)
    stream = pyte.Stream(fresh)
    stream.feed("bob: hi\r\n")
    s.editor._version += 1
    stream.feed(s.editor.draw())
    assert [line.rstrip() for line in fresh.display] == s.lines
    assert (fresh.cursor.y, fresh.cursor.x) == s.cursor


@pytest.mark.parametrize("wide", [False, True])
def test_resizing_keeps_the_cursor_in_sight(wide: bool) -> None:
    text = numbered(500, wide)
    s = long_screen(text)
    s.type(HOME + RIGHT * 201)
    for cols, rows in [(50, 8), (20, 8), (30, 5), (30, 12), (9, 3)]:
        s.resize(cols, rows)  # a terminal that cuts lines: the chat above may be gone
        s.message("bob: hi")
        shown = check_window(s)
        assert len(shown) <= rows - 1
        assert s.char_at_cursor() == text[201]


@pytest.mark.parametrize("typed", ["a" * 100, "中" * 60 + "ab", "e\u0301" * 80])
def test_a_line_that_fits_looks_as_it_always_did(typed: str) -> None:
    """While the line fits, the window is the whole line wrapped from its start."""
    tall = Screen(cols=20, rows=40)
    small = Screen(cols=20, rows=40, height=12)
    for key in [typed, HOME, "x", RIGHT * 30, "\x7f", "y" * 5, END, "\x17"]:
        tall.type(key)
        small.type(key)
        assert small.lines == tall.lines and small.cursor == tall.cursor


KEY_CLASSES = {
    "insert at start": (HOME, "x"),
    "delete at start": (HOME, DELETE),
    "insert in middle": (HOME + RIGHT * 100, CJK),
    "backspace in middle": (HOME + RIGHT * 100, "\x7f"),
    "backspace at end": ("", "\x7f"),
    "ctrl-b at start": (HOME + RIGHT, "\x02"),
    "home": ("", "\x01"),
    "end": (HOME, "\x05"),
    "alt-b": ("", "\x1bb"),
    "alt-f": (HOME, "\x1bf"),
    "ctrl-u": ("", "\x15"),
    "ctrl-k": (HOME, "\x0b"),
    "ctrl-w": ("", "\x17"),
    "up": ("\r", UP),
    "down": ("\r" + UP + UP, DOWN),
}


def _cost(monkeypatch: pytest.MonkeyPatch, text: str, setup: str, key: str) -> tuple[int, int]:
    """(characters measured, characters echoed) for ``key`` alone, on a 40x6 screen."""
    s = Screen(cols=40, rows=6)
    s.type("\x1b[200~" + text + "\x1b[201~" + setup)
    with monkeypatch.context() as m:
        count = Counting(m)
        echoed = len(s.type(key).echo)
    return count.calls, echoed


@pytest.mark.parametrize("kind", ["ascii", "cjk", "combining"])
@pytest.mark.parametrize("name", list(KEY_CLASSES))
def test_a_key_costs_what_the_screen_holds_not_what_the_line_holds(
    monkeypatch: pytest.MonkeyPatch, kind: str, name: str
) -> None:
    """Each key class at the start, middle or end of a 2000-character line
    costs what it costs on a line that just overfills the window (5 rows of
    40 columns): nothing is measured again, and at most the window is echoed.
    (Up and Down bring back a line Enter sent: 1000 characters at most.)"""
    unit = {"ascii": "abcd", "cjk": CJK * 4, "combining": "a\u0301\u0302\u0303"}[kind]
    per_row = {"ascii": 40, "cjk": 20, "combining": 160}[kind]  # characters in a row
    setup, key = KEY_CLASSES[name]
    length = 1000 if name in ("up", "down") else 2000
    short = _cost(monkeypatch, (unit * 1000)[: 6 * per_row], setup, key)
    long = _cost(monkeypatch, (unit * 1000)[:length], setup, key)
    assert long[0] <= short[0] + 2, (short, long)  # measuring: the typed character, if any
    assert long[1] <= short[1] + 2 * per_row, (short, long)  # echo: a row more at most
    assert long[1] <= 5 * 4 * 40 + 100  # and never more than the window holds


KEYS = st.sampled_from(
    ["a", "b", " ", CJK, "\x02", "\x06", "\x01", "\x05", "\x7f", "\x17", "\x0b", "\x15",
     DELETE, "\x1bb", "\x1bf", "\x1bd", UP, DOWN, "\r", "xy" * 13, CJK * 17, "0123456789" * 9, "\x02" * 20]
)


# No combining marks, as in test_editor_cost.py: pyte moves the cursor on a
# zero-width character printed at the end of a full row, unlike xterm.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(KEYS, max_size=60), st.integers(min_value=8, max_value=30), st.integers(min_value=2, max_value=8))
def test_each_key_on_a_short_terminal_leaves_what_a_full_redraw_would_draw(
    keys: list[str], cols: int, height: int
) -> None:
    s = Screen(cols=cols, rows=300, height=height)  # told ``height`` rows; nothing scrolls off pyte's
    for key in keys:
        s.type(key)
        fresh = pyte.Screen(cols, 300)
        stream = pyte.Stream(fresh)
        s.editor._version += 1
        stream.feed(s.editor.draw())
        want = [line.rstrip() for line in fresh.display]
        assert s.lines == want, (keys, key)
        assert s.cursor == (fresh.cursor.y, fresh.cursor.x), (keys, key)
        assert len([line for line in want if line]) <= height - 1
        text, pos = s.editor.text, s.editor.pos
        if pos < len(text):
            assert s.char_at_cursor() == text[pos], (keys, key)


def test_a_claimed_huge_terminal_is_drawn_at_most_max_columns_wide() -> None:
    """A client may claim 100,000 columns; an edit at the start of a long
    line then echoes what MAX_COLUMNS-wide rows hold, not the whole line."""
    from sshchat.term.editor import MAX_COLUMNS, LineEditor

    editor = LineEditor(100_000, max_chars=20_000, max_submit=10_000, height=3)
    assert editor.width == MAX_COLUMNS
    editor.feed("x" * 10_000)
    editor.feed("\x01")  # Home
    echoed = editor.feed("y").echo
    assert len(echoed) <= 3 * MAX_COLUMNS + 100
    editor.resize(200_000, 3)
    assert editor.width == MAX_COLUMNS
