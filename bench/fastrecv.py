"""A leaner receive path for the load generator's asyncssh clients.

At 500 users the generator takes in ~17k SSH packets a second, nearly all of
them CHANNEL_DATA, and asyncssh spends ~30 us of Python on each (header and
body steps, an SSHPacket object, handler lookup, logging) before the bytes
reach the session. With the generator on the same two cores as the server,
that time is taken from the server and shows up as latency: the generator's
own event loop was waking up to 55 ms late (p99).

For AES-GCM connections this decrypts whole packets straight from the
received bytes and hands CHANNEL_DATA to asyncssh's channel (`_accept_data`:
window accounting, WINDOW_ADJUST, delivery) itself. Any other packet, and
any state it does not expect (a half-parsed packet, compression, a packet
that fails its tag), is left in the buffer, undecrypted as far as asyncssh
can tell, for asyncssh's own code. Only for the benchmark's clients: the
server does not use this. It shares the server's AES-GCM helpers
(sshchat/ssh/patches/gcm_one_context.py).
"""

from __future__ import annotations

from typing import Any

from asyncssh.connection import SSHClientConnection, SSHConnection
from asyncssh.constants import MSG_CHANNEL_DATA
from asyncssh.encryption import GCMEncryption
from cryptography.exceptions import InvalidTag

from sshchat.ssh.patches.gcm_one_context import aead, next_iv

_TAG = 16
calls = 0  # data_received calls that took at least one packet (the tests check it is used)
_original_data_received = SSHClientConnection.data_received
_recv_pkthdr = SSHConnection._recv_pkthdr


def _data_received(self: Any, data: bytes, datatype: Any = None) -> None:
    enc = self._recv_encryption
    if (
        enc.__class__ is not GCMEncryption
        or self._decompressor is not None
        or not self._auth_complete
        or getattr(self._recv_handler, "__func__", None) is not _recv_pkthdr
    ):
        _original_data_received(self, data, datatype)
        return
    buf = self._inpbuf + data if self._inpbuf else data
    cipher = enc._cipher
    sealer = aead(cipher)
    channels = self._channels
    limit = self._max_recv_pktlen
    pos, end_of_data = 0, len(buf)
    while end_of_data - pos >= 4:
        pktlen = int.from_bytes(buf[pos:pos + 4], "big")
        end = pos + 4 + pktlen + _TAG
        if end > end_of_data or pktlen > limit:
            break
        try:
            plain = sealer.decrypt(cipher._iv, buf[pos + 4:end], buf[pos:pos + 4])
        except InvalidTag:
            break  # asyncssh's own path reports it
        if len(plain) < 10 or plain[1] != MSG_CHANNEL_DATA:
            break  # not ours to handle: asyncssh decrypts it again
        payload = plain[1:len(plain) - plain[0]]
        chan = channels.get(int.from_bytes(payload[1:5], "big"))
        datalen = int.from_bytes(payload[5:9], "big")
        if (
            chan is None
            or len(payload) != 9 + datalen
            or chan._recv_state != "open"
            or datalen > chan._recv_window
        ):
            break
        cipher._iv = next_iv(cipher._iv)
        self._recv_seq = (self._recv_seq + 1) & 0xFFFFFFFF
        pos = end
        chan._accept_data(payload[9:])
    self._inpbuf = buf[pos:]
    if pos:
        global calls
        calls += 1
        self._auth_final = True  # as asyncssh's _finish_recv_packet after a channel packet
    if self._inpbuf:
        self._recv_data()  # asyncssh's path: other packets, a partial one
    elif self._keepalive_interval:
        self._reset_keepalive_timer()  # as asyncssh's _recv_data does


def install() -> None:
    """Use the lean path on this process's client connections."""
    SSHClientConnection.data_received = _data_received  # type: ignore[method-assign]


def uninstall() -> None:
    SSHClientConnection.data_received = _original_data_received  # type: ignore[method-assign]
