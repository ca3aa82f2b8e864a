"""The outbox: one write per event-loop turn, and a cap on unsent output.

A session is driven here, through asyncssh's callbacks, with a stand-in
channel (tests/support/channel.py), so what it writes can be counted
exactly. (What a batch looks like is term/batch.py's, tested in
test_batch.py without any channel.)
"""

from __future__ import annotations

import asyncio

from sshchat.chat.hub import Hub
from sshchat.ssh.chat_session import ChatSession
from sshchat.store.memory import MemoryStore
from tests.support.channel import open_session, settle
from tests.support.settings import chat_settings


async def test_a_burst_goes_out_in_one_write_with_one_redraw() -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000))
    _, chan, _ = open_session(hub, "reader", pty=True)
    sender, _, _ = open_session(hub, "sender", pty=False)
    await settle()
    chan.writes.clear()
    for n in range(50):
        sender.data_received(f"burst {n}\n", None)
    await settle()
    assert len(chan.writes) == 1
    out = chan.writes[0]
    assert all(f"burst {n}" in out for n in range(50))
    assert out.count("\x1b[J") == 1  # one erase of the input line
    assert out.count("reader\x1b[0m #lobby] ") == 1  # and one redraw of the prompt
    assert out.index("burst 0") < out.index("burst 49")


async def test_a_quiet_message_goes_out_at_once() -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000))
    _, chan, _ = open_session(hub, "reader", pty=False)
    sender, _, _ = open_session(hub, "sender", pty=False)
    await settle()
    chan.writes.clear()
    sender.data_received("one\n", None)
    await asyncio.sleep(0)  # the very next loop turn
    assert chan.writes == ["sender: one\n"]


async def test_unsent_output_past_the_limit_cuts_the_session_off() -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000))
    _, chan, conn = open_session(hub, "slow", pty=False, outbox_limit=10_000)
    watcher, watcher_chan, _ = open_session(hub, "watcher", pty=False)
    await settle()
    conn._transport.backlog = 9_000
    watcher.data_received("small\n", None)
    await settle()
    assert not conn.aborted
    conn._transport.backlog = 10_001
    watcher.data_received("more\n", None)
    await settle()
    assert conn.aborted and hub.find("slow") is None
    assert "slow left (too slow to keep up; disconnected)" in "".join(watcher_chan.writes)
    writes = len(chan.writes)
    watcher.data_received("after\n", None)
    await settle()
    assert len(chan.writes) == writes  # nothing more is queued for it


async def test_a_crash_in_one_session_ends_only_that_session(monkeypatch) -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000))
    broken, chan, _ = open_session(hub, "broken", pty=True)
    fine, fine_chan, _ = open_session(hub, "fine", pty=False)
    await settle()

    def boom(data: str) -> None:
        raise RuntimeError("bug")

    assert isinstance(broken.handler, ChatSession)
    monkeypatch.setattr(broken.handler._editor, "feed", boom)
    broken.data_received("x", None)
    assert chan.status == 0 and "internal error" in "".join(chan.writes)
    fine.data_received("still ok\n", None)
    await settle()
    assert "fine: still ok" in "".join(fine_chan.writes)


async def test_a_session_that_cannot_flush_is_ended_and_others_still_get_output(monkeypatch) -> None:
    from sshchat.ssh.flusher import Flusher

    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000))
    broken, chan, _ = open_session(hub, "broken", pty=True)
    fine, fine_chan, _ = open_session(hub, "fine", pty=False)
    shared = Flusher()
    broken.handler._ctx.flusher = fine.handler._ctx.flusher = shared  # type: ignore[union-attr]
    await settle()

    def boom(*args: object) -> str:
        raise RuntimeError("render bug")

    assert isinstance(broken.handler, ChatSession)
    monkeypatch.setattr(broken.handler._editor, "above", boom)
    fine.data_received("hello\n", None)
    await settle()
    assert chan.status == 0  # ended, not left connected and silent
    assert hub.find("broken") is None
    assert "fine: hello" in "".join(fine_chan.writes)
