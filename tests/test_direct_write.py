"""The direct CHANNEL_DATA writer (sshchat/ssh/patches/direct_write.py) and
the IGNORE trim it relies on: one SSH packet per chat write under AEAD and
CTR ciphers, byte for byte what asyncssh writes, and out of the way
whenever asyncssh's own path is needed."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from sshchat.ssh import patches
from sshchat.ssh.patches import direct_write
from tests.support.server import Server
from tests.support.waiting import eventually


class CountingTransport:
    """A socket transport that counts its writes (one per SSH packet)."""

    def __init__(self, transport, counts: list[int]) -> None:
        self._transport, self._counts = transport, counts

    def write(self, data: bytes) -> None:
        self._counts[0] += 1
        self._transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class ListTransport:
    """A socket transport that keeps what it is given, and holds `held` bytes."""

    def __init__(self, held: int = 0) -> None:
        self.written: list[bytes] = []
        self.held = held

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.held


def count_packets(server: Server) -> list[int]:
    """Wrap the server connections' socket transports to count writes."""
    counts = [0]
    for conn in server.app.ctx.connections:
        conn._transport = CountingTransport(conn._transport, counts)
    return counts


def server_conn(server: Server, name: str):
    """The server's connection of the client logged in as ``name``."""
    return next(c for c in server.app.ctx.connections if c.get_extra_info("username") == name)


async def lone_reader(server: Server, **options):
    """One client connected, and the server's side of it: (client, conn, chan)."""
    client = await server.connect("reader", **options)
    await client.wait_for("reader")
    (conn,) = server.app.ctx.connections
    (chan,) = conn._channels.values()
    return client, conn, chan


async def reader_and_writer(server: Server, **options):
    """"reader" (with ``options``) and "writer" logged in, and the server's
    connection of the reader: (reader, writer, conn)."""
    reader = await server.connect("reader", **options)
    writer = await server.connect("writer")
    await reader.wait_for("writer joined")
    return reader, writer, server_conn(server, "reader")


class Steady:
    """A predicate for ``eventually``: true once the packet count has not
    changed for ``turns`` checks in a row spanning at least ``quiet``
    seconds (the server has nothing more to write: the store's thread and
    the clients' round trips included), and, if ``expected`` is given, is
    exactly that. Checked every event-loop turn (``interval=0``)."""

    def __init__(self, counts: list[int], expected: int | None = None, turns: int = 20, quiet: float = 0.1) -> None:
        self.counts, self.expected, self.turns, self.quiet = counts, expected, turns, quiet
        self._last, self._same, self._since = counts[0], 0, time.monotonic()

    def __call__(self) -> bool:
        now = self.counts[0]
        if now != self._last:
            self._last, self._same, self._since = now, 0, time.monotonic()
            return False
        self._same += 1
        return (
            self._same >= self.turns
            and time.monotonic() - self._since >= self.quiet
            and (self.expected is None or now == self.expected)
        )

    def __str__(self) -> str:
        wanted = "" if self.expected is None else f" at {self.expected}"
        return f"the server's packet count to stay{wanted}; it is {self.counts[0]}"


async def steady(counts: list[int], expected: int | None = None) -> None:
    """Wait until the server writes no more packets (and has written
    ``expected``); fails the test at the deadline."""
    condition = Steady(counts, expected)
    await eventually(condition, interval=0, timeout=5.0, message=lambda: str(condition))


async def counting_when_quiet(server: Server) -> list[int]:
    """Count the server's packets from the moment it has stopped writing
    (join notices and all sent): the counts then start at 0."""
    counts = count_packets(server)
    await steady(counts)
    counts[0] = 0
    return counts


@pytest.mark.parametrize(
    ("cipher", "mac", "packets_per_message"),
    [
        ("chacha20-poly1305@openssh.com", None, 1),
        ("aes128-gcm@openssh.com", None, 1),
        ("aes256-gcm@openssh.com", None, 1),
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", 1),  # what OpenSSH picks by default
        ("aes256-ctr", "hmac-sha2-256", 1),  # MAC over plaintext: the length is encrypted too
        ("aes128-ctr", "hmac-sha1", 1),
        ("aes128-cbc", "hmac-sha2-256", 2),  # CBC: asyncssh's IGNORE padding stays
    ],
)
async def test_each_cipher_chats_and_sends_one_packet_a_message(
    start_server, cipher: str, mac: str | None, packets_per_message: int
) -> None:
    """Every packet of our own writer passes the real client's MAC check."""
    server: Server = await start_server(ciphers=f"chacha20-poly1305@openssh.com,{cipher}")
    reader = await server.connect("reader", encryption_algs=[cipher], **({"mac_algs": [mac]} if mac else {}))
    writer = await server.connect("writer")
    await reader.wait_for("writer joined")
    counts = await counting_when_quiet(server)
    for n in range(10):
        writer.line(f"m{n}")
        await reader.wait_for(f"writer: m{n}")
    # Each message: a write to the reader (cipher under test) and the echo to
    # the writer (the client's first choice, chacha20-poly1305: one packet).
    await steady(counts, expected=10 * (packets_per_message + 1))


async def test_fast_path_off_keeps_asyncssh_behaviour(start_server) -> None:
    server: Server = await start_server(fast_path=False, ciphers="aes128-gcm@openssh.com")
    reader = await server.connect("reader")
    writer = await server.connect("writer")
    await reader.wait_for("writer joined")
    counts = await counting_when_quiet(server)
    writer.line("hello")
    await reader.wait_for("writer: hello")
    await writer.wait_for("writer: hello")
    await steady(counts, expected=4)  # IGNORE + data, to each of the two


async def test_ciphers_setting_limits_what_clients_may_pick(start_server) -> None:
    import asyncssh

    server: Server = await start_server(ciphers="aes128-gcm@openssh.com, aes256-gcm@openssh.com", macs="")
    client = await server.connect("gcm")
    assert client.conn.get_extra_info("send_cipher") in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    with pytest.raises(asyncssh.KeyExchangeFailed):
        await server.connect("old", encryption_algs=["chacha20-poly1305@openssh.com"])


async def test_clients_pick_aes_gcm_by_default_and_old_ones_still_get_in(start_server) -> None:
    """The default offer leaves chacha20-poly1305 and UMAC out, so asyncssh
    settles on AES-GCM, and a client that puts AES-CTR with UMAC next (as
    OpenSSH does) gets AES-CTR with HMAC-SHA2."""
    import asyncssh

    server: Server = await start_server()
    modern = await server.connect("modern")  # asyncssh's own order: chacha20 first
    assert modern.conn.get_extra_info("send_cipher") == "aes256-gcm@openssh.com"
    old = await server.connect(
        "old",
        encryption_algs=["chacha20-poly1305@openssh.com", "aes128-ctr", "aes128-gcm@openssh.com"],
        mac_algs=["umac-64-etm@openssh.com", "hmac-sha2-256-etm@openssh.com"],
    )
    assert old.conn.get_extra_info("send_cipher") == "aes128-ctr"
    assert old.conn.get_extra_info("send_mac") == "hmac-sha2-256-etm@openssh.com"
    await old.wait_for("old")
    modern.line("hi old")
    await old.wait_for("modern: hi old")
    with pytest.raises(asyncssh.KeyExchangeFailed):
        await server.connect("chacha", encryption_algs=["chacha20-poly1305@openssh.com"])


@pytest.fixture
def fixed_padding(monkeypatch):
    """Padding bytes 0, 1, 2, ... in our writer and asyncssh's."""
    import asyncssh.connection

    monkeypatch.setattr(asyncssh.connection.os, "urandom", lambda n: bytes(range(n)))
    direct_write.set_padding(lambda n: bytes(range(n)))
    yield
    direct_write.set_padding(None)


@pytest.mark.parametrize(
    ("cipher", "mac"),
    [
        ("aes128-gcm@openssh.com", None),
        ("aes256-gcm@openssh.com", None),
        ("chacha20-poly1305@openssh.com", None),
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
        ("aes256-ctr", "hmac-sha2-512"),
    ],
)
async def test_direct_send_writes_what_asyncssh_would(
    start_server, monkeypatch, fixed_padding, cipher: str, mac: str | None
) -> None:
    """The direct writer and asyncssh's channel.write put the same bytes on
    the wire and leave the connection in the same state. AES-CTR's
    keystream cannot be rewound: there the packet handed to asyncssh's own
    encryption is compared, and asyncssh's copy is not encrypted again."""
    server: Server = await start_server(ciphers="", macs="")
    options = {"encryption_algs": [cipher], **({"mac_algs": [mac]} if mac else {})}
    client, conn, chan = await lone_reader(server, **options)
    fake = ListTransport(held=7)
    written = fake.written
    transport = conn._transport
    monkeypatch.setattr(conn, "_transport", fake)
    enc = conn._send_encryption
    handed: list[tuple[int, bytes, bytes]] = []
    if cipher.endswith("-ctr"):
        encrypt = enc.encrypt_packet
        sealed: list[tuple[bytes, bytes]] = []

        def once(seq: int, header: bytes, packet: bytes) -> tuple[bytes, bytes]:
            handed.append((seq, header, packet))
            if len(handed) % 2:  # the direct writer's: encrypted; asyncssh's: the same result again
                sealed.append(encrypt(seq, header, packet))
            return sealed[-1]

        monkeypatch.setattr(enc, "encrypt_packet", once)

    def state() -> tuple:
        return conn._send_seq, conn._rekey_bytes_sent, chan._send_window, getattr(enc._cipher, "_iv", None)

    for text in ("hi", "é" * 70, "x" * 1000, "again"):
        before = state()
        assert direct_write.send_data(chan, text.encode()) == 7  # sent; the transport's backlog
        after_direct, direct = state(), written.pop()
        # rewind the counters and let asyncssh send the same data
        conn._send_seq, conn._rekey_bytes_sent, chan._send_window, iv = before
        if iv is not None:
            enc._cipher._iv = iv
        chan.write(text)
        assert written.pop() == direct
        assert state() == after_direct
        if handed:
            assert handed[-1] == handed[-2]
        transport.write(direct)  # the client gets it once, and stays in step
    conn._transport = transport
    chan.write("still talking\r\n")
    await client.wait_for("x" * 1000 + "againstill talking")  # the real client read all of it


async def test_direct_send_declines_what_it_cannot_send_at_once(start_server) -> None:
    server: Server = await start_server()
    client, conn, chan = await lone_reader(server)
    no = direct_write.NOT_SENT
    assert direct_write.send_data(chan, b"x" * (chan._send_pktsize + 1)) == no  # more than a packet
    window = chan._send_window
    chan._send_window = 10
    assert direct_write.send_data(chan, b"x" * 11) == no  # beyond the peer's window
    chan._send_window = window
    conn._rekey_bytes_sent = conn._rekey_bytes  # a rekey is due: asyncssh starts it
    assert direct_write.send_data(chan, b"x") == no
    conn._rekey_bytes_sent = 0
    assert direct_write.send_data(chan, b"fine\r\n") == 0
    await client.wait_for("fine")


GUARDS = [  # (object, attribute, value): each alone means asyncssh must send
    ("chan", "_send_state", "close_pending"),
    ("chan", "_send_buf", [(bytearray(b"queued"), None)]),
    ("chan", "_send_window", 3),
    ("chan", "_send_pktsize", 3),
    ("chan", "_send_chan", None),
    ("conn", "_deferred_packets", [(94, ())]),
    ("conn", "_kex_complete", False),
    ("conn", "_auth_complete", False),
    ("conn", "_compressor", object()),
    ("conn", "_send_encryption", None),
    ("conn", "_enc_alg_sc", b"aes128-cbc"),
    ("conn", "_rekey_seconds", 3600.0),  # with _rekey_time passed, below
    ("conn", "_transport", None),
    ("logger", "_debug_level", 2),
]


@pytest.mark.parametrize(("owner", "name", "value"), GUARDS)
async def test_each_check_alone_sends_nothing(start_server, monkeypatch, owner, name, value) -> None:
    from asyncssh.logging import SSHLogger

    server: Server = await start_server()
    _, conn, chan = await lone_reader(server, encryption_algs=["aes128-gcm@openssh.com"])
    fake = ListTransport()
    monkeypatch.setattr(conn, "_transport", fake)
    assert direct_write.send_data(chan, b"x") == 0 and len(fake.written) == 1  # sends, as things are
    target = {"chan": chan, "conn": conn, "logger": SSHLogger}[owner]
    monkeypatch.setattr(target, name, value)
    if name == "_rekey_seconds":
        monkeypatch.setattr(conn, "_rekey_time", 0.0)
    before = (conn._send_seq, conn._send_encryption and conn._send_encryption._cipher._iv)
    assert direct_write.send_data(chan, b"hello") == direct_write.NOT_SENT
    assert len(fake.written) == 1
    assert (conn._send_seq, conn._send_encryption and conn._send_encryption._cipher._iv) == before


def test_with_the_patches_off_it_touches_nothing_of_the_channel() -> None:
    """With the gate closed asyncssh may have renamed the channel's
    internals: send_data must step aside before it reads any of them
    (else every write raises and every session ends)."""

    class RenamedInternals:  # no _conn, _send_state, _send_buf, ...
        def __getattr__(self, name: str):
            raise AttributeError(f"a channel of a newer asyncssh has no {name}")

    patches.uninstall()
    try:
        assert direct_write.send_data(RenamedInternals(), b"hello") == direct_write.NOT_SENT
    finally:
        assert patches.install()


async def test_nonce_counter_wraps_in_its_low_64_bits(start_server, monkeypatch) -> None:
    server: Server = await start_server()
    _, conn, chan = await lone_reader(server, encryption_algs=["aes128-gcm@openssh.com"])
    monkeypatch.setattr(conn, "_transport", ListTransport())
    cipher = conn._send_encryption._cipher
    cipher._iv = cipher._iv[:4] + b"\xff" * 8
    assert direct_write.send_data(chan, b"x") == 0
    assert cipher._iv[4:] == bytes(8)


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "aes128-ctr"])
async def test_messages_flow_through_repeated_rekeys(start_server, cipher: str) -> None:
    """A key exchange every ~3 KB, started by the server, while a chat runs:
    the direct writer steps aside for each and picks up the new keys (the
    client checks every MAC)."""
    server: Server = await start_server()
    reader, writer, conn = await reader_and_writer(server, encryption_algs=[cipher])
    first = conn._send_encryption
    conn._rekey_bytes = 3000
    for n in range(60):
        writer.line(f"line {n} " + "x" * 80)
        if n % 10 == 9:
            await reader.wait_for(f"line {n} ")
    await reader.wait_for("line 59 ")
    assert all(f"writer: line {n} " in reader.text for n in range(60))
    assert conn._send_encryption is not first  # keys did change underway


async def test_a_key_exchange_the_client_starts_resets_the_rekey_count(start_server) -> None:
    """A keystroke echoed by the direct writer and the client's KEXINIT in
    one read: the new keys' byte count starts afresh and both sides stay
    in step."""
    server: Server = await start_server()
    reader = await server.connect("reader", pty=True, encryption_algs=["aes128-gcm@openssh.com"])
    conn = server_conn(server, "reader")
    for ch in "hello":
        reader.send(ch)
        await reader.wait_for(lambda c, ch=ch: c.output.endswith(ch))
    before, first = conn._rekey_bytes_sent, conn._send_encryption
    reader.send("!")
    reader.conn._send_kexinit()  # what the client's own rekey limit would do, right behind the keystroke
    reader.conn._kexinit_sent = True
    await eventually(lambda: conn._send_encryption is not first and conn._kex_complete, message="the new keys")
    reader.send("?")
    await reader.wait_for(lambda c: c.output.endswith("?"))
    assert conn._rekey_bytes_sent < before  # counted afresh under the new keys
    assert conn._send_seq == reader.conn._recv_seq


async def test_a_gone_connection_is_freed(start_server) -> None:
    """Nothing of ours holds on to a connection once its client has gone."""
    server: Server = await start_server()
    reader, writer, conn = await reader_and_writer(server)
    writer.line("hello")
    await reader.wait_for("writer: hello")
    gone = weakref.ref(conn)
    del conn
    reader.conn.close()
    await writer.wait_for("reader left")

    def freed() -> bool:
        gc.collect()
        return gone() is None

    await eventually(freed, timeout=2.0, interval=0.05, message="the connection to be freed")


async def test_output_is_encoded_once_where_the_direct_writer_steps_aside(start_server, monkeypatch) -> None:
    """Where the direct writer cannot send (a key exchange, a full window, a
    backlog), what was encoded goes into asyncssh's send buffer as bytes:
    not decoded and handed to asyncssh's ``write``, which encodes it again."""
    import asyncssh

    server: Server = await start_server()
    assert direct_write.installed()
    texts: list[str] = []
    real_write = asyncssh.SSHServerChannel.write

    def write(chan, data, datatype=None) -> None:  # type: ignore[no-untyped-def]
        if datatype is None:
            texts.append(data)  # asyncssh encodes what it is given here
        real_write(chan, data, datatype)

    monkeypatch.setattr(asyncssh.SSHServerChannel, "write", write)
    monkeypatch.setattr(direct_write, "send_data", lambda chan, data: direct_write.NOT_SENT)
    person = await server.connect("person", pty=True)
    script = await server.connect("script")
    person.send("héllo from a terminal\r")
    await script.wait_for("person: héllo from a terminal")
    script.line("ünïcode from a script")
    await person.wait_for("script: ünïcode from a script")
    assert texts == []
