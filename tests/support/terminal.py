"""Run a real program (the OpenSSH client) in a pseudo-terminal and read back
the screen a person would see.

sshchat is reached with a plain ``ssh`` client, so the test closest to a
person runs that client in a real pty, types at it key by key, and looks at
the rendered screen rather than the byte stream: assertions on the screen
survive changes in how the server paints (cursor moves, redraws, colours).

The screen is pyte's, as it comes, like the other screen tests'
(test_editor.py, test_pty_screens.py, test_view.py). What sshchat and OpenSSH
send a terminal (text, wide characters, SGR colours, cursor up/forward,
erase, bracketed paste on and off) is all within what pyte emulates.

Output is read only while a test waits (:meth:`Terminal.wait_for`,
:meth:`Terminal.wait_exit`) or types, never behind its back: between two
waits the screen holds still, so consecutive assertions see one screen.

    with Terminal(ssh_argv(port, "alice"), rows=24, cols=80) as term:
        term.wait_for("alice joined")
        term.type("hello\\r")
        term.wait_for(lambda t: any(line.startswith("alice: hello") for line in t.lines()))
"""

from __future__ import annotations

import errno
import os
import re
import select
import signal
import time
from collections.abc import Callable

import pyte
from ptyprocess import PtyProcess  # type: ignore[import-untyped]  # the pty layer pexpect is built on
from pyte.screens import Char

__all__ = ["Terminal", "ssh_argv"]


class Terminal:
    """A program running in a pseudo-terminal, and the screen it has drawn.

    The program runs in its own session with the pty as its controlling
    terminal (so ``^C`` is SIGINT) and the window size set from the start,
    so its first paint is for that size. Positions are 0-based ``(row,
    col)``; after a character in the last column, ``col`` equals the width
    (pyte's "pending wrap").
    """

    def __init__(self, argv: list[str], *, term: str = "xterm", rows: int = 24, cols: int = 80) -> None:
        """Spawn ``argv`` in a ``rows`` x ``cols`` pty with ``TERM=term``.

        ``LINES`` and ``COLUMNS`` are dropped from the inherited environment:
        programs prefer them to the pty's size, and the test runner's values
        would mask what the test sets.
        """
        env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
        env["TERM"] = term
        if not any(env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
            env["LANG"] = "C.UTF-8"  # the screen decodes UTF-8
        self.argv = list(argv)
        self.screen = pyte.Screen(cols, rows)
        self._stream = pyte.ByteStream(self.screen)  # decodes incrementally: a character may span reads
        self._raw_tail = b""
        self._eof = False
        self._closed = False
        self._proc = PtyProcess.spawn(self.argv, env=env, dimensions=(rows, cols), preexec_fn=_default_signals)
        self._proc.delayafterclose = 0  # close() reaps the program itself first
        self._fd = self._proc.fd
        os.set_blocking(self._fd, False)  # a read never hangs; a stuck program fails send() instead
        self._exited = os.pidfd_open(self._proc.pid)  # readable once the program has exited (Linux)

    # -- output ------------------------------------------------------------

    def _read(self, timeout: float) -> None:
        """Feed the screen what the program wrote, waiting up to ``timeout``
        for the first bytes, then taking what is already there (up to 4 MB:
        a program that never stops writing cannot keep a test here)."""
        if self._eof or not select.select([self._fd], [], [], timeout)[0]:
            return
        for _ in range(64):
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: the program's side of the pty is closed
                    raise
                chunk = b""
            if not chunk:
                self._eof = True
                return
            self._raw_tail = (self._raw_tail + chunk)[-300:]
            self._stream.feed(chunk)

    # -- input -------------------------------------------------------------

    def send(self, data: str | bytes, timeout: float = 10.0) -> None:
        """Write what the keys send, as a terminal would (Enter is ``"\\r"``,
        Left ``"\\x1b[D"``, Ctrl-C ``"\\x03"``); ``str`` goes as UTF-8.

        Output is read meanwhile, so a program blocked on writing to us gets
        to read its input. AssertionError if it has not taken the input
        within ``timeout``.
        """
        if self._closed:
            raise RuntimeError("send() on a closed Terminal")
        view = memoryview(data.encode() if isinstance(data, str) else data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                view = view[os.write(self._fd, view):]
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"program did not read its input for {timeout} s\n{self.dump()}") from None
                self._read(0.01)

    def type(self, text: str) -> None:
        """``text`` one character per write, as a person types: a program that
        reads key by key gets one key per read, not one paste."""
        for ch in text:
            self.send(ch)

    # -- the screen ----------------------------------------------------------

    def lines(self) -> list[str]:
        """Every row of the screen, trailing spaces removed."""
        return [line.rstrip(" ") for line in self.screen.display]

    def text(self) -> str:
        """The whole screen, rows joined by ``"\\n"``."""
        return "\n".join(self.lines())

    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.y, self.screen.cursor.x

    def char_at(self, row: int, col: int) -> Char:
        """One cell: its character (``.data``) and attributes (``.fg``, ``.bold``, ...)."""
        return self.screen.buffer[row][col]

    # -- waiting -------------------------------------------------------------

    def wait_for(self, what: str | re.Pattern[str] | Callable[[Terminal], object], timeout: float = 10.0) -> None:
        """Wait until the screen shows ``what`` (text within a row, or a
        pattern), or until ``what(self)`` is true.

        Checked after every read of output. AssertionError with the screen
        after ``timeout``, or at once if the program's output has ended: the
        screen can no longer change.
        """
        if isinstance(what, str):
            def check() -> bool:
                return what in self.text()
        elif isinstance(what, re.Pattern):
            def check() -> bool:
                return what.search(self.text()) is not None
        else:
            def check() -> bool:
                return bool(what(self))
        described = getattr(what, "__name__", None) or repr(getattr(what, "pattern", what))
        deadline = time.monotonic() + timeout
        self._read(0)
        while not check():
            if self._eof:
                raise AssertionError(f"output ended before the screen showed {described}\n{self.dump()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for {described}\n{self.dump()}")
            self._read(min(remaining, 0.5))

    def wait_exit(self, timeout: float = 10.0) -> int | None:
        """Wait for the program to exit; return its exit status (``-N`` if
        killed by signal N), or None if it still runs after ``timeout``.

        Output is read meanwhile and, after the exit, up to its end (for at
        most 2 s), so the screen shows everything the program wrote.
        """
        deadline = time.monotonic() + timeout
        while self._proc.isalive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select([self._exited] if self._eof else [self._fd, self._exited], [], [], remaining)
            self._read(0)
        drain_until = min(deadline, time.monotonic() + 2.0)
        while not self._eof and (remaining := drain_until - time.monotonic()) > 0:
            self._read(remaining)
        return self._status()

    def _status(self) -> int | None:
        if self._proc.exitstatus is not None:
            return int(self._proc.exitstatus)
        if self._proc.signalstatus is not None:
            return -int(self._proc.signalstatus)
        return None

    # -- the end -------------------------------------------------------------

    def close(self, grace: float = 1.0) -> None:
        """Stop the program if it still runs and free the pty.

        SIGHUP first (what closing a terminal window sends), SIGKILL if it is
        still there after ``grace`` seconds. Signals go to the program's own
        pid only, which is safe because it has not been reaped yet.
        """
        if self._closed:
            return
        try:
            if self._proc.isalive():
                os.kill(self._proc.pid, signal.SIGHUP)
                if not select.select([self._exited], [], [], grace)[0]:
                    os.kill(self._proc.pid, signal.SIGKILL)
                    select.select([self._exited], [], [], 10)
                self._proc.isalive()  # reaps it
        finally:
            self._closed = True
            os.close(self._exited)
            self._proc.close(force=True)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- diagnostics ---------------------------------------------------------

    def dump(self) -> str:
        """The screen framed and numbered, with cursor, size, program state and
        the last raw bytes: for failure messages."""
        rows, cols = self.screen.lines, self.screen.columns
        cursor = self.cursor()
        state = "running" if not self._closed and self._proc.isalive() else f"exited with {self._status()}"
        out = [f"screen {rows}x{cols}, cursor (row, col) = {cursor}, {self.argv[0]} {state}"
               + (", output ended" if self._eof else ""), "    +" + "-" * cols + "+"]
        for y in range(rows):
            line = "".join(self.screen.buffer[y][x].data for x in range(cols))  # never raises, unlike .display
            out.append(f"{y:3d} |{line}|" + ("<" if y == cursor[0] else ""))
        out.append("    +" + "-" * cols + "+")
        out.append(f"last raw output: {self._raw_tail!r}")
        return "\n".join(out)


def _default_signals() -> None:
    """In the child, before exec: signals as a new terminal window's shell
    has them. Ignored signals are inherited, and a test runner started in
    the background by a non-interactive shell ignores SIGINT and SIGQUIT
    (Python itself ignores SIGPIPE): ^C would then not stop the program."""
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def ssh_argv(
    port: int,
    user: str,
    *,
    key: str | None = None,
    extra: list[str] | None = None,
    host: str = "127.0.0.1",
    command: list[str] | None = None,
) -> list[str]:
    """Command line for the OpenSSH client, the same on every machine.

    * ``-F /dev/null``: no ~/.ssh/config or /etc/ssh/ssh_config, so nobody's
      ControlMaster, SendEnv or GSSAPI settings change the test.
    * No host key checks, nothing written to known_hosts, ``LogLevel=ERROR``
      so no "Permanently added ..." line lands on the screen.
    * ``IdentityAgent=none``: a developer's agent keys are never offered.
    * ``key``: exactly that key (``IdentitiesOnly=yes``); without one,
      ``PubkeyAuthentication=no``: the server sees a keyless login.
    * ``EscapeChar=none``: ``~`` at the start of a line reaches the server.
    * ``ConnectTimeout=10``: a dead server fails the test, not hangs it.

    ``extra`` goes first: OpenSSH keeps the first value of an ``-o`` option.
    """
    extra = list(extra or [])
    argv = ["ssh", *extra]
    if "-F" not in extra:
        argv += ["-F", "/dev/null"]
    argv += [
        "-p", str(port),
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", "IdentityAgent=none",
        "-o", "EscapeChar=none",
        "-o", "ConnectTimeout=10",
    ]
    if key is not None:
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "PubkeyAuthentication=yes"]
    else:
        argv += ["-o", "PubkeyAuthentication=no"]
    argv.append(f"{user}@{host}")
    if command:
        argv += list(command)
    return argv
