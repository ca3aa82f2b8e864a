"""One simulated user: an SSH connection, a session (with or without a PTY), a parser.

Receiving is asyncssh's session callback (``data_received``), not a task
reading a stream: asyncssh calls it once per SSH packet with the bytes
(``encoding=None``), so there is no queue, no task switch and no decoding
per line. Complete lines are parsed in one ``findall`` of a compiled
pattern over the whole packet; only this run's measured messages match it,
so join notices, the welcome and warm-up lines cost no Python work per line.
All users of a generator process append latencies to one shared array.

With a PTY (``--pty``, ``--typing``) the server's output carries escape
codes: its line editor erases the input line (``\r\x1b[J``), prints the
new lines above it and redraws the prompt and the half-typed text. The
pattern is unanchored, so it finds each posted line among them; the typed
text echoed back never matches, because only a posted line has ``: ``
before the token.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from array import array
from dataclasses import dataclass
from typing import Any

import asyncssh
from asyncssh.connection import SSHClientConnection
from asyncssh.constants import MSG_CHANNEL_WINDOW_ADJUST, MSG_IGNORE
from asyncssh.packet import String, UInt32

# What a person's terminal asks for: a common type, and wide enough that a
# benchmark line (name, prompt and body) never wraps.
PTY_TERM = "xterm"
PTY_COLUMNS = 200
PTY_ROWS = 50


class KeylessClient(asyncssh.SSHClient):
    """Keyboard-interactive with no answers: how keyless users log in."""

    def kbdint_auth_requested(self) -> str:
        return ""

    def kbdint_challenge_received(self, name: str, instructions: str, lang: str, prompts: Any) -> list[str]:
        return [""] * len(prompts)


@dataclass(frozen=True)
class Dialect:
    """How a chat server takes a typed line and shows it to everyone."""

    line_end: bytes  # what submits a line
    echoes: bool  # it echoes the typed text (without a PTY too): count only a line that ends a row


DIALECTS = {
    "sshchat": Dialect(b"\n", False),
    # ssh-chat's line editor submits on CR and drops LF; it echoes what was typed
    # ("[NAME] BODY" then an erase, no newline) and shows the sender its own line
    # as "[NAME] BODY", everyone else as "NAME: BODY".
    "ssh-chat": Dialect(b"\r", True),
}


def message_pattern(token: str, dialect: Dialect = DIALECTS["sshchat"]) -> re.Pattern[bytes]:
    """Matches ``NAME: ~TOKEN mSENDER SEQ TS_US`` anywhere in a chunk of lines.

    Unanchored on purpose: the name may come wrapped in colour codes (other
    servers colour it even without a PTY), and the token makes a false match
    impossible in practice. For a server that echoes typed text, only a line
    that ends (the posted one, whatever comes before the body) counts.
    """
    body = re.escape(token.encode()) + rb" m(\d+) (\d+) (\d+)"
    if dialect.echoes:
        return re.compile(rb" ~" + body + rb"(?: x*)?\r*\n")
    return re.compile(rb": ~" + body)


def message_line(
    token: str, sender: int, seq: int, measured: bool, size: int, end: bytes = b"\n", ts_us: int | None = None
) -> bytes:
    """One chat line, padded to ``size`` characters: what a sender types.

    Warm-up lines say ``w`` where measured ones say ``m``, so receivers
    ignore them without parsing. The timestamp is CLOCK_MONOTONIC in
    microseconds, which every process on this machine shares: now, or
    ``ts_us`` (a typed line carries the time its Enter is due, see worker).
    """
    ts = time.monotonic_ns() // 1000 if ts_us is None else ts_us
    head = f"~{token} {'m' if measured else 'w'}{sender} {seq} {ts}"
    if len(head) < size:
        head += " " + "x" * (size - len(head) - 1)
    return head.encode() + end


class Tally:
    """What every user of one generator process received, in one place.

    ``keyed``: also note, for each latency, whose line it was
    (``sender << 32 | seq``), so that it can be corrected afterwards by how
    late that line's Enter actually went out (typed lines, see worker).
    """

    def __init__(self, keyed: bool = False) -> None:
        self.latencies_us: array[int] = array("q")
        self.keyed = keyed
        self.keys: array[int] = array("q")  # parallel to latencies_us when keyed
        self.cross_us: array[int] = array("q")  # several nodes: latencies of lines from another node
        self.notices: dict[bytes, int] = {}  # "-> ..." lines other than the welcome


# A notice starts a line, perhaps after the editor's erase and a colour code.
_NOTICE = re.compile(rb"^(?:\r|\x1b\[[0-9;?]*[A-Za-z])*-> ([^\r\n\x1b]{0,120})", re.MULTILINE)


class ChatUser(asyncssh.SSHClientSession[bytes]):
    """One logged-in user: counts and times this run's measured messages."""

    def __init__(
        self,
        index: int,
        name: str,
        pattern: re.Pattern[bytes],
        tally: Tally,
        timed: bool = True,
        echoes: bool = False,
        ack_every_read: bool = False,
        nodes: int = 1,
    ) -> None:
        self.index = index
        self._nodes = nodes  # user i is on node i % nodes (see WorkerSpec.ports)
        # Timed users parse every measured line (latency, gaps, order); the
        # others only count them, in C (bytes.count), so a generator at
        # 200k deliveries a second is not the bottleneck it measures.
        self.timed = timed
        self._marker = pattern.pattern.split(rb" m(")[0] + b" m"
        self._echoes = echoes  # the typed text comes back too: the marker alone would count it
        self._ack = ack_every_read
        self.name = name
        self.conn: asyncssh.SSHClientConnection | None = None
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received = 0  # measured messages, from anyone
        self.gaps = 0  # sequence numbers skipped (a message lost mid-stream)
        self.disorder = 0  # a sequence number at or below one already seen
        self.lost_at: float | None = None  # when the connection went, if it did
        self.lost_reason = ""
        self.stderr = b""
        self._pattern = pattern
        self._tally = tally
        self._next: dict[bytes, int] = {}  # sender -> next measured sequence number
        self._started = False  # the server's first bytes came (ready is set)
        self._tail = b""

    # asyncssh callbacks -------------------------------------------------

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is not None:  # stderr: a refusal, say
            self.stderr = (self.stderr + data)[-500:]
            return
        now = time.monotonic_ns() // 1000 if self.timed else 0
        if self._ack:
            self._acknowledge(len(data))
        if not self._started:
            self._started = True
            if not self.ready.done():
                self.ready.set_result(None)
        if self._tail:
            data = self._tail + data
        cut = data.rfind(b"\n") + 1
        if cut != len(data):
            self._tail = data[cut:]
            data = data[:cut]
        elif self._tail:
            self._tail = b""
        if b"-> " in data:
            self._notices(data)
        if not self.timed:
            self.received += len(self._pattern.findall(data)) if self._echoes else data.count(self._marker)
            return
        found = self._pattern.findall(data)
        if not found:
            return
        self.received += len(found)
        append = self._tally.latencies_us.append
        key = self._tally.keys.append if self._tally.keyed else None
        nxt = self._next
        cross = self._tally.cross_us.append if self._nodes > 1 else None
        node = self.index % self._nodes
        for sender, seq, ts in found:
            append(now - int(ts))
            if cross is not None and int(sender) % self._nodes != node:
                cross(now - int(ts))
            q = int(seq)
            if key is not None:
                key(int(sender) << 32 | q)
            expected = nxt.get(sender, 0)
            if q != expected:
                if q > expected:
                    self.gaps += q - expected
                else:
                    self.disorder += 1
            nxt[sender] = q + 1

    def _acknowledge(self, n: int) -> None:
        """Give the server its window back at once, as Go's x/crypto/ssh does
        after every Read: one WINDOW_ADJUST packet per read. asyncssh itself
        waits until half the window is used (as OpenSSH does), so its own
        adjust never comes while this one keeps the window full."""
        chan = self.chan
        if chan is None or self.lost_at is not None or n <= 0:
            return
        chan._recv_window += n
        chan.send_packet(MSG_CHANNEL_WINDOW_ADJUST, UInt32(n))

    def _notices(self, data: bytes) -> None:
        notices = self._tally.notices
        for text in _NOTICE.findall(data):
            if not text.startswith(b"Welcome"):
                key = re.sub(rb"\d+", b"N", text)
                notices[key] = notices.get(key, 0) + 1

    def exit_status_received(self, status: int) -> None:
        self.lost_reason = self.lost_reason or f"exit status {status}"

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        self.lost_reason = self.lost_reason or (str(exc) if exc else "closed by server")
        if not self.ready.done():
            why = self.stderr.decode(errors="replace").strip() or self.lost_reason
            self.ready.set_exception(ConnectionError(why))

    # -------------------------------------------------------------------

    def send(self, line: bytes) -> None:
        """Write ``line``: one CHANNEL_DATA packet, sent at once.

        asyncssh sends each write as its own packet as long as the server's
        window allows (it never merges writes), and the socket has
        TCP_NODELAY; ``packets_sent`` lets the worker check it.
        """
        if self.chan is not None and self.lost_at is None:
            self.chan.write(line)

    def packets_sent(self) -> int:
        """SSH packets this connection has sent so far (its send sequence number;
        a key exchange with strict kex restarts it, which asyncssh does after
        1 GB or an hour: not within a benchmark run)."""
        return int(getattr(self.conn, "_send_seq", 0)) if self.conn is not None else 0


def client_options(
    cipher: str | None, connect_timeout: float, kex: str | None = None
) -> asyncssh.SSHClientConnectionOptions:
    """Options shared by every connection, built once (building them is not free).

    No keys, no agent, no ~/.ssh/config, no host key check: a keyless client
    on loopback. Cipher and key exchange default to asyncssh's order (for
    the cipher, chacha20-poly1305 first, as OpenSSH; for key exchange,
    mlkem768x25519-sha256 first, as OpenSSH 9.9 and later); the server's
    offer decides among them.
    """
    extra: dict[str, Any] = {"encryption_algs": [cipher]} if cipher else {}
    if kex:
        extra["kex_algs"] = [kex]
    return asyncssh.SSHClientConnectionOptions(
        client_factory=KeylessClient,
        known_hosts=None,
        client_keys=None,
        agent_path=None,
        config=None,
        preferred_auth="keyboard-interactive",
        connect_timeout=connect_timeout,
        **extra,
    )


async def connect_user(
    host: str,
    port: int,
    index: int,
    name: str,
    local_address: str,
    options: asyncssh.SSHClientConnectionOptions,
    pattern: re.Pattern[bytes],
    tally: Tally,
    timeout: float,
    timed: bool = True,
    echoes: bool = False,
    pty: bool = False,
    ack_every_read: bool = False,
    nodes: int = 1,
) -> ChatUser:
    """Log ``name`` in from ``local_address``; ready once the server first writes.

    "Logged in" means the server has sent the session its first bytes (for
    sshchat, the welcome), which works for any chat server. ``pty``: ask for
    a terminal (``PTY_TERM``, ``PTY_COLUMNS`` wide) as an interactive ssh does.
    """
    terminal: dict[str, Any] = (
        {"term_type": PTY_TERM, "term_size": (PTY_COLUMNS, PTY_ROWS, 0, 0)} if pty else {}
    )
    conn: asyncssh.SSHClientConnection | None = None
    try:
        async with asyncio.timeout(timeout):
            conn = await _connect(host, port, options, name, local_address)
            _, user = await conn.create_session(
                lambda: ChatUser(index, name, pattern, tally, timed, echoes, ack_every_read, nodes),
                encoding=None,
                **terminal,
            )
            assert isinstance(user, ChatUser)
            user.conn = conn
            await user.ready
            return user
    except BaseException:
        if conn is not None:
            conn.abort()
        raise


async def _connect(
    host: str, port: int, template: asyncssh.SSHClientConnectionOptions, name: str, local_address: str
) -> asyncssh.SSHClientConnection:
    """What ``asyncssh.connect(host, port, options=template, username=name,
    local_addr=...)`` does, without rebuilding the options for every
    connection: asyncssh builds them afresh in a worker thread each time (a
    quarter of a login's cost on the generator's side, measured). A copy of
    the template with this user's name, source address and waiter is what
    the connection reads; nothing else in it changes per connection here.
    """
    loop = asyncio.get_running_loop()
    options = copy.copy(template)
    options.username = name
    options.local_addr = (local_address, 0)
    options.waiter = loop.create_future()
    _, conn = await loop.create_connection(
        lambda: SSHClientConnection(loop, options, wait="auth"), host, port, local_addr=(local_address, 0)
    )
    conn.set_extra_info(host=host, port=port)
    try:
        await options.waiter
    except BaseException:
        conn.abort()
        raise
    return conn


# Ciphers with which an empty IGNORE before each packet buys nothing (not CBC).
_NO_IGNORE_CIPHERS = frozenset({
    b"chacha20-poly1305@openssh.com", b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com",
    b"aes128-ctr", b"aes192-ctr", b"aes256-ctr",
})
_EMPTY_IGNORE = (String(b""),)
_original_send_packet = SSHClientConnection.send_packet


def _send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
    if pkttype == MSG_IGNORE and args == _EMPTY_IGNORE and self._enc_alg_cs in _NO_IGNORE_CIPHERS:
        return
    _original_send_packet(self, pkttype, *args, handler=handler)


def send_like_other_clients() -> None:
    """Send no empty IGNORE packet ahead of every packet, as OpenSSH, PuTTY
    and Go's x/crypto/ssh do not (asyncssh 2.24 does, against CBC attacks;
    with the ciphers above it buys nothing).

    Where the benchmark counts packets a person's client sends (a key, an
    acknowledgement), asyncssh's habit would double what the server takes
    in: this process's client connections then send one packet a key.
    """
    SSHClientConnection.send_packet = _send_packet  # type: ignore[method-assign]


def source_address(slot: int) -> str:
    """The ``slot``-th loopback source address: 127.1.0.1, 127.1.0.2, ...

    All of 127.0.0.0/8 is loopback on Linux, so each user can have its own
    address and the server's per-address limits can stay on.
    """
    return f"127.{1 + slot // 62500}.{(slot // 250) % 250}.{slot % 250 + 1}"
