"""Self-test for tests/support/terminal.py, the pty the OpenSSH tests run in.

Uses only tiny local programs (``python -c``, ``cat``) and, for the ssh
part, a throwaway asyncssh server started inside the test -- never the
sshchat server -- so that a failure in test_openssh.py is the server's, not
the harness's. The screen itself is pyte's and is not tested here.
Everything waits for the screen or the program; sleeps are only inside the
child programs, where the scenario itself needs time to pass.
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
# output, input, exit
# ---------------------------------------------------------------------------


def test_prints_text_and_reports_exit_status(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("print('hello world'); print('second line'); raise SystemExit(3)"))
    term.wait_for("hello world")
    assert term.wait_exit() == 3
    assert term.lines()[:3] == ["hello world", "second line", ""]
    assert len(term.lines()) == 24
    assert term.text().startswith("hello world\nsecond line\n")
    assert term.cursor() == (2, 0)


def test_cursor_and_cell_attributes(spawn: Callable[..., Terminal]) -> None:
    data = b"garbage\x1b[2J\x1b[5;10HX\x1b[1;1Hab\x1b[1mB\x1b[0m"
    term = spawn(py(f"import sys; sys.stdout.buffer.write(bytes.fromhex({data.hex()!r}))"))
    assert term.wait_exit() == 0
    assert term.lines()[4] == " " * 9 + "X"
    assert term.lines()[0] == "abB"
    assert "garbage" not in term.text()
    assert term.cursor() == (0, 3)
    assert term.char_at(0, 2).bold and not term.char_at(0, 1).bold


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
    term.type("ok")
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


def test_term_is_set_and_stale_lines_columns_are_not_passed_on(
    spawn: Callable[..., Terminal], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINES", "5")
    monkeypatch.setenv("COLUMNS", "7")
    term = spawn(
        py("import os; print(os.environ['TERM'], os.environ.get('LINES'), os.environ.get('COLUMNS')); "
           "print('%dx%d' % tuple(os.get_terminal_size(0)))"),
        term="xterm-256color", rows=10, cols=33,
    )
    assert term.wait_exit() == 0
    assert term.lines()[:2] == ["xterm-256color None None", "33x10"]  # the pty's size, from the start


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


# ---------------------------------------------------------------------------
# waiting and failure messages
# ---------------------------------------------------------------------------


def test_wait_for_timeout_dumps_screen_and_cursor(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("import sys; print('some text'); print('more'); sys.stdin.read()"))
    term.wait_for(re.compile(r"some\s+text"))
    with pytest.raises(AssertionError) as info:
        term.wait_for("absent text", timeout=0.2)
    message = str(info.value)
    assert "timed out after 0.2 s waiting for 'absent text'" in message
    assert "  0 |some text" in message and "  1 |more" in message
    assert "cursor (row, col) = (2, 0)" in message
    assert "running" in message

    def never(t: Terminal) -> bool:
        return False

    with pytest.raises(AssertionError, match="waiting for never"):
        term.wait_for(never, timeout=0.1)
    term.wait_for(lambda t: t.lines()[1] == "more")


def test_wait_for_fails_fast_when_output_ended(spawn: Callable[..., Terminal]) -> None:
    term = spawn(py("print('bye')"))
    started = time.monotonic()
    with pytest.raises(AssertionError, match="output ended"):
        term.wait_for("never printed", timeout=30)
    assert time.monotonic() - started < 5


def test_wait_exit_returns_none_while_running(spawn: Callable[..., Terminal]) -> None:
    term = spawn(["cat"])
    assert term.wait_exit(timeout=0.1) is None


# ---------------------------------------------------------------------------
# closing
# ---------------------------------------------------------------------------


def test_close_hangs_up_a_normal_child() -> None:
    with Terminal(["cat"]) as term:
        term.type("x")
        term.wait_for("x")
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
    pid = term._proc.pid
    started = time.monotonic()
    term.close(grace=0.3)
    assert time.monotonic() - started < 3
    assert term.wait_exit(timeout=0) == -signal.SIGKILL
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
    echoes keystrokes, and exits on "q".
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
            data = await process.stdin.read(1024)
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
            term.send("q")
            term.wait_for("bye")
            assert term.wait_exit() == 0
            assert term.lines()[0] == "hello from server"  # LogLevel=ERROR: no "Warning: Permanently added" first

        # key given: "keyuser" is only let in with exactly that key
        with Terminal(ssh_argv(server.port, "keyuser", key=key_path)) as term:
            term.wait_for("user=keyuser auth=publickey term=xterm size=80x24")
            term.send("q")
            assert term.wait_exit() == 0

        # and without the key, keyuser is refused (so the key really was used)
        with Terminal(ssh_argv(server.port, "keyuser", extra=["-o", "BatchMode=yes"])) as term:
            term.wait_for("Permission denied")
            assert term.wait_exit() == 255
