"""Trim asyncssh's per-packet work on the server's output path.

asyncssh 2.24 sends an empty SSH_MSG_IGNORE ahead of every packet once
encryption is on. Such padding blunts attacks on CBC-mode ciphers; with the
AEAD ciphers that every current client picks (chacha20-poly1305, AES-GCM) it
buys nothing, and costs a second encryption, a second urandom call and a
second socket write for every chat message. For those ciphers only, and on
server connections only, we leave it out.

Measured on the chat's output path: see the note of the performance issue
and README's performance section. `fast_path = false` turns this off.
"""

from __future__ import annotations

from typing import Any

from asyncssh.connection import SSHServerConnection
from asyncssh.constants import MSG_IGNORE

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


def install() -> None:
    """Use the trimmed output path on server connections (idempotent)."""
    SSHServerConnection.send_packet = _send_packet  # type: ignore[method-assign]


def uninstall() -> None:
    SSHServerConnection.send_packet = _original_send_packet  # type: ignore[method-assign]
