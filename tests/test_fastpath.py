"""The trimmed output path: one SSH packet per chat write under AEAD ciphers,
and every cipher a client may pick still works."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Server


def count_packets(server: Server) -> list[int]:
    """Patch the server connections' socket writes to count them."""
    counts = [0]
    for conn in server.app.ctx.connections:
        original = conn._send

        def counting(data: bytes, original=original) -> None:
            counts[0] += 1
            original(data)

        conn._send = counting
    return counts


@pytest.mark.parametrize(
    ("cipher", "packets_per_message"),
    [
        ("chacha20-poly1305@openssh.com", 1),
        ("aes128-gcm@openssh.com", 1),
        ("aes256-gcm@openssh.com", 1),
        ("aes128-ctr", 2),  # not AEAD: asyncssh's IGNORE padding stays
    ],
)
async def test_each_cipher_chats_and_aead_sends_one_packet(
    start_server, cipher: str, packets_per_message: int
) -> None:
    server: Server = await start_server()
    reader = await server.connect("reader", encryption_algs=[cipher])
    writer = await server.connect("writer")
    await asyncio.sleep(0.1)
    counts = count_packets(server)
    for n in range(10):
        writer.line(f"m{n}")
        await reader.wait_for(f"writer: m{n}")
    # Each message: a write to the reader (cipher under test) and the echo to
    # the writer (default cipher, chacha20-poly1305: one packet).
    assert counts[0] == 10 * (packets_per_message + 1)


async def test_off_switch_keeps_asyncssh_behaviour(start_server) -> None:
    server: Server = await start_server(fast_path=False)
    try:
        reader = await server.connect("reader", encryption_algs=["aes128-gcm@openssh.com"])
        writer = await server.connect("writer", encryption_algs=["aes128-gcm@openssh.com"])
        await asyncio.sleep(0.1)
        counts = count_packets(server)
        writer.line("hello")
        await reader.wait_for("writer: hello")
        await asyncio.sleep(0.05)
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

    server: Server = await start_server(ciphers="aes128-gcm@openssh.com, aes256-gcm@openssh.com")
    client = await server.connect("gcm")
    assert client.conn.get_extra_info("send_cipher") in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
    with pytest.raises(asyncssh.KeyExchangeFailed):
        await server.connect("old", encryption_algs=["chacha20-poly1305@openssh.com"])
