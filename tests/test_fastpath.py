"""The trimmed output path: one SSH packet per chat write under AEAD and CTR
ciphers, and every cipher a client may pick still works."""

from __future__ import annotations

import pytest

from tests.support.clients import Client
from tests.support.server import Server
from tests.support.waiting import eventually


def in_step(conn, client: Client) -> bool:
    """The server has sent as many packets as the client has read (the
    counters back from the C writer first, if it holds them)."""
    from sshchat.ssh import fastpath

    fastpath.release(conn)
    return conn._send_seq == client.conn._recv_seq


class CountingTransport:
    """A socket transport that counts its writes (one per SSH packet)."""

    def __init__(self, transport, counts: list[int]) -> None:
        self._transport, self._counts = transport, counts

    def write(self, data: bytes) -> None:
        self._counts[0] += 1
        self._transport.write(data)

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


def count_packets(server: Server) -> list[int]:
    """Wrap the server connections' socket transports to count writes."""
    counts = [0]
    for conn in server.app.ctx.connections:
        conn._transport = CountingTransport(conn._transport, counts)
    return counts


async def lone_reader(server: Server, **options):
    """One client connected, and the server's side of it: (client, conn, chan)."""
    client = await server.connect("reader", **options)
    await client.wait_for("reader")
    (conn,) = server.app.ctx.connections
    (chan,) = conn._channels.values()
    return client, conn, chan


async def quiet_after_logins(reader: Client, writer: Client) -> None:
    """Both have been told the writer joined: the server has nothing more
    to send them until someone speaks (so packets counted from here on are
    the chat's)."""
    await reader.wait_for("writer joined")
    await writer.wait_for("writer joined")


def server_conn(server: Server, name: str):
    """The server's connection of the client logged in as ``name``."""
    return next(c for c in server.app.ctx.connections if c.get_extra_info("username") == name)


async def reader_and_writer(server: Server, **options):
    """"reader" (with ``options``) and "writer" logged in, and the server's
    connection of the reader: (reader, writer, conn)."""
    reader = await server.connect("reader", **options)
    writer = await server.connect("writer")
    await reader.wait_for("writer joined")
    return reader, writer, server_conn(server, "reader")


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
async def test_each_cipher_chats_and_aead_sends_one_packet(
    start_server, cipher: str, mac: str | None, packets_per_message: int
) -> None:
    """Every packet of our own writer passes the real client's MAC check."""
    server: Server = await start_server(ciphers=f"chacha20-poly1305@openssh.com,{cipher}")
    reader = await server.connect("reader", encryption_algs=[cipher], **({"mac_algs": [mac]} if mac else {}))
    writer = await server.connect("writer")
    await quiet_after_logins(reader, writer)
    counts = count_packets(server)
    for n in range(10):
        writer.line(f"m{n}")
        await reader.wait_for(f"writer: m{n}")
    # Each message: a write to the reader (cipher under test) and the echo to
    # the writer (the client's first choice, chacha20-poly1305: one packet).
    assert counts[0] == 10 * (packets_per_message + 1)


async def test_off_switch_keeps_asyncssh_behaviour(start_server) -> None:
    server: Server = await start_server(fast_path=False, ciphers="aes128-gcm@openssh.com")
    try:
        reader = await server.connect("reader", encryption_algs=["aes128-gcm@openssh.com"])
        writer = await server.connect("writer", encryption_algs=["aes128-gcm@openssh.com"])
        await quiet_after_logins(reader, writer)
        counts = count_packets(server)
        writer.line("hello")
        await reader.wait_for("writer: hello")
        await writer.wait_for("writer: hello")  # its own line comes back too
        assert counts[0] == 4  # IGNORE + data, to each of the two
    finally:
        from sshchat.ssh import fastpath

        fastpath.install()


def test_merged_chacha_writes_exactly_what_asyncssh_would() -> None:
    import os

    from asyncssh.crypto.chacha import ChachaCipher

    from sshchat.ssh import fastpath

    for size in (0, 1, 15, 16, 63, 64, 65, 1000, 35000):
        key, nonce = os.urandom(64), os.urandom(8)
        header, data = os.urandom(4), os.urandom(size)
        cipher = ChachaCipher(key)
        expected = fastpath._original_encrypt_and_sign(cipher, header, data, nonce)
        assert fastpath._encrypt_and_sign(cipher, header, data, nonce) == expected
        # and the receiving side (asyncssh's own code) accepts it
        packet, tag = expected
        assert cipher.verify_and_decrypt(packet[:4], packet[4:], nonce, tag) == data


async def test_ciphers_setting_limits_what_clients_may_pick(start_server) -> None:
    import asyncssh

    server: Server = await start_server(ciphers="aes128-gcm@openssh.com, aes256-gcm@openssh.com", macs="")
    client = await server.connect("gcm")
    assert client.conn.get_extra_info("send_cipher") in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    with pytest.raises(asyncssh.KeyExchangeFailed):
        await server.connect("old", encryption_algs=["chacha20-poly1305@openssh.com"])


@pytest.fixture
def fixed_padding(monkeypatch):
    """Padding bytes 0, 1, 2, ... in our writers (Python and C) and asyncssh's."""
    import asyncssh.connection

    from sshchat.ssh import fastpath

    monkeypatch.setattr(asyncssh.connection.os, "urandom", lambda n: bytes(range(n)))
    fastpath.set_padding(lambda n: bytes(range(n)))
    yield
    fastpath.set_padding(None)


class ListTransport:
    """A socket transport that keeps what it is given, and holds `held` bytes."""

    def __init__(self, held: int = 0) -> None:
        self.written: list[bytes] = []
        self.held = held

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.held


@pytest.mark.parametrize(
    ("cipher", "native"),
    [
        ("aes128-gcm@openssh.com", True),  # _wire (C), where built
        ("aes256-gcm@openssh.com", True),
        ("aes128-gcm@openssh.com", False),  # the same in Python
        ("chacha20-poly1305@openssh.com", True),  # Python whatever `native` says
    ],
)
async def test_direct_send_writes_what_asyncssh_would(
    start_server, monkeypatch, fixed_padding, cipher: str, native: bool
) -> None:
    """The direct CHANNEL_DATA writer and asyncssh's channel.write put the
    same bytes on the wire and leave the connection in the same state."""
    from sshchat.ssh import fastpath

    server: Server = await start_server(ciphers="", native=native)
    assert fastpath.send_data is (fastpath._wire.send_data if native and fastpath._wire else fastpath._py_send_data)
    client, conn, chan = await lone_reader(server, encryption_algs=[cipher])
    fastpath.release(conn)  # the session's counters, as its writer left them
    fake = ListTransport(held=7)
    written = fake.written
    transport = conn._transport
    monkeypatch.setattr(conn, "_transport", fake)

    def state() -> tuple:
        enc = conn._send_encryption
        iv = getattr(enc._cipher, "_iv", None)
        return conn._send_seq, conn._rekey_bytes_sent, chan._send_window, iv

    link = fastpath.new_link()
    for text in ("hi", "é" * 70, "x" * 1000, "again"):
        before = state()
        assert fastpath.send_data(chan, text.encode(), link) == 7  # sent; the transport's backlog
        after_direct, direct = state(), written.pop()
        # rewind the counters and let asyncssh send the same data
        conn._send_seq, conn._rekey_bytes_sent, chan._send_window, iv = before
        if iv is not None:
            conn._send_encryption._cipher._iv = iv
        chan.write(text)
        assert written.pop() == direct
        assert state() == after_direct
        transport.write(direct)  # the client gets it once, and stays in step
    conn._transport = transport
    chan.write("still talking\r\n")
    await client.wait_for("x" * 1000 + "againstill talking")  # the real client read all of it


async def test_direct_send_declines_what_it_cannot_send_at_once(start_server) -> None:
    from sshchat.ssh import fastpath

    server: Server = await start_server()
    client, conn, chan = await lone_reader(server)
    no = fastpath.NOT_SENT
    assert fastpath.send_data(chan, b"x" * (chan._send_pktsize + 1)) == no  # more than a packet
    window = chan._send_window
    chan._send_window = 10
    assert fastpath.send_data(chan, b"x" * 11) == no  # beyond the peer's window
    chan._send_window = window
    conn._rekey_bytes_sent = conn._rekey_bytes  # a rekey is due: asyncssh starts it
    assert fastpath.send_data(chan, b"x") == no
    conn._rekey_bytes_sent = 0
    assert fastpath.send_data(chan, b"fine\r\n") == 0
    await client.wait_for("fine")


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


@pytest.mark.parametrize("fast_path", [True, False])
async def test_logins_skip_asyncssh_config_reload(start_server, monkeypatch, fast_path: bool) -> None:
    """asyncssh rebuilds its options in a thread at every login, to apply a
    config file we never give it; with the fast path, nobody waits for that."""
    import asyncssh.connection

    from sshchat.ssh import fastpath

    built = [0]
    original = asyncssh.connection.SSHServerConnectionOptions.construct.__func__

    async def counting(cls, *args, **kwargs):
        built[0] += 1
        return await original(cls, *args, **kwargs)

    try:
        server: Server = await start_server(fast_path=fast_path)
        monkeypatch.setattr(asyncssh.connection.SSHServerConnectionOptions, "construct", classmethod(counting))
        client = await server.connect("alice")
        await client.wait_for("alice")
        assert built[0] == (0 if fast_path else 1)
    finally:
        fastpath.install()


async def test_post_quantum_kex_makes_no_unused_server_key(start_server, monkeypatch) -> None:
    """mlkem768x25519: the server encapsulates to the client's key and never
    needs an ML-KEM key pair of its own; only the client makes one."""
    from asyncssh.crypto import pq

    real_priv, real_pub = pq._pyca_pq_alg_classes[b"mlkem768"]
    made = [0]

    class CountingKey:
        @staticmethod
        def generate():
            made[0] += 1
            return real_priv.generate()

    monkeypatch.setitem(pq._pyca_pq_alg_classes, b"mlkem768", (CountingKey, real_pub))
    server: Server = await start_server()
    alice = await server.connect("alice", kex_algs=["mlkem768x25519-sha256"])
    bob = await server.connect("bob", kex_algs=["mlkem768x25519-sha256"])
    alice.line("quantum-safe hello")
    await bob.wait_for("alice: quantum-safe hello")
    assert made[0] == 2  # one per client, none on the server


async def test_packet_logging_still_works_when_asked_for(start_server, caplog) -> None:
    """Skipping the formatting of packet log lines must not lose them when
    someone turns asyncssh's packet logging on (debug level 3)."""
    import logging

    import asyncssh

    server: Server = await start_server()
    asyncssh.set_debug_level(3)
    try:
        with caplog.at_level(logging.DEBUG, logger="asyncssh"):
            client = await server.connect("alice")
            await client.wait_for("alice")
    finally:
        asyncssh.set_debug_level(1)
    assert any("Received MSG_USERAUTH_REQUEST" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="asyncssh"):
        await server.connect("bob")
    assert not any("MSG_USERAUTH_REQUEST" in r.getMessage() for r in caplog.records)


async def test_asyncssh_info_lines_still_logged_when_enabled(start_server, caplog) -> None:
    """Skipping disabled log calls early keeps the enabled ones."""
    import logging

    server: Server = await start_server()
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        client = await server.connect("alice")
        await client.wait_for("alice")
    assert any("Auth for user alice succeeded" in r.getMessage() for r in caplog.records)


def test_fast_path_only_on_the_asyncssh_it_was_written_for() -> None:
    from sshchat.ssh import fastpath

    assert fastpath.compatible("2.24.1")
    assert not fastpath.compatible("2.25.0") and not fastpath.compatible("3.0")


# Sessions write with fastpath.send_data(chan, data), without a Link, so no
# session makes the C writer's Owner any more (issue 13 removes the C writer);
# these tests of the Owner and Link as sessions used them go with it.
_SESSIONS_HOLD_NO_LINK = pytest.mark.skip(reason="sessions write without a C Link (issue 13)")

GUARDS = [  # (object, attribute, value): each alone means asyncssh must send
    ("chan", "_send_state", "close_pending"),
    ("chan", "_send_buf", [(bytearray(b"queued"), None)]),
    ("chan", "_send_window", 3),
    ("chan", "_send_pktsize", 3),
    ("conn", "_deferred_packets", [(94, ())]),
    ("conn", "_kex_complete", False),
    ("conn", "_auth_complete", False),
    ("conn", "_compressor", object()),
    ("conn", "_send_encryption", None),
    ("conn", "_rekey_seconds", 3600.0),  # with _rekey_time passed, below
    ("conn", "_transport", None),
    ("logger", "_debug_level", 2),
]


# Read once by a session's Link: fixed while the channel is open (pktsize),
# once true for good (auth), or set only with new keys (compressor).
CACHED = {"_send_pktsize", "_auth_complete", "_compressor"}


@pytest.mark.parametrize(("native", "link"), [(True, "none"), (True, "fresh"), (True, "warm"), (False, "none")])
@pytest.mark.parametrize(("owner", "name", "value"), GUARDS)
async def test_each_check_alone_sends_nothing(start_server, monkeypatch, native, link, owner, name, value) -> None:
    """The C writer and the Python one decline the same states, one by one."""
    from asyncssh.logging import SSHLogger

    from sshchat.ssh import fastpath

    if link == "warm" and name in CACHED:
        pytest.skip("read once per channel or key exchange (see LinkCache in _wire.c)")
    server: Server = await start_server(native=native)
    _, conn, chan = await lone_reader(server, encryption_algs=["aes128-gcm@openssh.com"])
    fake = ListTransport()
    monkeypatch.setattr(conn, "_transport", fake)
    warm = fastpath.new_link()
    assert fastpath.send_data(chan, b"x", warm) == 0 and len(fake.written) == 1  # sends, as things are
    with_link = {"none": None, "fresh": fastpath.new_link(), "warm": warm}[link]
    target = {"chan": chan, "conn": conn, "logger": SSHLogger}[owner]
    monkeypatch.setattr(target, name, value)
    if name == "_rekey_seconds":
        monkeypatch.setattr(conn, "_rekey_time", 0.0)
    before = (conn._send_seq, conn._send_encryption and conn._send_encryption._cipher._iv)
    assert fastpath.send_data(chan, b"hello", with_link) == fastpath.NOT_SENT
    assert len(fake.written) == 1
    assert (conn._send_seq, conn._send_encryption and conn._send_encryption._cipher._iv) == before


async def test_nonce_counter_wraps_in_its_low_64_bits(start_server, monkeypatch) -> None:
    from sshchat.ssh import fastpath

    server: Server = await start_server()
    _, conn, chan = await lone_reader(server, encryption_algs=["aes128-gcm@openssh.com"])
    monkeypatch.setattr(conn, "_transport", ListTransport())
    fastpath.release(conn)  # the nonce is asyncssh's attribute again
    cipher = conn._send_encryption._cipher
    cipher._iv = cipher._iv[:4] + b"\xff" * 8
    assert fastpath.send_data(chan, b"x") == 0
    assert cipher._iv[4:] == bytes(8)


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "aes128-ctr"])
async def test_messages_flow_through_repeated_rekeys(start_server, native: bool, cipher: str) -> None:
    """A key exchange every ~3 KB while a chat runs: the direct writer waits
    for each to finish and picks up the new keys (the client checks every MAC)."""
    from sshchat.ssh import fastpath

    server: Server = await start_server(native=native)
    reader, writer, conn = await reader_and_writer(server, encryption_algs=[cipher])
    first = conn._send_encryption
    conn._rekey_bytes = 3000
    fastpath.release(conn)  # the C writer reads the limit afresh
    for n in range(60):
        writer.line(f"line {n} " + "x" * 80)
        if n % 10 == 9:
            await reader.wait_for(f"line {n} ")
    await reader.wait_for("line 59 ")
    assert all(f"writer: line {n} " in reader.text for n in range(60))
    assert conn._send_encryption is not first  # keys did change underway



@_SESSIONS_HOLD_NO_LINK
@pytest.mark.parametrize(
    ("cipher", "mac", "kind"),
    [
        ("aes128-gcm@openssh.com", None, "aes-gcm"),
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", "aes-ctr+hmac-etm"),  # what OpenSSH picks
        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com", "aes-ctr+hmac-etm"),
        ("aes192-ctr", "hmac-sha1-etm@openssh.com", "aes-ctr+hmac-etm"),
        ("aes128-ctr", "hmac-sha2-256", None),  # MAC over the plaintext: Python
        ("aes128-ctr", "umac-64-etm@openssh.com", None),  # not an HMAC: Python, asked once per key exchange
    ],
)
async def test_which_packets_the_c_writer_builds(start_server, cipher: str, mac: str | None, kind: str | None) -> None:
    """AES-GCM and AES-CTR with an encrypt-then-MAC HMAC go out from C; the
    client checks every MAC, across a rekey too."""
    from sshchat.ssh import fastpath

    if fastpath._wire is None:
        pytest.skip("the C part is not built here")
    server: Server = await start_server(macs="")  # every MAC asyncssh has; the client picks
    reader, writer, conn = await reader_and_writer(
        server, encryption_algs=[cipher], **({"mac_algs": [mac]} if mac else {})
    )
    session = next(iter(conn._channels.values()))._session
    for n in range(5):
        writer.line(f"before {n}")
    await reader.wait_for("before 4")
    assert session._link.kind == kind
    first = conn._send_encryption
    fastpath.release(conn)  # the counters back in asyncssh's attributes, and the new limit read afresh
    conn._rekey_bytes = conn._rekey_bytes_sent + 500
    for n in range(20):  # in rounds: a rekey starts at the first packet after the limit
        writer.line(f"after {n} " + "y" * 60)
        if n % 5 == 4:
            await reader.wait_for(f"after {n} ")
    assert conn._send_encryption is not first and session._link.kind == kind


@_SESSIONS_HOLD_NO_LINK
async def test_the_c_writer_holds_the_counters_until_asyncssh_runs(start_server, monkeypatch) -> None:
    """Between its own packets the C writer keeps the connection's counters
    (its Owner); before asyncssh sends a packet of its own or reads what the
    client sent, they go back, so both writers count one sequence and the
    real client, which checks every packet's MAC, stays in step."""
    from sshchat.ssh import fastpath

    if fastpath._wire is None:
        pytest.skip("the C part is not built here")
    server: Server = await start_server()
    reader, writer, conn = await reader_and_writer(server, encryption_algs=["aes128-gcm@openssh.com"])
    owner = conn._sshchat_owner
    chan = next(iter(conn._channels.values()))
    writer.line("one")
    await reader.wait_for("writer: one")
    assert owner.owned  # asyncssh's attributes are behind now
    fastpath.release(conn)
    seq = conn._send_seq
    writer.line("two")
    await reader.wait_for("writer: two")
    assert owner.owned
    conn.send_debug("checking")  # asyncssh sends a packet: the counters come back first
    assert not owner.owned and conn._send_seq == seq + 2
    writer.line("three")
    reader.line("four")  # asyncssh reads it: the counters come back first
    await reader.wait_for("reader: four")
    await reader.wait_for("writer: three")
    await eventually(lambda: in_step(conn, reader), message="every packet counted once, on both sides")
    # asyncssh drops the transport without running any hook (an abort): nothing is written to it
    writer.line("five")
    await reader.wait_for("writer: five")
    assert owner.owned
    monkeypatch.setattr(conn, "_transport", None)
    assert fastpath.send_data(chan, b"x", chan._session._link) == fastpath.NOT_SENT
    assert not owner.owned


async def test_a_gone_connection_is_freed(start_server) -> None:
    """The Owner and the hooks make cycles with the connection: the
    collector must still free it once the client has gone."""
    import gc
    import weakref

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

    await eventually(freed, interval=0.05, message="the server's connection was freed")


@pytest.mark.parametrize("native", [True, False])
async def test_a_key_exchange_the_client_starts_resets_the_rekey_count(start_server, native: bool) -> None:
    """A keystroke (echoed from C) and the client's KEXINIT in one read: the
    C writer takes the counters back between asyncssh reading them and its
    key exchange task resetting the count, so that task must get them back
    first, or the old count carries over and the next rekey comes early."""
    from sshchat.ssh import fastpath

    server: Server = await start_server(native=native)
    reader = await server.connect("reader", pty=True, encryption_algs=["aes128-gcm@openssh.com"])
    conn = server_conn(server, "reader")
    await reader.wait_for("Welcome")
    for n, ch in enumerate("hello"):
        reader.send(ch)  # one keystroke, one packet: each echoed before the next
        await reader.wait_for(lambda c, typed="hello"[: n + 1]: c.text.endswith(typed))
    fastpath.release(conn)
    before, first = conn._rekey_bytes_sent, conn._send_encryption
    reader.send("!")
    reader.conn._send_kexinit()  # what the client's own rekey limit would do, right behind the keystroke
    reader.conn._kexinit_sent = True
    await eventually(lambda: conn._send_encryption is not first and conn._kex_complete, message="new keys")
    await eventually(lambda: in_step(conn, reader), message="every packet counted once, on both sides")
    assert conn._rekey_bytes_sent < before  # counted afresh under the new keys


@_SESSIONS_HOLD_NO_LINK
async def test_switching_to_the_python_writer_keeps_the_client_in_step(start_server) -> None:
    """Sessions made with the C writer hold an Owner; the Python writer,
    installed later in the same process, must take the counters back."""
    from sshchat.ssh import fastpath

    if fastpath._wire is None:
        pytest.skip("the C part is not built here")
    server: Server = await start_server()
    reader, writer, conn = await reader_and_writer(server, encryption_algs=["aes128-gcm@openssh.com"])
    writer.line("one")
    await reader.wait_for("writer: one")
    assert conn._sshchat_owner.owned
    fastpath.install(native=False)
    try:
        writer.line("two")
        await reader.wait_for("writer: two")  # a stale sequence number or nonce: MAC error, disconnected
    finally:
        fastpath.install(native=True)
