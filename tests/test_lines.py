"""Input without a PTY comes as lines (ssh/lines.py), read the same way by
both kinds of session (Outbox._feed_lines)."""

from __future__ import annotations

import time

from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.ssh.lines import LineBuffer
from sshchat.store.memory import MemoryStore
from tests.support.channel import open_session, settle
from tests.support.chat import Recorder
from tests.support.settings import chat_settings


def test_a_line_a_character_at_a_time_costs_time_in_proportion_to_its_length() -> None:
    """A line sent one character per packet is not copied again for every
    character (50,000 of them took 1.9 s that way; now a few ms)."""
    lines = LineBuffer(max_chars=100_000)
    started = time.perf_counter()
    for _ in range(50_000):
        assert lines.feed("x") == ([], False)
    assert lines.feed("y\r\nnext") == (["x" * 50_000 + "y"], False)
    assert time.perf_counter() - started < 0.5
    assert lines.rest() == "next" and lines.rest() == ""


def test_a_line_past_the_bound_is_dropped_whether_it_comes_whole_or_in_pieces() -> None:
    lines = LineBuffer(max_chars=10)
    assert lines.feed("12345") == ([], False)
    assert lines.feed("678901") == ([], True)  # 11 characters unfinished: dropped
    assert lines.feed("ab\ncd") == (["ab"], False)  # what follows starts afresh
    assert lines.feed("x" * 11) == ([], True)
    assert lines.rest() == ""


async def test_a_script_and_a_bot_read_lines_split_across_packets_alike() -> None:
    hub = Hub(MemoryStore(), chat_settings())
    reader = Recorder()
    hub.join("reader", None, reader)
    script, _, _ = open_session(hub, "script", pty=False)
    bot, _, _ = open_session(hub, "bot", pty=False, command="say")
    for session, who in ((script, "script"), (bot, "bot")):
        for piece in ("hel", f"lo from {who}\r\n\nsec", "ond\n", "third"):
            session.data_received(piece, None)  # type: ignore[arg-type]
        session.eof_received()
    await settle()
    assert reader.texts(Kind.CHAT) == [
        "hello from script", "second", "third", "hello from bot", "second", "third",
    ]
