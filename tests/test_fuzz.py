"""Property tests of the input path: no exception escapes, nothing unsafe passes.

Hypothesis throws arbitrary text (every control character, escape sequences,
bidi and zero-width characters, surrogate-free Unicode) at the editor, the
key decoder, the sanitiser, the name rules and the whole chat core.
"""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshchat.chat.hub import Hub
from sshchat.chat.names import NAME_RE, InvalidName, check_name
from sshchat.chat.sanitize import clean
from sshchat.store.memory import MemoryStore
from sshchat.term.editor import LineEditor
from sshchat.term.render import Look, Style, render
from tests.support.chat import Recorder
from tests.support.settings import chat_settings

# Text biased towards what terminals and attackers care about.
_NASTY = st.sampled_from(
    ["\x1b", "\x1b[", "\x1b]", "\x1bP", "\x9b", "\x07", "\x08", "\x7f", "\r", "\n", "\t",
     "\x1b[200~", "\x1b[201~", "\x1b[D", "\x1b[3~", "\x03", "\x04", "\x15", "\x17",
     "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u0301", "日", "😀", "\x00", "\x85"]
)
TEXT = st.lists(st.one_of(_NASTY, st.text(max_size=8)), max_size=40).map("".join)


def unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")


@given(TEXT)
def test_clean_leaves_nothing_unsafe(text: str) -> None:
    out = clean(text)
    assert not any(unsafe(ch) for ch in out)
    assert clean(out) == out  # cleaning is idempotent


@given(st.lists(TEXT, max_size=10), st.integers(min_value=2, max_value=200))
def test_editor_never_raises_and_keeps_only_printable_text(chunks: list[str], width: int) -> None:
    editor = LineEditor(width, max_chars=300, max_submit=100)
    editor.set_prompt("[x] ")
    editor.draw()
    for chunk in chunks:
        result = editor.feed(chunk)
        for line in result.lines:
            assert not any(unsafe(ch) for ch in line)
        editor.above("msg")
    assert not any(unsafe(ch) for ch in editor.text)
    assert len(editor.text) <= 300
    assert 0 <= editor.pos <= len(editor.text)


@given(st.text(max_size=30))
def test_name_rule_accepts_only_what_the_regex_says(name: str) -> None:
    try:
        check_name(name)
        accepted = True
    except InvalidName as e:
        accepted = False
        assert not any(unsafe(ch) for ch in str(e))
    assert accepted == (NAME_RE.fullmatch(name) is not None and name.lower() not in (
        "admin", "administrator", "all", "everyone", "here", "mod", "moderator", "nobody",
        "notice", "operator", "root", "server", "sshchat", "system"))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_whatever_anyone_types_others_receive_only_clean_text(lines: list[str]) -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), admins={"SHA256:op"})
    mallory_out = Recorder()
    mallory = hub.join("mallory", "SHA256:op", mallory_out)  # an operator: every command runs
    victim_out = Recorder()
    hub.join("victim", None, victim_out)
    for line in lines:
        hub.handle_line(mallory, line)
        hub.handle_line(mallory, "/" + line)  # every command with hostile arguments
    for msg in victim_out.messages:
        for style in Style:
            shown, _ = render(msg, Look(style, "datetime"), True, True)
            # Only our own SGR colour codes may carry ESC; the text itself is clean.
            assert not any(unsafe(ch) for ch in msg.text)
            assert not any(unsafe(ch) for ch in shown.replace("\x1b[", ""))
    for notice in victim_out.notices + mallory_out.notices:  # replies echo arguments too
        assert not any(unsafe(ch) for ch in notice), repr(notice)
