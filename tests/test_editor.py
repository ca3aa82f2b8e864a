"""The input line, checked on a terminal emulator (pyte) as a person sees it."""

from __future__ import annotations

import pytest

from sshchat.term.editor import PASTE_ROOM, LineEditor
from sshchat.term.keys import KeyDecoder
from tests.support.screen import Screen

LEFT, RIGHT, UP, DOWN = "\x1b[D", "\x1b[C", "\x1b[A", "\x1b[B"
HOME, END, DELETE = "\x1b[H", "\x1b[F", "\x1b[3~"


def test_typing_and_cursor_keys() -> None:
    s = Screen()
    s.type("helo world")
    s.type(HOME + RIGHT * 3 + "l")
    assert s.lines[0] == "[alice] hello world"
    assert s.cursor == (0, 12) and s.char_at_cursor() == "o"
    s.type(END + "!")
    assert s.lines[0] == "[alice] hello world!"
    s.type("\x01" + DELETE)  # Ctrl-A, Delete
    assert s.lines[0] == "[alice] ello world!"
    s.type("\x05\x7f")  # Ctrl-E, Backspace
    assert s.lines[0] == "[alice] ello world"


def test_kill_keys() -> None:
    s = Screen()
    s.type("one two three")
    s.type("\x17")  # Ctrl-W
    assert s.lines[0] == "[alice] one two"
    assert s.editor.text == "one two "  # like readline: the space stays
    s.type(LEFT * 3 + "\x0b")  # Ctrl-K
    assert s.lines[0] == "[alice] one t"
    s.type("\x15")  # Ctrl-U
    assert s.lines[0] == "[alice]" and s.cursor == (0, 8)


def test_enter_submits_and_history_recalls() -> None:
    s = Screen()
    assert s.type("first\r").lines == ["first"]
    assert s.type("second\r\n").lines == ["second"]  # CR LF is one Enter
    assert s.lines[0] == "[alice]"
    s.type("draft")
    s.type(UP)
    assert s.lines[0] == "[alice] second"
    s.type(UP + UP)
    assert s.lines[0] == "[alice] first"
    s.type(DOWN + DOWN)
    assert s.lines[0] == "[alice] draft"


def test_blank_enter_sends_nothing() -> None:
    s = Screen()
    assert s.type("   \r").lines == []
    assert s.lines[0] == "[alice]"


def test_ctrl_c_clears_then_leaves_and_ctrl_d_leaves_on_empty_line() -> None:
    s = Screen()
    result = s.type("abc\x03")
    assert not result.leave and s.lines[0] == "[alice]"
    assert s.type("\x03").leave
    s = Screen()
    result = s.type("abc" + LEFT + "\x04")  # Ctrl-D deletes under the cursor
    assert not result.leave and s.lines[0] == "[alice] ab"
    assert s.type("\x15\x04").leave


@pytest.mark.parametrize("cols", [20, 33, 80])
@pytest.mark.parametrize(
    "text",
    [
        "plain ascii text that is long enough to wrap several times over",
        "日本語のテキストは幅が二つのセルを使うので折り返しが難しいです",
        "mixed 😀 emoji 🎉 and 中文 with ascii 🚀🚀🚀 end",
    ],
)
def test_half_typed_line_survives_incoming_messages(cols: int, text: str) -> None:
    s = Screen(cols=cols, rows=30)
    s.type(text)
    s.type(LEFT * 7)
    expected_char = text[-7]
    s.message("bob: hello")
    s.message("carol: " + "long message " * 8)
    screen_text = "".join(s.lines)
    assert "bob: hello" in s.lines
    # The whole input is still there, after the messages, and the cursor
    # sits on the same character it was on.
    assert screen_text.replace(" ", "").endswith(("[alice]" + text).replace(" ", ""))
    assert s.char_at_cursor() == expected_char
    assert s.editor.text == text


def test_wide_character_that_does_not_fit_moves_to_the_next_row() -> None:
    s = Screen(cols=10, rows=5, prompt="> ")
    s.type("abcdefg日x")  # 2 + 7 = 9 columns used: 日 cannot take the last one
    assert s.lines[0] == "> abcdefg"
    assert s.lines[1] == "日x"
    assert s.cursor == (1, 3)


def test_exactly_full_row_puts_cursor_on_the_next_row() -> None:
    s = Screen(cols=10, rows=5, prompt="> ")
    s.type("abcdefgh")
    assert s.lines[0] == "> abcdefgh"
    assert s.cursor == (1, 0)
    s.message("m")
    assert s.lines[:2] == ["m", "> abcdefgh"] and s.cursor == (2, 0)


def test_resize_redraws_at_the_new_width() -> None:
    s = Screen(cols=40, rows=10)
    s.type("a" * 50)
    s.resize(20)
    s.message("hi")
    assert s.lines[0] == "hi"
    assert s.lines[1] == "[alice] " + "a" * 12
    assert "".join(s.lines[1:5]) == "[alice] " + "a" * 50


@pytest.mark.parametrize(
    ("typed", "keys", "cols"),
    [
        ("a" * 45, "", 20),  # two rows at 40 columns
        ("é" * 45, "", 20),
        ("a" * 32, "", 20),  # the first row exactly full: the cursor on the next
        ("a" * 12, "", 20),  # a 20-cell row: at 20 columns the cursor stays on its last row
        ("中" * 20, "", 20),
        ("中" * 20, "", 7),  # wide characters move to the next row whole: more rows than cells / width
        ("a" * 45, LEFT * 30, 20),  # the cursor inside the first row
        ("中" * 20 + "abc", LEFT * 10, 9),
    ],
)
def test_narrowing_a_rewrapping_terminal_leaves_no_stale_input(typed: str, keys: str, cols: int) -> None:
    s = Screen(cols=40, rows=16)
    s.message("before")
    s.type(typed + keys)
    s.rewrap(cols)
    s.message("after")
    reference = Screen(cols=cols, rows=16)  # the same input drawn at the new width from the start
    reference.type(typed + keys)
    expected = [line for line in reference.lines if line]
    assert [line for line in s.lines if line] == ["before", "after", *expected]
    assert s.cursor[1] == reference.cursor[1]


def test_widening_a_rewrapping_terminal_loses_no_chat_above() -> None:
    s = Screen(cols=20, rows=10)
    s.message("before")
    s.type("a" * 25)  # two rows at 20 columns
    s.rewrap(60)
    s.message("after")
    assert [line for line in s.lines if line] == ["before", "after", "[alice] " + "a" * 25]


def test_paste_keeps_text_drops_controls_and_sends_each_line() -> None:
    s = Screen()
    result = s.type("\x1b[200~line one\rline\x07 two\x1b[31m\x08\rhalf\x1b[201~")
    assert result.lines == ["line one", "line two"]
    assert s.lines[0] == "[alice] half"


def test_too_long_line_is_kept_for_editing() -> None:
    s = Screen(cols=80, rows=30)
    s.editor.max_submit = 10
    result = s.type("x" * 11 + "\r")
    assert result.lines == []
    assert "message too long (11 characters, at most 10)" in result.errors[0]
    assert s.editor.text == "x" * 11


def test_input_is_capped() -> None:
    editor = LineEditor(80, max_chars=100, max_submit=50)
    editor.feed("y" * 1000)
    assert len(editor.text) == 100


def test_a_chat_editor_holds_room_to_paste_and_sends_what_the_setting_allows() -> None:
    editor = LineEditor.for_messages(80, 40)
    editor.feed("z" * 1000)
    assert len(editor.text) == PASTE_ROOM * 40
    assert "at most 40" in editor.feed("\r").errors[0]
    assert editor.feed("\x7f" * (len(editor.text) - 40) + "\r").lines == ["z" * 40]


def test_combining_marks_move_with_their_letter() -> None:
    s = Screen()
    s.type("e\u0301x")
    s.type(LEFT + LEFT)
    assert s.editor.pos == 0
    s.type(DELETE)
    assert s.editor.text == "x"


def test_escape_sequences_split_across_reads() -> None:
    decoder = KeyDecoder()
    assert decoder.feed("a\x1b") == ["a"]
    assert decoder.feed("[") == []
    assert decoder.feed("1;5") == []
    assert decoder.feed("Cb") == ["word-right", "b"]
    assert decoder.feed("\x1bOH\x1b[3~\x1bb") == ["home", "delete", "word-left"]
    assert decoder.feed("\r") == ["enter"]
    assert decoder.feed("\n") == []  # the LF of a CR LF split over two reads


def test_garbage_escape_is_not_buffered_forever() -> None:
    decoder = KeyDecoder()
    decoder.feed("\x1b[" + "1" * 100)
    assert decoder.feed("z") == ["z"]
