"""Self-test for tests/support/terminal.py.

Uses only tiny local programs (``python -c``, ``cat``) and, for the ssh part,
a throwaway asyncssh server started inside the test -- never the sshchat
server. Everything waits by polling the screen; the only sleeps are inside the
child programs where the scenario itself needs time to pass.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import asyncssh
import pytest

from tests.support.terminal import Terminal, ssh_argv


def py(code: str) -> list[str]:
    """argv running a Python snippet with the interpreter running the tests."""
    # -I -S: skip site-packages and user env, so each child starts faster
    return [sys.executable, "-I", "-S", "-c", textwrap.dedent(code)]


def writer(data: bytes) -> list[str]:
    """argv of a program that writes ``data`` in one write and exits."""
    return py(f"import sys; sys.stdout.buffer.write(bytes.fromhex({data.hex()!r})); sys.stdout.flush()")


@pytest.fixture
def spawn() -> Iterator[Callable[..., Terminal]]:
    """Factory for Terminals that are always closed, even when a test fails."""
    terminals: list[Terminal] = []

    def make(argv: list[str], **kwargs: object) -> Terminal:
        term = Terminal(argv, **kwargs)  # type: ignore[arg-type]
        terminals.append(term)
        return term

    yield make
    for term in terminals:
        term.close()


# ---------------------------------------------------------------------------
# basic output, cursor, input
# ---------------------------------------------------------------------------


def test_prints_text_and_reports_exit_status(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("print('hello world'); print('second line'); raise SystemExit(3)"))
    term.wait_for("hello world")
    assert term.wait_exit() == 3
    assert term.lines()[:3] == ["hello world", "second line", ""]
    assert len(term.lines()) == 24
    assert term.text().startswith("hello world\nsecond line\n")
    assert term.row_of("second") == 1
    assert term.row_of("absent") is None
    assert term.cursor() == (2, 0)
    assert not term.is_alive()
    # the pty turns "\n" into "\r\n" (onlcr), as for any program in a terminal
    assert term.raw_output() == b"hello world\r\nsecond line\r\n"


def test_cursor_movement_escape_sequences(spawn: Callable[..., Terminal]) -> None:
    term = spawn(writer(b"garbage\x1b[2J\x1b[5;10HX\x1b[1;1Hab\x1b[1mB\x1b[0m"))
    assert term.wait_exit() == 0
    assert term.row_of("X") == 4
    assert term.lines()[4] == " " * 9 + "X"
    assert term.lines()[0] == "abB"
    assert "garbage" not in term.text()
    assert term.cursor() == (0, 3)
    assert term.char_at(0, 2).bold and not term.char_at(0, 1).bold
    assert b"\x1b[5;10H" in term.raw_output()


def test_send_round_trips_in_raw_mode(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("""
        import os, sys, tty
        tty.setraw(0)
        os.write(1, b"ready\\r\\n")
        while True:
            data = os.read(0, 1024)
            os.write(1, b"".join(b"%02x " % b for b in data))
            if b"q" in data:
                break
    """))
    term.wait_for("ready")
    term.send("hi")
    term.wait_for("68 69")
    term.send("\x1b[D")  # Left arrow
    term.send(b"\x03")  # Ctrl-C is just a byte in raw mode
    term.type("ok", delay=0.01)
    term.send("é")  # str is sent as UTF-8
    term.send("q")
    assert term.wait_exit() == 0
    assert term.lines()[1] == "68 69 1b 5b 44 03 6f 6b c3 a9 71"


def test_cooked_mode_echo_and_ctrl_c_is_sigint(spawn: Callable[..., Terminal]) -> None:
    # The pty is the child's controlling terminal: the line discipline echoes,
    # and ^C becomes SIGINT for the foreground process.
    term = spawn(["cat"])
    term.type("abc\r")
    term.wait_for(lambda t: t.lines()[:2] == ["abc", "abc"])
    term.send("\x03")
    assert term.wait_exit() == -signal.SIGINT


def test_terminal_answers_cursor_position_query(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("""
        import os, tty
        tty.setraw(0)
        os.write(1, b"\\x1b[3;7H\\x1b[6n")
        reply = b""
        while not reply.endswith(b"R"):
            reply += os.read(0, 1)
        os.write(1, b"\\r\\nreply=" + reply[1:])
    """))
    assert term.wait_exit() == 0
    term.wait_for("reply=[3;7R")


# ---------------------------------------------------------------------------
# environment, size, resize
# ---------------------------------------------------------------------------


def test_env_term_and_no_stale_lines_columns(
    spawn: Callable[..., Terminal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINES", "5")
    monkeypatch.setenv("COLUMNS", "7")
    term = spawn(
        py("import os; print(os.environ['TERM'], os.environ['SSHCHAT_X'], "
           "os.environ.get('LINES'), os.environ.get('COLUMNS'))"),
        term="xterm-256color",
        env={"SSHCHAT_X": "ok"},
    )
    assert term.wait_exit() == 0
    assert term.lines()[0] == "xterm-256color ok None None"


SIZE_REPORTER = py("""
    import fcntl, os, signal, struct, sys, termios

    def report(*_):
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\\0" * 8))[:2]
        assert os.get_terminal_size(0) == (cols, rows)
        # a full-width row proves the emulator has exactly `cols` columns
        os.write(1, b"\\r\\nsize=%dx%d\\r\\n" % (rows, cols) + b"#" * cols + b"\\r\\n")

    signal.signal(signal.SIGWINCH, report)
    report()
    while b"q" not in os.read(0, 1024):
        pass
""")


def test_resize_reaches_child_and_screen(spawn: Callable[..., Terminal]) -> None:
    term = spawn(SIZE_REPORTER, rows=24, cols=80)
    term.wait_for("size=24x80")
    assert term.size() == (24, 80)
    assert "#" * 80 in term.lines()

    term.resize(30, 100)
    term.wait_for("size=30x100")
    assert term.size() == (30, 100)
    assert len(term.lines()) == 30
    full = term.lines().index("#" * 100)  # one row, not wrapped at 80
    assert term.lines()[full + 1] == ""

    term.resize(10, 40)
    term.wait_for("size=10x40")
    assert term.size() == (10, 40)
    assert len(term.lines()) == 10 and all(len(line) <= 40 for line in term.lines())
    row, col = term.cursor()
    assert 0 <= row < 10 and 0 <= col < 40
    assert "#" * 40 in term.lines()

    term.send("q\r")
    assert term.wait_exit() == 0


def test_shrinking_keeps_cursor_row_visible(spawn: Callable[..., Terminal]) -> None:
    # Cursor near the top: rows vanish from the bottom (pyte alone would
    # delete from the top and lose "top").
    term = spawn(py("import os, sys; os.write(1, b'top\\r\\nline2'); sys.stdin.read()"), rows=10, cols=20)
    term.wait_for("line2")
    term.resize(4, 20)
    assert term.lines() == ["top", "line2", "", ""]
    assert term.cursor() == (1, 5)

    # Cursor at the bottom: rows vanish from the top, cursor follows its row.
    term2 = spawn(py("import os, sys; os.write(1, b'\\x1b[10;1Hbottom'); sys.stdin.read()"), rows=10, cols=20)
    term2.wait_for("bottom")
    term2.resize(4, 3)
    assert term2.lines() == ["", "", "", "bot"]
    assert term2.cursor() == (3, 2)

    # A wide character cut in half by a narrower window leaves a blank.
    term3 = spawn(py("import os, sys; os.write(1, '中文'.encode()); sys.stdin.read()"), rows=3, cols=10)
    term3.wait_for("中文")
    term3.resize(3, 3)
    assert term3.lines()[0] == "中"


# ---------------------------------------------------------------------------
# UTF-8 and wide characters
# ---------------------------------------------------------------------------


def test_utf8_split_across_reads(spawn: Callable[..., Terminal]) -> None:
    # "中" = e4 b8 ad, "文" = e6 96 87, "😀" = f0 9f 98 80: each write below
    # ends in the middle of a character, with a pause so they arrive apart.
    term = spawn(py("""
        import os, time
        for part in (b"\\xe4\\xb8", b"\\xad\\xe6", b"\\x96\\x87 ok\\xf0\\x9f", b"\\x98\\x80!"):
            os.write(1, part)
            time.sleep(0.05)
    """))
    assert term.wait_exit() == 0
    assert term.lines()[0] == "中文 ok😀!"
    assert "\ufffd" not in term.text()
    assert term.cursor() == (0, 10)  # 2 + 2 + 3 + 2 + 1 cells
    assert term.raw_output() == "中文 ok😀!".encode()


# (bytes the program writes, rows, cols, expected lines (prefix), expected cursor)
EMULATION_CASES = {
    # pyte keeps the cursor at col == width after the last column is
    # written ("pending wrap"); the next character wraps.
    "deferred wrap": (b"0123456789", 3, 10, ["0123456789", ""], (0, 10)),
    "deferred wrap then char": (b"0123456789X", 3, 10, ["0123456789", "X"], (1, 1)),
    "backspace from pending wrap": (b"0123456789\bY", 3, 10, ["01234567Y9", ""], (0, 9)),
    # xterm wraps a wide char that does not fit; pyte alone draws it half off-screen
    "wide char at last column": ("012345678中".encode(), 3, 10, ["012345678", "中"], (1, 2)),
    "overwrite left half of wide": ("中文\ra".encode(), 3, 10, ["a 文"], (0, 1)),
    "overwrite right half of wide": ("中\x1b[2Gb".encode(), 3, 10, [" b"], (0, 2)),
    # pyte alone drops everything after U+FE0F / U+200D in the same run
    "emoji variation selector": ("I \u2764\ufe0f you".encode(), 3, 20, ["I \u2764\ufe0f you"], None),
    "zero-width joiner": ("\U0001f468\u200d\U0001f469 x".encode(), 3, 20, ["\U0001f468\u200d\U0001f469 x"], None),
    # pyte's own Screen.display raises IndexError on an orphaned right half
    "delete left half of wide": ("中文\x1b[1G\x1b[P".encode(), 3, 10, [" 文"], (0, 0)),
    "combining accent": ("e\u0301!".encode(), 3, 10, ["\u00e9!"], (0, 2)),
    # pyte alone raises TypeError on surplus parameters and loses the read
    "surplus csi params": (b"ab\x1b[1;5Cc\x1b[2;3;4Hd", 3, 10, ["ab c", "  d"], (1, 3)),
    # pyte's DL leaves line 1 alone when line 3 was never drawn on
    "delete lines": (b"a\r\nb\r\nc\x1b[H\x1b[2M", 5, 10, ["c", "", "", "", ""], (0, 0)),
    "scroll up (SU)": (b"a\r\nb\r\nc\x1b[1S", 3, 10, ["b", "c", ""], (2, 1)),
    "scroll down (SD)": (b"a\r\nb\r\nc\x1b[1T", 3, 10, ["", "a", "b"], (2, 1)),
    "scroll region": (b"\x1b[2;3r\x1b[3;1Hm1\r\nm2\r\nm3\x1b[r\x1b[4;1Hinput", 4, 10, ["", "m2", "m3", "input"], (3, 5)),
    "repeat (REP)": (b"a\x1b[3b", 3, 10, ["aaaa"], (0, 4)),
    "save once, restore twice": (b"\x1b[3;5H\x1b7\x1b[Hx\x1b8y\x1b[Hz\x1b8w", 3, 10, ["z", "", "    w"], (2, 5)),
    "alternate screen": (b"main\x1b[?1049h\x1b[2J\x1b[HFULLSCREEN\x1b[?1049l", 3, 20, ["main", ""], (0, 4)),
    "DECCOLM ignored": (b"\x1b[?3h" + b"x" * 25, 3, 20, ["x" * 20, "x" * 5], (1, 5)),
    # sequences pyte alone would draw (partly) as text or misread
    "ignored sequences": (
        b"\x1b[>4;1m\x1b[2 q\x1b[!p\x1bPq#0;1\x1b\\\x1b_apc\x1b\\\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ ok",
        3, 20, ["link ok"], (0, 7),
    ),
    "title and cursor hide": (b"\x1b]0;title\x07\x1b[?25lvisible", 3, 20, ["visible"], (0, 7)),
    "unprintable c0 ignored": (b"a\x01b\x7fc", 3, 10, ["abc"], (0, 3)),
}


@pytest.mark.parametrize("case", EMULATION_CASES.keys())
def test_screen_emulation(spawn: Callable[..., Terminal], case: str) -> None:
    data, rows, cols, expected, cursor = EMULATION_CASES[case]
    term = spawn(writer(data), rows=rows, cols=cols)
    assert term.wait_exit() == 0
    assert term.lines()[: len(expected)] == expected, term.dump()
    if cursor is not None:
        assert term.cursor() == cursor, term.dump()


def test_colours_including_colon_sgr(spawn: Callable[..., Terminal]) -> None:
    term = spawn(writer(b"\x1b[38:2::255:0:0mR\x1b[0m\x1b[38;5;2mG\x1b[4:3mU\x1b[m\x1b[58:5:1mn"))
    assert term.wait_exit() == 0
    assert term.lines()[0] == "RGUn"
    assert term.char_at(0, 0).fg == "ff0000"
    assert term.char_at(0, 1).fg == "00cd00" and not term.char_at(0, 1).underscore
    assert term.char_at(0, 2).underscore
    assert term.char_at(0, 3).fg == "default" and not term.char_at(0, 3).underscore


def test_cursor_visibility(spawn: Callable[..., Terminal]) -> None:
    term = spawn(writer(b"\x1b[?25l"))
    assert term.wait_exit() == 0
    assert not term.cursor_visible()


# ---------------------------------------------------------------------------
# waiting and failure messages
# ---------------------------------------------------------------------------


def test_wait_for_timeout_dumps_screen_and_cursor(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("import sys; print('some text'); print('more'); sys.stdin.read()"))
    term.wait_for(re.compile(r"some\s+text"))
    with pytest.raises(AssertionError) as info:
        term.wait_for("absent text", timeout=0.2)
    message = str(info.value)
    assert "timed out after 0.2s waiting for text 'absent text'" in message
    assert "  0 |some text" in message and "  1 |more" in message
    assert "cursor (row, col) = (2, 0)" in message
    assert "running" in message

    def never(t: Terminal) -> bool:
        return False

    with pytest.raises(AssertionError, match="predicate never"):
        term.wait_for(never, timeout=0.1)
    term.wait_for(lambda t: t.row_of("more") == 1)


def test_wait_for_fails_fast_when_output_ended(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("print('bye')"))
    started = time.monotonic()
    with pytest.raises(AssertionError, match="output ended"):
        term.wait_for("never printed", timeout=30)
    assert time.monotonic() - started < 5


def test_wait_quiet(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("""
        import sys, time
        for i in range(5):
            print("tick", i, flush=True)
            time.sleep(0.05)
        print("done", flush=True)
        sys.stdin.read()
    """))
    term.wait_for("tick 0")
    term.wait_quiet(quiet=0.2, timeout=5)
    assert "done" in term.text()

    chatty = spawn(py("""
        import time
        while True:
            print("x", flush=True)
            time.sleep(0.01)
    """))
    chatty.wait_for("x")
    with pytest.raises(AssertionError, match="output did not stop"):
        chatty.wait_quiet(quiet=0.2, timeout=0.3)


def test_wait_exit_returns_none_while_running(spawn: Callable[..., Terminal]) -> None:
    term = spawn(["cat"])
    assert term.wait_exit(timeout=0.1) is None
    assert term.is_alive()


# ---------------------------------------------------------------------------
# closing
# ---------------------------------------------------------------------------


def test_close_hangs_up_a_normal_child() -> None:
    with Terminal(["cat"]) as term:
        term.type("x")
        term.wait_for("x")
    assert not term.is_alive()
    assert term.wait_exit(timeout=0) == -signal.SIGHUP
    term.close()  # idempotent


def test_close_kills_a_child_that_ignores_sighup() -> None:
    term = Terminal(py("""
        import signal, time
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """))
    term.wait_for("ready")
    pid = term.pid
    started = time.monotonic()
    term.close(grace=0.3)
    assert time.monotonic() - started < 3
    assert not term.is_alive()
    assert term.wait_exit(timeout=0) == -signal.SIGKILL
    assert not term._thread.is_alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie
    with pytest.raises(RuntimeError):
        term.send("x")


# ---------------------------------------------------------------------------
# ssh
# ---------------------------------------------------------------------------


def test_ssh_argv_shape() -> None:
    argv = ssh_argv(2222, "alice")
    assert argv[0] == "ssh"
    assert argv[-1] == "alice@127.0.0.1"
    assert argv[argv.index("-p") + 1] == "2222"
    for option in (
        "StrictHostKeyChecking=no",
        "UserKnownHostsFile=/dev/null",
        "LogLevel=ERROR",
        "PubkeyAuthentication=no",
        "IdentityAgent=none",
    ):
        assert argv[argv.index(option) - 1] == "-o"
    assert "-i" not in argv

    argv = ssh_argv(22, "bob", key="/k/id", extra=["-o", "EscapeChar=~", "-t"], host="::1",
                    command=["help", "me"])
    assert argv[1:4] == ["-o", "EscapeChar=~", "-t"]  # first -o value wins in ssh
    assert argv[argv.index("-i") + 1] == "/k/id"
    assert "IdentitiesOnly=yes" in argv and "PubkeyAuthentication=no" not in argv
    assert argv[-3:] == ["bob@::1", "help", "me"]


class ThrowawaySSHServer:
    """Minimal asyncssh server on 127.0.0.1 in its own thread and event loop.

    Users need no authentication ("none" auth) except ``keyuser``, who must
    present ``authorized_key``. The session greets, reports who/what it sees,
    echoes keystrokes, reports window changes, and exits on "q".
    """

    def __init__(self, authorized_key: asyncssh.SSHKey | None = None) -> None:
        self.authorized_key = authorized_key
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ssh-server", daemon=True)
        self._server: asyncssh.SSHAcceptor | None = None
        self._connections: list[asyncssh.SSHServerConnection] = []

    def __enter__(self) -> ThrowawaySSHServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    async def _start(self) -> None:
        outer = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                self._conn = conn
                outer._connections.append(conn)
                conn.set_extra_info(auth_method="none")

            def begin_auth(self, username: str) -> bool:
                return username == "keyuser"  # False: no auth needed

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                ok = outer.authorized_key is not None and key.public_data == outer.authorized_key.public_data
                if ok:
                    self._conn.set_extra_info(auth_method="publickey")
                return ok

        self._server = await asyncssh.create_server(
            Server,
            "127.0.0.1",
            0,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            process_factory=self._session,
            line_editor=False,  # we want every keystroke, not lines
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for conn in self._connections:
            conn.close()
            await conn.wait_closed()

    @staticmethod
    async def _session(process: asyncssh.SSHServerProcess) -> None:
        width, height, _, _ = process.get_terminal_size()
        process.stdout.write("hello from server\r\n")
        process.stdout.write(
            f"user={process.get_extra_info('username')} auth={process.get_extra_info('auth_method')} "
            f"term={process.get_terminal_type()} size={width}x{height}\r\n"
        )
        while True:
            try:
                data = await process.stdin.read(1024)
            except asyncssh.TerminalSizeChanged as change:
                process.stdout.write(f"\r\nresized to {change.width}x{change.height}\r\n")
                continue
            if not data:
                break
            process.stdout.write(data.replace("\r", "\r\n"))
            if "q" in data:
                process.stdout.write("\r\nbye\r\n")
                break
        process.exit(0)


def test_real_ssh_client_against_asyncssh_server(tmp_path: os.PathLike[str]) -> None:
    key_path = os.path.join(tmp_path, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key_path], check=True)
    authorized = asyncssh.read_public_key(key_path + ".pub")

    with ThrowawaySSHServer(authorized_key=authorized) as server:
        # key=None: no public key offered, the server lets "alice" in with "none"
        with Terminal(ssh_argv(server.port, "alice"), term="xterm-256color", rows=24, cols=80) as term:
            term.wait_for("hello from server")
            term.wait_for("user=alice auth=none term=xterm-256color size=80x24")
            term.type("hi\r~.x")  # EscapeChar=none: "~." after Enter reaches the server
            term.wait_for("~.x")
            assert term.lines()[2:4] == ["hi", "~.x"]
            term.resize(30, 100)  # ssh forwards SIGWINCH as a window-change
            term.wait_for("resized to 100x30")
            term.send("q")
            term.wait_for("bye")
            assert term.wait_exit() == 0
            assert term.lines()[0] == "hello from server"
            assert b"Warning" not in term.raw_output()  # LogLevel=ERROR

        # key given: "keyuser" is only let in with exactly that key
        with Terminal(ssh_argv(server.port, "keyuser", key=key_path)) as term:
            term.wait_for("user=keyuser auth=publickey term=xterm size=80x24")
            term.send("q")
            assert term.wait_exit() == 0

        # and without the key, keyuser is refused (so the key really was used)
        with Terminal(ssh_argv(server.port, "keyuser", extra=["-o", "BatchMode=yes"])) as term:
            term.wait_for("Permission denied")
            assert term.wait_exit() == 255
