"""The Writer: the one place a session's bytes go to its channel.

A channel and a connection that record what they are given stand in for
asyncssh's (the direct packet path is exercised end to end by the server
tests; here it is the rules: what is sent, and when a reader is cut off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sshchat.ssh.writer import Writer

LIMIT = 1000


@dataclass
class Transport:
    backlog: int = 0  # bytes the socket has not taken yet

    def get_write_buffer_size(self) -> int:
        return self.backlog


@dataclass
class Conn:
    _transport: Transport = field(default_factory=Transport)
    aborted: int = 0

    def abort(self) -> None:
        self.aborted += 1


@dataclass
class Chan:
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    status: int | None = None
    buffered: int = 0  # what asyncssh holds once the client's window is full

    def write(self, data: str) -> None:
        self.out.append(data)

    def write_stderr(self, data: str) -> None:
        self.err.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def exit(self, status: int) -> None:
        self.status = status


def writer() -> tuple[Writer, Chan, Conn, list[int]]:
    chan, conn, cut = Chan(), Conn(), []
    return Writer(chan, conn, LIMIT, cut.append), chan, conn, cut  # type: ignore[arg-type]


def test_text_and_encoded_bytes_go_out_as_they_are() -> None:
    w, chan, _, _ = writer()
    w.write("héllo\r\n")
    w.write("")  # nothing to send: no write at all
    w.write_encoded("wörld\n".encode())
    assert chan.out == ["héllo\r\n", "wörld\n"]


def test_a_backlog_up_to_the_limit_is_allowed() -> None:
    w, chan, conn, cut = writer()
    conn._transport.backlog = LIMIT - 10
    chan.buffered = 10
    w.write("x")
    assert cut == [] and not conn.aborted and w.open


def test_a_backlog_past_the_limit_cuts_the_reader_off_once() -> None:
    w, chan, conn, cut = writer()
    conn._transport.backlog = LIMIT - 10
    chan.buffered = 11  # the channel's buffer counts too
    w.write("x")
    assert cut == [LIMIT + 1] and conn.aborted == 1 and not w.open
    w.write("more")  # after the cut-off nothing more is written
    w.exit(0, "bye")
    assert chan.out == ["x"] and chan.status is None and cut == [LIMIT + 1] and conn.aborted == 1


def test_the_last_words_are_not_cut_off() -> None:
    w, chan, conn, cut = writer()
    conn._transport.backlog = 10 * LIMIT
    w.exit(3, "goodbye\n", "sshchat: why\n")
    assert chan.out == ["goodbye\n"] and chan.err == ["sshchat: why\n"] and chan.status == 3
    assert cut == [] and not conn.aborted


def test_nothing_is_written_once_the_connection_is_lost() -> None:
    w, chan, _, _ = writer()
    w.detach()
    w.write("late")
    w.exit(0, "bye", "err")
    assert chan.out == [] and chan.err == [] and chan.status is None


def test_a_closing_channel_is_not_an_error() -> None:
    w, chan, conn, cut = writer()

    def closed(data: str) -> None:
        raise BrokenPipeError

    chan.write = closed  # type: ignore[method-assign]
    conn._transport.backlog = 10 * LIMIT
    w.write("x")  # no exception, and no cut-off for a write that did not happen
    assert cut == [] and not conn.aborted
