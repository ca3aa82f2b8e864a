"""Trim asyncssh's per-packet work on the server's output path.

Two changes, both on what the server sends, both measured (see README's
performance section), both undone by `fast_path = false`:

1. asyncssh 2.24 sends an empty SSH_MSG_IGNORE ahead of every packet once
encryption is on. Such padding blunts attacks on CBC-mode ciphers; with the
AEAD ciphers that every current client picks (chacha20-poly1305, AES-GCM) it
buys nothing, and costs a second encryption, a second urandom call and a
second socket write for every chat message. For those ciphers only, and on
server connections only, we leave it out.

2. Its chacha20-poly1305 builds three ChaCha20 ciphers per packet: one for
the length, one for the Poly1305 key (keystream block 0) and one for the
payload (blocks 1 onwards). The last two share key and nonce, so one pass
over 64 zero bytes followed by the payload yields both: two ciphers a packet
instead of three. The bytes on the wire are identical (tested against
asyncssh's own function).
"""

from __future__ import annotations

from typing import Any

from asyncssh.connection import SSHServerConnection
from asyncssh.constants import MSG_IGNORE
from asyncssh.crypto import chacha
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20
from cryptography.hazmat.primitives.poly1305 import Poly1305

AEAD_CIPHERS = frozenset(
    {b"chacha20-poly1305@openssh.com", b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com"}
)
_EMPTY_STRING = b"\x00\x00\x00\x00"  # an SSH string of length 0

_original_send_packet = SSHServerConnection.send_packet


def _send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
    if (
        pkttype == MSG_IGNORE
        and args == (_EMPTY_STRING,)
        and self._enc_alg_sc in AEAD_CIPHERS
        and self._send_encryption is not None
    ):
        return
    _original_send_packet(self, pkttype, *args, handler=handler)


_original_encrypt_and_sign = chacha.ChachaCipher.encrypt_and_sign
_ZERO_BLOCK = bytes(64)
_CTR_0 = bytes(8)


def _encrypt_and_sign(self: Any, header: bytes, data: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    """OpenSSH's chacha20-poly1305, with the Poly1305 key and the payload
    taken from one keystream."""
    header = Cipher(ChaCha20(self._adkey, _CTR_0 + nonce), mode=None).encryptor().update(header)
    stream = Cipher(ChaCha20(self._key, _CTR_0 + nonce), mode=None).encryptor().update(_ZERO_BLOCK + data)
    data = stream[64:]
    tag = Poly1305.generate_tag(stream[:32], header + data)
    return header + data, tag


def install() -> None:
    """Use the trimmed output path on server connections (idempotent)."""
    SSHServerConnection.send_packet = _send_packet  # type: ignore[method-assign]
    chacha.ChachaCipher.encrypt_and_sign = _encrypt_and_sign  # type: ignore[method-assign]


def uninstall() -> None:
    SSHServerConnection.send_packet = _original_send_packet  # type: ignore[method-assign]
    chacha.ChachaCipher.encrypt_and_sign = _original_encrypt_and_sign  # type: ignore[method-assign]
