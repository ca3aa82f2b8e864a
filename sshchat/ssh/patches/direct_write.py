"""Chat output as one CHANNEL_DATA packet, straight from bytes to the socket.

What asyncssh does (2.24): ``SSHChannel.write`` encodes the data, appends
it to the channel's send buffer and flushes it: for each packet, the
channel's ``send_packet``, then the connection's ``send_packet`` (rekey
check, deferral checks, payload, padding, encryption, sequence number,
rekey byte count) and a log call per packet, each a layer of Python.

What we change: ``send_data(chan, data)`` builds that one packet itself,
but only when asyncssh would send the data at once as exactly one
packet: the channel open with nothing queued, the data within the peer's
window and maximum packet size, keys settled (no key exchange under way,
none due by bytes or time, nothing deferred), authentication done, no
compression, a cipher that needs no IGNORE packet (see
ignore_only_for_cbc, installed with this patch), packet logging off.
It then does what asyncssh's send path does, in its order, reading and
writing asyncssh's own attributes (sequence number, rekey byte count, the
channel's window, the AES-GCM nonce): nothing is kept outside asyncssh
between packets, so asyncssh's code may run at any time. In every other
case it returns NOT_SENT having done nothing, and the caller hands the
bytes to ``queue_data``: what ``SSHChannel.write`` does once it has encoded
text (into the channel's send buffer, then its flush), so that what was
encoded once for us is not decoded and encoded again by asyncssh. The
packets are byte for byte asyncssh's (tested with a fixed padding source
for both).

Gain: ``python -m bench.hotpath --gap 0.01`` (100 sessions on AES-GCM,
one message per event-loop turn, 10 ms idle between, socket writes not
counted): server CPU per delivery 17.2-18.4 us with it, 25.5-27.3 us
without (``--without direct_write``, 4 alternating runs each). In the full
benchmark (bench.loadgen, 100 users) this writer and one AESGCM per key
took CPU per delivery from 83 to 54 us under AES-GCM, from 109 to 88 us
under chacha20.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from asyncssh import encryption
from asyncssh import logging as ssh_logging

from sshchat.ssh.patches import gcm_one_context
from sshchat.ssh.patches.ignore_only_for_cbc import NO_IGNORE_CIPHERS
from sshchat.ssh.patches.touch import Class, Function, SetBy, Touch, Value

NOT_SENT = -1
_MSG_CHANNEL_DATA = 94

TOUCHES: tuple[Touch, ...] = (
    # the packets we write are the ones this function would
    Function("asyncssh.connection:SSHConnection.send_packet", "(self, pkttype, *args, handler)"),
    Value("asyncssh.constants:MSG_CHANNEL_DATA", equals=_MSG_CHANNEL_DATA),
    SetBy("asyncssh.connection:SSHConnection.__init__", (
        "_send_seq", "_send_encryption", "_send_enchdrlen", "_send_blocksize", "_compressor",
        "_deferred_packets", "_kex_complete", "_auth_complete", "_enc_alg_sc",
        "_rekey_bytes", "_rekey_seconds", "_rekey_bytes_sent", "_rekey_time",
    )),
    SetBy("asyncssh.connection:SSHConnection.connection_made", ("_transport",)),
    SetBy("asyncssh.channel:SSHChannel.__init__", ("_conn", "_send_state", "_send_buf", "_send_buf_len")),
    Function("asyncssh.channel:SSHChannel._flush_send_buf", "(self)"),
    SetBy("asyncssh.channel:SSHChannel.process_open", ("_send_chan", "_send_window", "_send_pktsize")),
    Class("asyncssh.encryption:GCMEncryption"),
    SetBy("asyncssh.encryption:GCMEncryption.__init__", ("_cipher",)),
    SetBy("asyncssh.crypto.cipher:GCMCipher.__init__", ("_key", "_iv")),
    Function("asyncssh.encryption:Encryption.encrypt_packet", "(self, seq, header, packet)"),
    Function("asyncssh.encryption:BasicEncryption.encrypt_packet", "(self, seq, header, packet)"),
    Function("asyncssh.encryption:ETMEncryption.encrypt_packet", "(self, seq, header, packet)"),
    Function("asyncssh.encryption:ChachaEncryption.encrypt_packet", "(self, seq, header, packet)"),
    Value("asyncssh.logging:SSHLogger._debug_level", kind=int),
)


class _Padding:
    """Random padding bytes cut from one urandom read of 64 KiB, not one
    urandom call (a system call) per packet."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self, n: int) -> bytes:
        at = self._at
        if at + n > len(self._pool):
            self._pool, at = os.urandom(65536), 0
        self._at = at + n
        return self._pool[at:at + n]


padding: Callable[[int], bytes] = _Padding()
_DATA = bytes([_MSG_CHANNEL_DATA])
_PADLEN = [bytes([n]) for n in range(256)]
_on = False
_gcm_encryption: Any = None  # asyncssh's GCMEncryption, once installed
_ssh_logger: Any = None


def set_padding(source: Callable[[int], bytes] | None) -> None:
    """Tests: padding bytes from ``source`` (n -> bytes) rather than random;
    None puts random padding back."""
    global padding
    padding = source if source is not None else _Padding()


def send_data(chan: Any, data: bytes) -> int:
    """Send ``data`` on asyncssh channel ``chan`` as one packet, straight to
    the socket, and return what the socket transport still holds (bytes).

    Returns NOT_SENT, having done nothing, when asyncssh's own path is
    needed (or the patch is off); the caller then uses ``chan.write``.
    """
    if not _on:  # first: with the gate closed, asyncssh's names may not be there at all
        return NOT_SENT
    n = len(data)
    conn: Any = chan._conn
    if (
        chan._send_state != "open"
        or chan._send_buf
        or n == 0
        or n > chan._send_window
        or n > chan._send_pktsize
        or chan._send_chan is None
        or conn is None
        or conn._transport is None
        or conn._deferred_packets  # held back during a key exchange: they go first
        or not conn._kex_complete
        or not conn._auth_complete
        or conn._compressor is not None
        or conn._send_encryption is None
        or conn._enc_alg_sc not in NO_IGNORE_CIPHERS
        or conn._rekey_bytes_sent >= conn._rekey_bytes
        or (conn._rekey_seconds and time.monotonic() >= conn._rekey_time)
        or _ssh_logger._debug_level >= 2
    ):
        return NOT_SENT
    payload = _DATA + chan._send_chan.to_bytes(4, "big") + n.to_bytes(4, "big") + data
    blocksize = conn._send_blocksize
    padlen = -(conn._send_enchdrlen + len(payload)) % blocksize
    if padlen < 4:
        padlen += blocksize
    packet = _PADLEN[padlen] + payload + padding(padlen)
    header = len(packet).to_bytes(4, "big")
    seq = conn._send_seq
    enc: Any = conn._send_encryption
    if enc.__class__ is _gcm_encryption:  # the common case, without asyncssh's split and rejoin
        wire = header + gcm_one_context.seal(enc._cipher, header, packet)
    else:
        sealed, mac = enc.encrypt_packet(seq, header, packet)
        wire = sealed + mac
    try:  # noqa: SIM105 (contextlib.suppress costs more, and this runs per packet)
        conn._transport.write(wire)
    except ConnectionError:  # as asyncssh's _send: the connection is going anyway
        pass
    conn._send_seq = (seq + 1) & 0xFFFFFFFF
    conn._rekey_bytes_sent += len(packet)
    chan._send_window -= n
    return conn._transport.get_write_buffer_size()


def queue_data(chan: Any, data: bytes) -> bool:
    """Queue UTF-8 ``data`` on asyncssh channel ``chan`` as ``chan.write``
    queues text once encoded (then sends what the window allows): the
    bytes are not encoded again. False, having done nothing, with the
    patch off: the caller then writes text through ``chan.write``. Raises
    BrokenPipeError, as ``chan.write`` does, if the channel is not open."""
    if not _on:
        return False
    if chan._send_state != "open":
        raise BrokenPipeError("Channel not open for sending")
    if data:
        chan._send_buf.append((bytearray(data), None))
        chan._send_buf_len += len(data)
        chan._flush_send_buf()
    return True


def transport_backlog(conn: Any) -> int:
    """Bytes queued in the connection's socket transport, not yet sent: a
    slow reader's backlog grows here first (the channel's own buffer only
    fills once the client's SSH window, ~2 MB for OpenSSH, is used up).

    asyncssh has no public way to ask, so this reads ``_transport`` (one of
    this patch's checked names). With the gate closed it still tries, and
    counts nothing where the name is gone: the cut-off of slow readers
    then rests on the channel's buffer alone.
    """
    transport = getattr(conn, "_transport", None)
    return transport.get_write_buffer_size() if transport is not None else 0


def install() -> None:
    global _on, _gcm_encryption, _ssh_logger
    _gcm_encryption = encryption.GCMEncryption
    _ssh_logger = ssh_logging.SSHLogger
    _on = True


def uninstall() -> None:
    global _on
    _on = False


def installed() -> bool:
    return _on
