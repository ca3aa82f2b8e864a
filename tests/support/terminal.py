"""Drive a real program (usually ``/usr/bin/ssh``) in a pseudo-terminal and
read back what a person would see.

Why this exists: sshchat is reached with a plain ``ssh`` client, so the only
honest end-to-end test is to run that client in a real pty, type at it like a
person, and look at the *rendered screen* rather than at the byte stream.
Asserting on raw bytes breaks whenever the server changes how it paints
(cursor moves, partial redraws, colours); asserting on the screen does not.

The screen is a `pyte` emulator fed through an incremental UTF-8 decoder. Out
of the box pyte 0.8.2 differs from a real xterm in ways that bite a chat UI
(multi-byte text, emoji, scroll regions, alternate screen, save/restore
cursor), so :class:`_Screen` and :class:`_SequenceFilter` below correct the
ones that change what is visible. Each correction says why at its definition.

Typical use::

    with Terminal(ssh_argv(port, "alice"), rows=24, cols=80) as term:
        term.wait_for("alice joined")
        term.type("hello\\r")
        term.wait_for(lambda t: t.row_of("<alice> hello") is not None)
        term.resize(30, 100)          # ssh sends the server a window-change
        term.wait_quiet()             # let the redraw finish
        assert term.size() == (30, 100)

Everything here is thread-safe with respect to the background reader: the
screen is only touched while holding one lock.
"""

from __future__ import annotations

import codecs
import copy
import errno
import fcntl
import functools
import inspect
import os
import re
import select
import signal
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pyte
from pyte import modes as mo
from pyte.screens import Char, Margins
from ptyprocess import PtyProcess  # the pty layer pexpect.spawn is built on
from wcwidth import wcswidth
from wcwidth import wcwidth as _wcwidth

__all__ = ["Terminal", "ssh_argv"]

# Same width function pyte uses (wcwidth), cached the same way, so our fixes
# agree with pyte about how many cells a character takes.
_cell_width = functools.lru_cache(maxsize=4096)(_wcwidth)

# How long a single select() in the reader waits before re-checking whether it
# should stop. Small enough that close() is prompt, large enough to be idle.
_POLL = 0.05

# Private modes that switch to the alternate screen (xterm): 47 and 1047 just
# switch buffers, 1049 also saves/restores the cursor.
_ALT_SCREEN_MODES = (47, 1047, 1049)


# --------------------------------------------------------------------------
# Escape-sequence pre-filter
# --------------------------------------------------------------------------


class _SequenceFilter:
    """Incremental text filter that sits between the UTF-8 decoder and pyte.

    Why: pyte's parser does not understand several sequence shapes that real
    programs emit, and instead of ignoring them it *draws their tail as text*
    or misreads them as something else:

    * ``CSI > 4 ; 1 m`` (xterm modifyOtherKeys) is read as SGR 4 (underline);
      ``CSI = ...``/``CSI < ...`` leave their final byte on screen.
    * Sequences with intermediate bytes -- ``CSI 2 SP q`` (cursor shape),
      ``CSI ! p`` (soft reset), ``CSI ? 2004 $ p`` -- leave text behind.
    * Colon sub-parameters (``CSI 38:2::255:0:0 m``) draw ``2::255:0:0m``.
    * DCS / APC / PM / SOS strings (``ESC P ... ESC \\``) are drawn as text.
    * An OSC string interrupted by ESC is not terminated (xterm aborts it).

    This filter finds the boundaries of those sequences and drops them (they
    do not change what is on screen in xterm either, except colour, which is
    translated for colon-SGR). Everything else is passed through untouched.
    The filter is stateful, so sequences split across reads are fine.
    """

    _TEXT, _ESC, _CSI, _OSC, _OSC_ESC, _STR, _STR_ESC = range(7)
    _MAX_CSI = 256  # a longer "CSI" is garbage; drop it rather than buffer

    def __init__(self) -> None:
        self._state = self._TEXT
        self._csi: list[str] = []

    def feed(self, text: str) -> str:
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            state = self._state
            if state == self._TEXT:
                j = text.find("\x1b", i)
                if j < 0:
                    out.append(text[i:])
                    break
                out.append(text[i:j])
                i = j + 1
                self._state = self._ESC
                continue
            ch = text[i]
            i += 1
            if state == self._ESC:
                if ch == "[":
                    self._csi = []
                    self._state = self._CSI
                elif ch == "]":
                    out.append("\x1b]")
                    self._state = self._OSC
                elif ch in "P_^X":  # DCS, APC, PM, SOS: dropped up to ST
                    self._state = self._STR
                elif ch == "\x1b":
                    pass  # ESC ESC: the first one is abandoned
                else:
                    out.append("\x1b" + ch)
                    self._state = self._TEXT
            elif state == self._CSI:
                code = ord(ch)
                if 0x40 <= code <= 0x7E:
                    out.append(self._finish_csi("".join(self._csi), ch))
                    self._state = self._TEXT
                elif 0x20 <= code <= 0x3F:
                    self._csi.append(ch)
                    if len(self._csi) > self._MAX_CSI:
                        self._state = self._TEXT
                elif ch == "\x1b":
                    self._state = self._ESC  # aborts the CSI
                elif ch in "\x18\x1a":
                    self._state = self._TEXT  # CAN / SUB abort the CSI
                elif code < 0x20:
                    out.append(ch)  # C0 controls inside CSI act immediately
                elif code != 0x7F:
                    self._state = self._TEXT  # not a CSI byte: malformed
            elif state == self._OSC:
                if ch == "\x07":
                    out.append(ch)
                    self._state = self._TEXT
                elif ch == "\x1b":
                    self._state = self._OSC_ESC
                else:
                    out.append(ch)
            elif state == self._OSC_ESC:
                if ch == "\\":
                    out.append("\x1b\\")
                    self._state = self._TEXT
                else:
                    # xterm: ESC aborts the OSC and starts a new sequence.
                    # Terminate pyte's OSC, then re-read this character.
                    out.append("\x07")
                    self._state = self._ESC
                    i -= 1
            elif state == self._STR:
                if ch == "\x1b":
                    self._state = self._STR_ESC
            else:  # _STR_ESC
                if ch == "\\":
                    self._state = self._TEXT
                else:
                    self._state = self._ESC
                    i -= 1
        return "".join(out)

    @staticmethod
    def _finish_csi(body: str, final: str) -> str:
        prefix = body[:1] if body[:1] in ("<", "=", ">", "?") else ""
        params = body[len(prefix):]
        if prefix in ("<", "=", ">"):
            return ""  # pyte would misread these (see class docstring)
        if any(0x20 <= ord(c) <= 0x2F or c in "<=>?" for c in params):
            return ""  # intermediates / malformed: nothing visible in xterm
        if ":" in params:
            if final == "m" and not prefix:
                params = _sgr_without_colons(params)
                if not params:
                    return ""  # would otherwise become CSI m == reset all
            else:
                params = ";".join(p.split(":")[0] for p in params.split(";"))
        return "\x1b[" + prefix + params + final


def _sgr_without_colons(params: str) -> str:
    """Rewrite ITU-style colon SGR to the semicolon form pyte understands."""
    out: list[str] = []
    for group in params.split(";"):
        if ":" not in group:
            out.append(group)
            continue
        parts = group.split(":")
        head = parts[0]
        if head in ("38", "48"):
            if len(parts) >= 3 and parts[1] == "5":
                out.append(f"{head};5;{parts[2] or 0}")
            elif len(parts) >= 5 and parts[1] == "2":
                r, g, b = (p or "0" for p in parts[-3:])
                out.append(f"{head};2;{r};{g};{b}")
        elif head != "58":  # 58 = underline colour: pyte has no slot for it
            out.append(head)  # e.g. 4:3 (curly underline) -> 4 (underline)
    return ";".join(out)


# --------------------------------------------------------------------------
# Screen
# --------------------------------------------------------------------------


def _tolerant(method: Callable[..., Any], fallback: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a pyte CSI handler so surplus parameters are ignored, as in xterm.

    Why: pyte dispatches ``CSI 1;5 C`` as ``cursor_forward(1, 5)``, which
    raises TypeError and aborts the rest of that read. Private variants of
    sequences a handler does not know (``CSI ? 6 n``) are ignored.
    """
    sig = inspect.signature(method)
    positional = [
        p for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "private"
    ]
    kinds = {p.kind for p in sig.parameters.values()}
    max_args = None if inspect.Parameter.VAR_POSITIONAL in kinds else len(positional)
    takes_private = "private" in sig.parameters or inspect.Parameter.VAR_KEYWORD in kinds

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("private") and not takes_private:
            return fallback(*args, **kwargs)
        if not takes_private:
            kwargs.pop("private", None)
        if max_args is not None:
            args = args[:max_args]
        return method(*args, **kwargs)

    return call


class _Stream(pyte.Stream):
    """pyte.Stream plus the xterm CSIs pyte 0.8.2 silently ignores.

    SU/SD (``CSI n S`` / ``CSI n T``) scroll the scroll region -- a natural
    way for a chat UI to add a message above a fixed input line -- and REP
    (``CSI n b``) is used by ncurses for runs of one character (it is in the
    xterm terminfo entry).
    """

    csi = {**pyte.Stream.csi, "S": "scroll_up", "T": "scroll_down", "b": "repeat_last"}


class _Screen(pyte.Screen):
    """A pyte.Screen corrected where pyte 0.8.2 and xterm visibly disagree.

    Each override documents the pyte behaviour it replaces. The result is
    still pyte (same buffer, Char, cursor and modes); only behaviour changes.
    """

    def __init__(self, columns: int, lines: int, reply: Callable[[str], None] | None = None) -> None:
        self._reply = reply
        self._main_buffer: Any = None  # the normal screen while the alt one shows
        self._alt_saved_cursor: Any = None
        self._last_char = ""
        super().__init__(columns, lines)
        # pyte's Stream binds handlers with getattr() when it is attached, so
        # instance attributes set here are what the parser will call.
        for name in set(_Stream.csi.values()):
            setattr(self, name, _tolerant(getattr(self, name), self.debug))

    # -- answers to queries -------------------------------------------------

    def write_process_input(self, data: str) -> None:
        """Send query answers (DSR, DA) to the program, as a real terminal does.

        pyte's default drops them, which makes a program that asks for the
        cursor position (a common way to measure the screen) hang.
        """
        if self._reply is not None:
            self._reply(data)

    def report_device_status(self, mode: int) -> None:
        # pyte reports column ``columns + 1`` in the pending-wrap state.
        if mode == 6 and self.cursor.x >= self.columns:
            x = self.cursor.x
            self.cursor.x = self.columns - 1
            try:
                super().report_device_status(mode)
            finally:
                self.cursor.x = x
        else:
            super().report_device_status(mode)

    # -- drawing ------------------------------------------------------------

    def draw(self, data: str) -> None:
        """Draw text, fixing three pyte behaviours.

        1. A zero-width character that is not a combining mark (U+FE0F emoji
           presentation selector, U+200D ZWJ, U+200B ZWSP) makes pyte *drop
           the rest of the text run*: ``"I ❤️ you"`` shows as ``"I ❤"``.
           Here they attach to the previous cell like combining marks.
        2. A wide character at the last column is drawn half off-screen by
           pyte; xterm wraps it to the next line first.
        3. Overwriting half of a wide character leaves pyte's empty "stub"
           cell orphaned: ``Screen.display`` then raises IndexError (left
           half overwritten) or hides the new character (right half
           overwritten). xterm blanks the other half instead, as done here.
        """
        start = 0
        for i, ch in enumerate(data):
            if " " <= ch <= "~":
                continue  # printable ASCII: one cell, fast path
            width = _cell_width(ch)
            if width == 1:
                continue
            self._draw_run(data[start:i])
            start = i + 1
            if width == 2:
                if mo.DECAWM in self.mode and self.cursor.x == self.columns - 1:
                    self.cursor.x = self.columns  # wrap before, like xterm
                self._draw_run(ch)
            elif width == 0:
                self._attach_zero_width(ch)
            # width < 0: unprintable; xterm shows nothing, so neither do we
        self._draw_run(data[start:])

    def _draw_run(self, run: str) -> None:
        if not run:
            return
        line = self.buffer[self.cursor.y]
        x = self.cursor.x
        if 0 < x < self.columns and line[x].data == "" and _cell_width(line[x - 1].data[:1] or " ") == 2:
            line[x - 1] = line[x - 1]._replace(data=" ")  # right half is about to go
        super().draw(run)
        line = self.buffer[self.cursor.y]
        x = self.cursor.x
        if x < self.columns and x in line and line[x].data == "":
            line[x] = line[x]._replace(data=" ")  # its wide char was overwritten
        self._last_char = run[-1]

    def _attach_zero_width(self, ch: str) -> None:
        y, x = self.cursor.y, self.cursor.x
        if x == 0:
            if y == 0:
                return
            y, x = y - 1, self.columns
        line = self.buffer[y]
        x -= 1
        if x > 0 and line[x].data == "":
            x -= 1  # stub: the character is the wide one to its left
        cell = line[x]
        line[x] = cell._replace(data=unicodedata.normalize("NFC", cell.data + ch))
        self.dirty.add(y)

    def repeat_last(self, count: int | None = None) -> None:
        """REP: repeat the last drawn graphic character ``count`` times."""
        if self._last_char:
            self.draw(self._last_char * min(count or 1, self.lines * self.columns))

    # -- scrolling and lines ------------------------------------------------

    def delete_lines(self, count: int | None = None) -> None:
        """DL, fixed.

        pyte only moves line ``y+count`` up into ``y`` if ``y+count`` was ever
        *materialised* in its buffer dict; otherwise line ``y`` is left as it
        was. So the result of ``CSI M`` depended on whether someone had read
        ``screen.display`` before (which materialises every line).
        """
        count = count or 1
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if top <= self.cursor.y <= bottom:
            self.dirty.update(range(self.cursor.y, self.lines))
            for y in range(self.cursor.y, bottom + 1):
                if y + count <= bottom and y + count in self.buffer:
                    self.buffer[y] = self.buffer.pop(y + count)
                else:
                    self.buffer.pop(y, None)
            self.carriage_return()

    def scroll_up(self, count: int | None = None) -> None:
        """SU: scroll the scroll region up; the cursor does not move."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        y, x = self.cursor.y, self.cursor.x
        self.cursor.y = bottom
        for _ in range(min(count or 1, bottom - top + 1)):
            self.index()
        self.cursor.y, self.cursor.x = y, x

    def scroll_down(self, count: int | None = None) -> None:
        """SD: scroll the scroll region down; the cursor does not move."""
        top, bottom = self.margins or Margins(0, self.lines - 1)
        y, x = self.cursor.y, self.cursor.x
        self.cursor.y = top
        for _ in range(min(count or 1, bottom - top + 1)):
            self.reverse_index()
        self.cursor.y, self.cursor.x = y, x

    # -- save / restore cursor ----------------------------------------------

    def save_cursor(self) -> None:
        """DECSC. xterm has one save slot; pyte has a stack (see below)."""
        super().save_cursor()
        del self.savepoints[:-1]

    def restore_cursor(self) -> None:
        """DECRC that can be repeated.

        pyte *pops* the saved cursor, so a UI that saves once and restores
        after every message gets its cursor sent home on the second restore.
        In xterm the saved position stays until the next save.
        """
        if self.savepoints:
            saved = self.savepoints[-1]
            self.savepoints.append(saved._replace(cursor=copy.copy(saved.cursor)))
        super().restore_cursor()

    # -- alternate screen ---------------------------------------------------

    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        """Adds the alternate screen (pyte stores ``?1049h`` but keeps drawing
        on the normal screen, so after ``?1049l`` the full-screen UI is still
        there instead of what was on the terminal before).

        Also ignores DECCOLM (``?3h``, 132 columns): pyte would resize only
        its screen, so screen and pty would disagree; xterm ignores it too
        unless explicitly allowed.
        """
        if kwargs.get("private"):
            modes = tuple(m for m in modes if m != 3)
        super().set_mode(*modes, **kwargs)
        if kwargs.get("private"):
            for mode in modes:
                if mode in _ALT_SCREEN_MODES:
                    self._enter_alt_screen(save_cursor=mode == 1049)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private"):
            modes = tuple(m for m in modes if m != 3)
        super().reset_mode(*modes, **kwargs)
        if kwargs.get("private"):
            for mode in modes:
                if mode in _ALT_SCREEN_MODES:
                    self._leave_alt_screen(restore_cursor=mode == 1049)

    def _enter_alt_screen(self, save_cursor: bool) -> None:
        if self._main_buffer is not None:
            return
        if save_cursor:
            self._alt_saved_cursor = copy.copy(self.cursor)
        self._main_buffer = self.buffer
        self.buffer = defaultdict(self.buffer.default_factory)
        self.dirty.update(range(self.lines))

    def _leave_alt_screen(self, restore_cursor: bool) -> None:
        if self._main_buffer is None:
            return
        self.buffer = self._main_buffer
        self._main_buffer = None
        if restore_cursor and self._alt_saved_cursor is not None:
            self.cursor = self._alt_saved_cursor
            self._alt_saved_cursor = None
            self.ensure_hbounds()
            self.ensure_vbounds()
        self.dirty.update(range(self.lines))

    def reset(self) -> None:
        super().reset()  # RIS also leaves the alternate screen
        self._main_buffer = None
        self._alt_saved_cursor = None

    # -- resize -------------------------------------------------------------

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize like xterm/VTE rather than like pyte.

        pyte, when it loses rows, deletes them from the *top* regardless of
        the cursor (and, through the DL bug above, sometimes not at all) and
        leaves the cursor row unchanged -- possibly off-screen. Here rows are
        dropped from the top only as far as needed to keep the cursor row on
        screen, the rest from the bottom; the cursor is then kept in bounds
        and tab stops are extended to new columns.
        """
        lines = lines or self.lines
        columns = columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        old_columns = self.columns
        drop_top = max(0, self.cursor.y - (lines - 1))
        buffers = [self.buffer] + ([self._main_buffer] if self._main_buffer is not None else [])
        for buffer in buffers:
            kept = {y - drop_top: line for y, line in buffer.items() if 0 <= y - drop_top < lines}
            buffer.clear()
            buffer.update(kept)
            if columns < old_columns:
                for line in buffer.values():
                    for x in range(columns, old_columns):
                        line.pop(x, None)
                    last = line.get(columns - 1)
                    if last is not None and _cell_width(last.data[:1] or " ") == 2:
                        line[columns - 1] = last._replace(data=" ")  # lost its right half
        self.cursor.y -= drop_top
        self.lines, self.columns = lines, columns
        self.set_margins()
        if columns < old_columns and self.cursor.x >= columns:
            self.cursor.x = columns - 1
        self.cursor.y = min(max(self.cursor.y, 0), lines - 1)
        if columns > old_columns:
            self.tabstops.update(range(8, columns, 8))
        self.dirty.update(range(lines))


def _render_row(row: Any, columns: int) -> str:
    """One screen row as text: a wide character stands for its two cells."""
    out: list[str] = []
    skip = False
    for x in range(columns):
        if skip:
            skip = False
            continue
        data = row[x].data
        if not data:
            out.append(" ")  # orphaned right half of a wide character
            continue
        out.append(data)
        skip = _cell_width(data[0]) == 2
    return "".join(out)


# --------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------


class Terminal:
    """A program running in a pseudo-terminal, plus the screen a person sees.

    The program is started in a new session with the pty as its controlling
    terminal (so ``^C`` is SIGINT, ``/dev/tty`` works, ssh asks for passwords
    on it) and with the window size already set, so its very first paint is
    for the right size. A daemon thread reads its output as it arrives and
    feeds the pyte screen; tests never have to "pump". All screen accessors
    take the same lock, so every call sees a consistent screen.

    Positions are 0-based ``(row, col)``. ``cursor()`` is pyte's cursor
    verbatim: after a character is written in the last column, ``col`` equals
    the number of columns (the "pending wrap" state xterm keeps as a flag).
    """

    def __init__(
        self,
        argv: list[str],
        *,
        term: str = "xterm",
        rows: int = 24,
        cols: int = 80,
        env: dict[str, str] | None = None,
        answer_queries: bool = True,
    ) -> None:
        """Spawn ``argv`` in a pty of ``rows`` x ``cols`` with ``TERM=term``.

        ``env`` adds to (or overrides) the current environment. ``LINES`` and
        ``COLUMNS`` are removed from the inherited environment because
        programs prefer them over the pty size, and a stale value from the
        test runner's terminal would mask resize bugs. ``answer_queries``
        makes the emulated terminal answer cursor-position/device-attribute
        queries like a real one.
        """
        if rows < 1 or cols < 1:
            raise ValueError(f"terminal size must be positive, got {rows}x{cols}")
        child_env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
        child_env["TERM"] = term
        if not any(child_env.get(k) for k in ("LC_ALL", "LC_CTYPE", "LANG")):
            child_env["LANG"] = "C.UTF-8"  # we decode UTF-8, so ask for it
        child_env.update(env or {})

        self.argv = list(argv)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._screen = _Screen(cols, rows, reply=self._reply if answer_queries else None)
        self._stream = _Stream(self._screen)
        # Our own incremental decoder (rather than pyte.ByteStream) because the
        # decoded text goes through _SequenceFilter first. Incremental means a
        # multi-byte character split across two reads is decoded correctly.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._filter = _SequenceFilter()
        self._raw = bytearray()
        self._errors: list[str] = []
        self._eof = False
        self._closed = False
        self._last_output = time.monotonic()
        self._stop = threading.Event()

        self._proc = PtyProcess.spawn(self.argv, env=child_env, dimensions=(rows, cols))
        self._proc.delayafterclose = 0  # we reap the child ourselves first
        self._fd = self._proc.fd
        # Non-blocking: a read can never hang the reader, and send() can time
        # out instead of blocking forever when the program stops reading.
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)

        self._thread = threading.Thread(
            target=self._pump, name=f"Terminal[{self._proc.pid}] {self.argv[0]}", daemon=True
        )
        self._thread.start()

    # -- background reader -------------------------------------------------

    def _pump(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._fd], [], [], _POLL)
            except (OSError, ValueError):
                break
            if not ready:
                continue
            with self._cond:
                self._read_once_locked()
                self._cond.notify_all()
            if self._eof:
                break
        with self._cond:
            self._cond.notify_all()

    def _read_once_locked(self) -> bool:
        """Read one chunk (if any) and feed it. Caller holds the lock.

        Reading happens under the lock so that resize() can be sure no bytes
        are "in flight" between the pty and the screen while it resizes.
        """
        if self._eof:
            return False
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO is how Linux reports "slave closed"
                self._errors.append(f"reading the pty failed: {exc!r}")
            chunk = b""
        if not chunk:
            self._eof = True
            self._feed(self._decoder.decode(b"", final=True))
            return False
        self._raw += chunk
        self._last_output = time.monotonic()
        self._feed(self._decoder.decode(chunk))
        return True

    def _feed(self, text: str) -> None:
        if not text:
            return
        try:
            self._stream.feed(self._filter.feed(text))
        except Exception as exc:  # keep reading; report it in every dump
            self._errors.append(f"pyte failed on {text[:200]!r}: {exc!r}")

    def _reply(self, data: str) -> None:
        # Called by pyte on the reader thread. Best effort, never blocks: a
        # program that stopped reading its input will not get the answer.
        try:
            os.write(self._fd, data.encode("utf-8"))
        except OSError:
            pass

    # -- input -------------------------------------------------------------

    def send(self, data: str | bytes, timeout: float = 10.0) -> None:
        """Write raw bytes to the program, exactly as a terminal would.

        Keys are what xterm sends: Enter is ``"\\r"``, Backspace ``"\\x7f"``,
        Left ``"\\x1b[D"``, Ctrl-C ``"\\x03"``. ``str`` is encoded as UTF-8.
        Raises AssertionError (with the screen) if the program does not read
        its input for ``timeout`` seconds.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        if self._closed:
            raise RuntimeError("send() on a closed Terminal")
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        with self._write_lock:
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise AssertionError(
                            f"program did not read its input for {timeout}s "
                            f"({len(view)} bytes unsent)\n{self.dump()}"
                        ) from None
                    select.select([], [self._fd], [], _POLL)
                    continue
                view = view[written:]

    def type(self, text: str, delay: float = 0.0) -> None:
        """Send ``text`` one character per write, like a person typing.

        Servers that read keystroke by keystroke (line editors) get one key
        per read instead of one big paste. ``delay`` sleeps between keys.
        """
        for ch in text:
            self.send(ch)
            if delay:
                time.sleep(delay)

    def resize(self, rows: int, cols: int) -> None:
        """Change the window size: the pty (child gets SIGWINCH) and the screen.

        Under the lock: first drain output already written for the old size
        into the old-size screen, then resize the screen, then the pty -- so
        the pyte screen already has the new size when the program's redraw
        for it arrives. This is the order a real terminal window uses.
        """
        if rows < 1 or cols < 1:
            raise ValueError(f"terminal size must be positive, got {rows}x{cols}")
        with self._cond:
            if not self._closed:
                for _ in range(64):  # bounded: a program may never stop writing
                    if not self._read_once_locked():
                        break
            self._screen.resize(rows, cols)
            if not self._closed:
                self._proc.setwinsize(rows, cols)
            self._cond.notify_all()

    # -- screen ------------------------------------------------------------

    def lines(self) -> list[str]:
        """Every screen row, trailing spaces stripped (only U+0020, so e.g.
        a trailing ideographic space U+3000 is kept).

        Rendered here rather than with ``pyte.Screen.display``, which raises
        IndexError when a row holds the right half of a wide character
        without its left half (e.g. after ``CSI P`` deletes the left half).
        Such an orphaned half shows as a blank, as in xterm.
        """
        with self._lock:
            screen = self._screen
            return [
                _render_row(screen.buffer[y], screen.columns).rstrip(" ") for y in range(screen.lines)
            ]

    def text(self) -> str:
        """The whole screen as one string, rows joined with ``"\\n"``."""
        return "\n".join(self.lines())

    def cursor(self) -> tuple[int, int]:
        """``(row, col)`` of the cursor, 0-based (col may equal the width,
        see the class docstring)."""
        with self._lock:
            return self._screen.cursor.y, self._screen.cursor.x

    def size(self) -> tuple[int, int]:
        """``(rows, cols)`` of the screen, which is also the pty's size."""
        with self._lock:
            return self._screen.lines, self._screen.columns

    def row_of(self, needle: str) -> int | None:
        """Index of the first row containing ``needle``, or None."""
        for index, line in enumerate(self.lines()):
            if needle in line:
                return index
        return None

    def char_at(self, row: int, col: int) -> Char:
        """The pyte Char (data, fg, bg, bold, reverse, ...) in one cell, for
        asserting on colours and attributes."""
        with self._lock:
            return self._screen.buffer[row][col]

    def cursor_visible(self) -> bool:
        """False while the program has hidden the cursor (``CSI ? 25 l``)."""
        with self._lock:
            return mo.DECTCEM in self._screen.mode

    def raw_output(self) -> bytes:
        """Every byte the program wrote so far, unfiltered (for asserting
        that no escape codes leaked, that a bell was rung, ...)."""
        with self._lock:
            return bytes(self._raw)

    # -- waiting -----------------------------------------------------------

    def wait_for(
        self,
        predicate_or_text: str | re.Pattern[str] | Callable[[Terminal], object],
        timeout: float = 10.0,
    ) -> None:
        """Wait until the screen shows something, or until a predicate holds.

        * ``str``: the text appears in :meth:`text` (within one row, unless
          the needle itself contains ``"\\n"``).
        * compiled regex: ``pattern.search(text())`` matches.
        * callable: ``predicate(self)`` is truthy. It is evaluated with the
          screen lock held, so it sees one consistent screen.

        It is re-checked whenever output arrives (and every 50 ms). On
        timeout, raises AssertionError with the full screen and the cursor.
        For text/regex it fails at once if the program's output has ended
        (the screen can no longer change), instead of waiting out the
        timeout.
        """
        if isinstance(predicate_or_text, str):
            needle = predicate_or_text
            what = f"text {needle!r}"
            check: Callable[[], bool] = lambda: needle in self.text()
            final_at_eof = True
        elif isinstance(predicate_or_text, re.Pattern):
            pattern = predicate_or_text
            what = f"pattern {pattern.pattern!r}"
            check = lambda: pattern.search(self.text()) is not None
            final_at_eof = True
        elif callable(predicate_or_text):
            predicate = predicate_or_text
            what = f"predicate {getattr(predicate, '__name__', repr(predicate))}"
            check = lambda: bool(predicate(self))
            final_at_eof = False
        else:
            raise TypeError(f"wait_for() wants str, re.Pattern or callable, got {predicate_or_text!r}")

        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if check():
                    return
                if final_at_eof and self._eof:
                    raise AssertionError(
                        f"program output ended before the screen showed {what}\n{self.dump()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.dump()}")
                self._cond.wait(min(remaining, _POLL))

    def wait_quiet(self, quiet: float = 0.2, timeout: float = 5.0) -> None:
        """Wait until no output has arrived for ``quiet`` seconds.

        Useful before asserting that something is *not* on screen, or after a
        resize when the redraw has no distinctive text. Returns at once if the
        output has ended. Raises AssertionError (with the screen) if the
        program is still writing after ``timeout``.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._eof:
                    return
                now = time.monotonic()
                idle = now - self._last_output
                if idle >= quiet:
                    return
                if now >= deadline:
                    raise AssertionError(
                        f"output did not stop for {quiet}s within {timeout}s\n{self.dump()}"
                    )
                self._cond.wait(min(quiet - idle, deadline - now))

    # -- process -----------------------------------------------------------

    @property
    def pid(self) -> int:
        """Process id of the program (only ever signalled by this object)."""
        return self._proc.pid

    def is_alive(self) -> bool:
        """True while the program has not exited (reaps it if it has)."""
        return self._proc.isalive()

    def wait_exit(self, timeout: float = 10.0) -> int | None:
        """Wait for the program to exit; return its status, None on timeout.

        The status is the exit code, or ``-N`` if it was killed by signal N
        (the subprocess convention). Before returning it also waits (briefly)
        until the rest of the program's output has been read, so the screen
        shows everything it wrote.
        """
        deadline = time.monotonic() + timeout
        while self._proc.isalive():
            if time.monotonic() >= deadline:
                return None
            with self._cond:  # wakes on output/EOF, else re-polls waitpid
                self._cond.wait(0.01)
        drain_until = min(deadline, time.monotonic() + 2.0)
        with self._cond:
            while not self._eof and not self._stop.is_set():
                remaining = drain_until - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, _POLL))
        return self._exit_status()

    def _exit_status(self) -> int | None:
        if self._proc.exitstatus is not None:
            return self._proc.exitstatus
        if self._proc.signalstatus is not None:
            return -self._proc.signalstatus
        return None

    def close(self, grace: float = 1.0) -> None:
        """Stop the program if it still runs, stop the reader, free the pty.

        SIGHUP first (what closing a terminal window sends), plus SIGCONT in
        case it was stopped with ^Z; SIGKILL after ``grace`` seconds if it
        ignores that. Signals go to the program's own pid only, which is
        safe because it has not been reaped yet. Idempotent.
        """
        if self._closed:
            return
        try:
            if self._proc.isalive():
                for sig in (signal.SIGHUP, signal.SIGCONT):
                    os.kill(self._proc.pid, sig)
                if not self._wait_dead(grace):
                    os.kill(self._proc.pid, signal.SIGKILL)
                    self._wait_dead(10.0)
        finally:
            self._closed = True
            self._stop.set()
            self._thread.join(timeout=5.0)
            self._proc.close(force=True)  # closes the master fd

    def _wait_dead(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._proc.isalive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- diagnostics -------------------------------------------------------

    def dump(self) -> str:
        """The screen as a framed, row-numbered block for failure messages,
        with cursor, size, process state, the tail of the raw output and any
        emulator errors."""
        with self._lock:
            rows, cols = self.size()
            cursor = self.cursor()
            lines = self.lines()
            raw_tail = bytes(self._raw[-300:])
            errors = list(self._errors)
            eof = self._eof
        try:
            alive = self._proc.isalive() if not self._closed else False
        except Exception:  # diagnostics must not raise
            alive = False
        state = "running" if alive else f"exited with {self._exit_status()}"
        if eof:
            state += ", output ended"
        out = [
            f"screen {rows}x{cols}, cursor (row, col) = {cursor}, program {self.argv[0]} (pid {self.pid}) {state}",
            "    +" + "-" * cols + "+",
        ]
        for index, line in enumerate(lines):
            pad = cols - max(wcswidth(line), 0)
            marker = "<" if index == cursor[0] else " "
            out.append(f"{index:3d} |{line}{' ' * max(pad, 0)}|{marker}")
        out.append("    +" + "-" * cols + "+")
        out.append(f"last raw output: {raw_tail!r}")
        out.extend(f"EMULATOR ERROR: {err}" for err in errors)
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<Terminal pid={self.pid} argv={self.argv!r}>"


# --------------------------------------------------------------------------
# ssh command line
# --------------------------------------------------------------------------


def ssh_argv(
    port: int,
    user: str,
    *,
    key: str | None = None,
    extra: list[str] | None = None,
    host: str = "127.0.0.1",
    command: list[str] | None = None,
) -> list[str]:
    """Command line for the OpenSSH client, deterministic for tests.

    * ``-F /dev/null``: ignore ~/.ssh/config *and* /etc/ssh/ssh_config, so a
      developer's ControlMaster, SendEnv or GSSAPI settings cannot change the
      test (pass your own ``-F`` in ``extra`` to override).
    * No host key checks, nothing written to known_hosts, ``LogLevel=ERROR``
      so no "Permanently added ..." line lands on the screen.
    * ``IdentityAgent=none``: a developer's ssh-agent keys are never offered.
    * ``key``: ``-i key -o IdentitiesOnly=yes`` -- exactly that key is used.
      ``key=None``: ``PubkeyAuthentication=no``, i.e. the server sees the
      "none" auth method (then password/keyboard-interactive if it asks).
    * ``EscapeChar=none``: otherwise ``~.`` typed after Enter would
      disconnect and ``~`` at the start of a line is held back by the client.
    * ``ConnectTimeout=10`` so a dead server fails the test instead of hanging.

    ``extra`` goes *first*: for ``-o`` options OpenSSH keeps the first value
    it sees, so ``extra=["-o", "EscapeChar=~"]`` overrides a default here.
    ssh allocates a pty itself only when no ``command`` is given; add
    ``"-t"`` to ``extra`` to get one with a command.
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
