"""What each asyncssh patch (sshchat/ssh/patches/) does: the same bytes or
results as asyncssh's own code, and the work it saves. The gate that lets
them in is tested in test_patch_gate.py, the direct writer in
test_direct_write.py."""

from __future__ import annotations

import logging
import os

import asyncssh
import pytest

from sshchat.ssh import patches
from sshchat.ssh.patches import chacha_one_keystream, gcm_one_context
from tests.support.server import Server


@pytest.fixture(autouse=True)
def patches_back():
    """Whatever a test did to the patches, the next one finds them in."""
    yield
    patches.install()


def test_merged_chacha_writes_exactly_what_asyncssh_would() -> None:
    from asyncssh.crypto.chacha import ChachaCipher

    patches.uninstall()
    for size in (0, 1, 15, 16, 63, 64, 65, 1000, 35000):
        key, nonce = os.urandom(64), os.urandom(8)
        header, data = os.urandom(4), os.urandom(size)
        cipher = ChachaCipher(key)
        expected = cipher.encrypt_and_sign(header, data, nonce)  # asyncssh's own
        assert chacha_one_keystream.encrypt_and_sign(cipher, header, data, nonce) == expected
        packet, tag = expected
        assert cipher.verify_and_decrypt(packet[:4], packet[4:], nonce, tag) == data


def test_one_aesgcm_per_key_seals_and_opens_what_asyncssh_does() -> None:
    from asyncssh.crypto.cipher import GCMCipher

    patches.uninstall()
    key, iv = os.urandom(16), os.urandom(12)
    theirs, ours = GCMCipher("aes128-gcm", key, iv), GCMCipher("aes128-gcm", key, iv)
    for size in (16, 32, 160, 35008):
        header, data = os.urandom(4), os.urandom(size)
        sealed = theirs.encrypt_and_sign(header, data)
        assert gcm_one_context.encrypt_and_sign(ours, header, data) == sealed
        assert ours._iv == theirs._iv
    reader_theirs, reader_ours = GCMCipher("aes128-gcm", key, iv), GCMCipher("aes128-gcm", key, iv)
    header, data = os.urandom(4), os.urandom(48)
    packet, tag = GCMCipher("aes128-gcm", key, iv).encrypt_and_sign(header, data)
    assert gcm_one_context.verify_and_decrypt(reader_ours, header, packet[4:], tag) == data
    assert reader_theirs.verify_and_decrypt(header, packet[4:], tag) == data
    assert gcm_one_context.verify_and_decrypt(reader_ours, header, packet[4:], tag) is None  # next nonce now
    assert reader_ours._iv == gcm_one_context.next_iv(reader_theirs._iv)


@pytest.mark.parametrize("fast_path", [True, False])
async def test_logins_skip_asyncssh_config_reload(start_server, monkeypatch, fast_path: bool) -> None:
    """asyncssh rebuilds its options in a thread at every login, to apply a
    config file we never give it; with the patch, nobody waits for that."""
    import asyncssh.connection

    built = [0]
    original = asyncssh.connection.SSHServerConnectionOptions.construct.__func__

    async def counting(cls, *args, **kwargs):
        built[0] += 1
        return await original(cls, *args, **kwargs)

    server: Server = await start_server(fast_path=fast_path)
    monkeypatch.setattr(asyncssh.connection.SSHServerConnectionOptions, "construct", classmethod(counting))
    client = await server.connect("alice")
    await client.wait_for("alice")
    assert built[0] == (0 if fast_path else 1)


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


def test_a_kem_made_with_the_lazy_key_works_after_the_patch_is_out() -> None:
    """The client side of mlkem768: the key pair made on first use; a KEM
    object made while the patch was in outlives its removal."""
    from asyncssh.crypto import pq

    assert patches.install()
    client_kem = pq._PyCAKEM(b"mlkem768")
    patches.uninstall()
    secret, ciphertext = pq._PyCAKEM(b"mlkem768").encaps(client_kem.get_public())
    assert client_kem.decaps(ciphertext) == secret


async def test_packet_logging_still_works_when_asked_for(start_server, caplog) -> None:
    """Skipping the formatting of packet log lines must not lose them when
    someone turns asyncssh's packet logging on (debug level 3)."""
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
    server: Server = await start_server()
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        client = await server.connect("alice")
        await client.wait_for("alice")
    assert any("Auth for user alice succeeded" in r.getMessage() for r in caplog.records)
