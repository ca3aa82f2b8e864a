"""Trim asyncssh's per-packet work on the server's output path, and one
step of its login path.

Seven changes, all measured (see README's performance section), all undone
by `fast_path = false`:

1. asyncssh 2.24 sends an empty SSH_MSG_IGNORE ahead of every packet once
encryption is on. Such padding blunts attacks on CBC-mode ciphers (their
next IV is known to an attacker, RFC 4251 9.3.1); with the AEAD ciphers and
AES-CTR, the only ones we offer by default, it buys nothing, and costs a
second encryption, a second urandom call and a second socket write for every
chat message. For those ciphers only, and on server connections only, we
leave it out.

2. Its chacha20-poly1305 builds three ChaCha20 ciphers per packet (the
default offer leaves chacha20 out; this serves `ciphers` that put it back): one for
the length, one for the Poly1305 key (keystream block 0) and one for the
payload (blocks 1 onwards). The last two share key and nonce, so one pass
over 64 zero bytes followed by the payload yields both: two ciphers a packet
instead of three. The bytes on the wire are identical (tested against
asyncssh's own function).

3. Its AES-GCM builds a new AESGCM object (an OpenSSL context) for every
packet, sent or received; one per key does: 4.3 -> 1.7 us a packet. Where
ssh/_wire.c is built, sending uses its GcmSealer instead: one OpenSSL
context per key, reused, where AESGCM copies one per call.

4. `send_data` writes a chat session's output as one CHANNEL_DATA packet
straight to the socket, where asyncssh's `SSHChannel.write` would go
through its send buffer, three layers of packet building, per-packet debug
logging and flow-control checks for every one of them. It takes that road
only when asyncssh itself would send the data at once as one packet (the
channel open with nothing queued, the data within the peer's window and
packet size, keys settled, no rekey due, no compression, a cipher of
NO_IGNORE_CIPHERS, packet logging off) and keeps asyncssh's counters (sequence number, window,
rekey bytes) as asyncssh would; otherwise the caller uses
`SSHChannel.write`. The packets are byte for byte what asyncssh writes
(tested with a fixed padding source). For AES-GCM and for AES-CTR with an
encrypt-then-MAC HMAC (what asyncssh and OpenSSH clients pick from our
offer) the same function is in C (ssh/_wire.c, an optional build,
`native = false` to keep Python; for AES-CTR a C keystream replaces
asyncssh's BasicCipher.encrypt from the cipher's first packet, so both
writers draw on one stream): at 100 users its Python, run once per reader per message on a core
that went idle in between, cost 3-4x what it costs in a tight loop.

5. At every login asyncssh re-reads its server configuration, so that an
sshd_config-style file's Match blocks can apply to the user: it builds a new
options object in a worker thread (a thread hop, and a getfqdn() call)
before `begin_auth`. We never give asyncssh a configuration file, so that
rebuild yields the options it started from; we skip it.

6. For the post-quantum hybrid key exchange (mlkem768x25519-sha256, the
first choice of OpenSSH 9.9 and later and of asyncssh) asyncssh makes an
ML-KEM key pair on both sides; the server only encapsulates to the client's
public key and never uses its own. We make the key pair when it is first
used, which on a server is never.

7. asyncssh formats a log line for every packet sent or received (its name,
its size) before its logger finds that packet logging (debug level 3) is
off, and turns every argument of every log call into text before the
logging module finds the level disabled (sshchat keeps asyncssh's logger at
WARNING). We look at the level first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.connection import SSHServerConnection
from asyncssh.constants import MSG_CHANNEL_DATA, MSG_IGNORE
from asyncssh.crypto import chacha, pq
from asyncssh.crypto import cipher as gcm
from asyncssh.encryption import ETMEncryption, GCMEncryption
from asyncssh.logging import SSHLogger
from asyncssh.mac import _HMAC
from asyncssh.packet import SSHPacketLogger
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20
from cryptography.hazmat.primitives.poly1305 import Poly1305

try:
    from sshchat.ssh import _wire  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler or OpenSSL headers at install): Python does it all
    _wire = None

# Ciphers that need no IGNORE packet ahead of each packet (not CBC).
NO_IGNORE_CIPHERS = frozenset({
    b"chacha20-poly1305@openssh.com", b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com",
    b"aes128-ctr", b"aes192-ctr", b"aes256-ctr",
})
_EMPTY_STRING = b"\x00\x00\x00\x00"  # an SSH string of length 0

_original_send_packet = SSHServerConnection.send_packet


def _send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
    if (
        pkttype == MSG_IGNORE
        and args == (_EMPTY_STRING,)
        and self._enc_alg_sc in NO_IGNORE_CIPHERS
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


_original_gcm_encrypt = gcm.GCMCipher.encrypt_and_sign
_original_gcm_decrypt = gcm.GCMCipher.verify_and_decrypt
_GCM_TAG = 16
_INVOCATION_MASK = 0xFFFFFFFFFFFFFFFF


def gcm_aead(self: Any) -> Any:
    """The cipher's AESGCM object, made once per key (keys change on rekey,
    and with them the GCMCipher object)."""
    aead = self.__dict__.get("_sshchat_aead")
    if aead is None:
        aead = self._sshchat_aead = AESGCM(self._key)
    return aead


def next_gcm_iv(iv: bytes) -> bytes:
    """RFC 5647: the low 64 bits of the nonce count packets."""
    return iv[:4] + ((int.from_bytes(iv[4:], "big") + 1) & _INVOCATION_MASK).to_bytes(8, "big")


def gcm_sealer(cipher: Any) -> Any:
    """What seals this (sending) cipher's packets: _wire's GcmSealer, one
    OpenSSL context reused for every packet, where it is built; else the
    AESGCM object. Made once per key, kept on the cipher."""
    if not _native:
        return gcm_aead(cipher)
    sealer = cipher.__dict__.get("_sshchat_sealer")
    if sealer is None:
        sealer = cipher._sshchat_sealer = _wire.GcmSealer(cipher._key)
    return sealer


def _gcm_seal(cipher: Any, header: bytes, packet: bytes) -> bytes:
    """The packet encrypted and tagged (tag last), the nonce moved on."""
    iv = cipher._iv
    sealed: bytes = gcm_sealer(cipher).encrypt(iv, packet, header)
    cipher._iv = next_gcm_iv(iv)
    return sealed


def _gcm_encrypt_and_sign(self: Any, header: bytes, data: bytes) -> tuple[bytes, bytes]:
    sealed = _gcm_seal(self, header, data)
    return header + sealed[:-_GCM_TAG], sealed[-_GCM_TAG:]


def _gcm_verify_and_decrypt(self: Any, header: bytes, data: bytes, mac: bytes) -> bytes | None:
    try:
        plain: bytes | None = gcm_aead(self).decrypt(self._iv, data + mac, header)
    except InvalidTag:
        plain = None
    self._iv = next_gcm_iv(self._iv)
    return plain


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
_DATA = bytes([MSG_CHANNEL_DATA])
_PADLEN = [bytes([n]) for n in range(256)]
log = logging.getLogger("sshchat")
_enabled = False
_native = False  # AES-GCM and AES-CTR + HMAC-EtM packets go through _wire (C)?
NOT_SENT = -1


def set_padding(source: Callable[[int], bytes] | None) -> None:
    """Tests: padding bytes from ``source`` (n -> bytes) rather than random,
    in both the Python and the C writer; None puts random padding back."""
    global padding
    padding = source if source is not None else _Padding()
    if _wire is not None:
        _wire.set_padding(source)


_original_basic_encrypt = gcm.BasicCipher.encrypt
_HMAC_DIGESTS = {hashlib.sha256: "sha256", hashlib.sha512: "sha512", hashlib.sha1: "sha1"}


def _ctr_stream(cipher: Any) -> Any:
    """The C keystream of an AES-CTR cipher that has not encrypted anything
    yet (made now); False for any other cipher, or one already under way
    (then cryptography's encryptor keeps its place in the stream)."""
    stream = cipher.__dict__.get("_sshchat_stream")
    if stream is None:
        c = cipher._cipher
        stream = False
        if (
            _native and cipher._encryptor is None and not cipher._initial_bytes
            and isinstance(c.mode, modes.CTR) and isinstance(c.algorithm, algorithms.AES)
        ):
            stream = _wire.CtrStream(c.algorithm.key, c.mode.nonce)
        cipher._sshchat_stream = stream
    return stream


def _basic_encrypt(self: Any, data: bytes) -> bytes:
    """asyncssh's BasicCipher.encrypt; for AES-CTR, through the C keystream
    that the C writer uses too, so both draw on one stream."""
    stream = _ctr_stream(self)
    if stream is False:
        return _original_basic_encrypt(self, data)  # type: ignore[no-any-return]
    return stream.update(data)  # type: ignore[no-any-return]


def etm_parts(enc: Any) -> tuple[Any, bytes, str, int] | None:
    """For the C writer: an AES-CTR + HMAC encrypt-then-MAC encryption's
    keystream, MAC key, digest name and MAC size; None for anything else."""
    stream = _ctr_stream(enc._cipher)
    mac = enc._mac
    name = _HMAC_DIGESTS.get(getattr(mac, "_hash_alg", None)) if mac.__class__ is _HMAC else None
    if stream is False or name is None:
        return None
    return stream, mac._key, name, mac._hash_size


def new_link(chan: SSHChannel[Any] | None = None) -> Any:
    """What the C writer keeps for one session's channel between packets
    (a _wire.Link, passed to send_data with that channel only); None where
    the Python writer is in use.

    Given the channel, the Link shares its connection's Owner: the C writer
    then holds the connection's counters between its own packets instead of
    reading and writing asyncssh's attributes for every one (see Owner in
    _wire.c). Without it (tests of the reads themselves) every packet reads
    them."""
    if not _native:
        return None
    conn = chan.get_connection() if chan is not None else None
    return _wire.Link(_owner_of(conn) if conn is not None else None)


_OWNER = "_sshchat_owner"


def release(conn: Any) -> None:
    """Give the connection's counters back to asyncssh now: for code that
    reads or changes its state by hand (tests); asyncssh's own code gets
    them back through the hooks."""
    owner = conn.__dict__.get(_OWNER)
    if owner is not None:
        owner.release(conn)


def _owner_of(conn: Any) -> Any:
    """The connection's Owner, made with its hooks on first use: the
    counters go back to asyncssh before any of its code runs for the
    connection (it sends a packet, reads what the client sent, starts a key
    exchange, or finds the connection gone), so it never works from stale
    ones."""
    owner = conn.__dict__.get(_OWNER)
    if owner is not None:
        return owner
    owner = _wire.Owner()
    release, cls = owner.release, type(conn)  # the class's methods as they are when called (install may swap them)

    def released_send_packet(*args: Any, **kwargs: Any) -> None:
        release(conn)
        cls.send_packet(conn, *args, **kwargs)

    def released_recv_data() -> None:
        release(conn)
        cls._recv_data(conn)

    def released_connection_lost(exc: Exception | None = None) -> None:
        release(conn)
        cls.connection_lost(conn, exc)

    def released_send_kexinit() -> None:  # resets the rekey count before it sends, from a task of its own too
        release(conn)
        cls._send_kexinit(conn)

    conn.send_packet = released_send_packet
    conn._recv_data = released_recv_data
    conn.connection_lost = released_connection_lost
    conn._send_kexinit = released_send_kexinit
    conn.__dict__[_OWNER] = owner
    return owner


def _py_send_data(chan: SSHChannel[Any], data: bytes, link: Any = None) -> int:
    """Send ``data`` on ``chan`` as one packet, straight to the socket, and
    return what the socket transport still holds (bytes).

    Returns NOT_SENT, having done nothing, when asyncssh's own path is
    needed; the caller then uses ``chan.write``. _wire.send_data is this
    function in C, for AES-GCM and AES-CTR + HMAC-EtM (it calls this one for
    other ciphers); ``link`` is for that one (see new_link).
    """
    n = len(data)
    conn: Any = chan._conn
    if conn is not None:
        release(conn)  # the C writer may hold the counters (native switched off since)
    if (
        not _enabled
        or chan._send_state != "open"
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
        or SSHLogger._debug_level >= 2
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
    enc = conn._send_encryption
    if enc.__class__ is GCMEncryption:  # the common case, without asyncssh's split and rejoin
        wire = header + _gcm_seal(enc._cipher, header, packet)
    else:
        sealed, mac = enc.encrypt_packet(seq, header, packet)
        wire = sealed + mac
    try:
        conn._transport.write(wire)
    except ConnectionError:  # as asyncssh's _send: the connection is going anyway
        pass
    conn._send_seq = (seq + 1) & 0xFFFFFFFF
    conn._rekey_bytes_sent += len(packet)
    chan._send_window -= n
    return conn._transport.get_write_buffer_size()  # type: ignore[no-any-return]


send_data: Callable[..., int] = _py_send_data  # (chan, data, link=None)


def install_common() -> None:
    """The changes that serve clients as well (3 and 7, and the merged
    chacha20 of 2; packets byte for byte the same): the load generator's
    clients use them too."""
    chacha.ChachaCipher.encrypt_and_sign = _encrypt_and_sign  # type: ignore[method-assign]
    gcm.GCMCipher.encrypt_and_sign = _gcm_encrypt_and_sign  # type: ignore[method-assign]
    gcm.GCMCipher.verify_and_decrypt = _gcm_verify_and_decrypt  # type: ignore[method-assign]
    SSHPacketLogger._log_packet = _log_packet  # type: ignore[method-assign]
    SSHLogger.log = _log  # type: ignore[method-assign]


_original_reload_config = SSHServerConnection.reload_config
_original_kem_init = pq._PyCAKEM.__init__


def _kem_init(self: Any, alg_name: bytes) -> None:
    pq._KEM.__init__(self, alg_name)
    try:
        self._priv_cls, self._pub_cls = pq._pyca_pq_alg_classes[alg_name]
    except KeyError:
        raise ValueError("Unknown PQ algorithm " + alg_name.decode()) from None


def _kem_key(self: Any) -> Any:
    """The ML-KEM private key, made on first use (see 6 above)."""
    key = self.__dict__.get("_sshchat_key")
    if key is None:
        key = self._sshchat_key = self._priv_cls.generate()
    return key


async def _keep_config(self: Any) -> None:
    """No configuration file, nothing to re-evaluate (see 5 above). Should
    one ever be given, or reverse DNS be turned on, asyncssh's reload runs."""
    if self._rdns_lookup or self._options.config.loaded:
        await _original_reload_config(self)


_original_log_packet = SSHPacketLogger._log_packet


def _log_packet(self: Any, msg: str, pkttype: int, pktid: Any, packet: Any, note: str) -> None:
    if SSHLogger._debug_level >= 3:  # what asyncssh's logger.packet() checks, in the end
        _original_log_packet(self, msg, pkttype, pktid, packet, note)


_original_log = SSHLogger.log


def _log(self: Any, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
    if self.isEnabledFor(level):
        _original_log(self, level, msg, *args, **kwargs)


TESTED_ASYNCSSH = (2, 24)  # the internals these patches are written against


def compatible(version: str = asyncssh.__version__) -> bool:
    """Is this the asyncssh release the patches were written and tested for?"""
    return tuple(int(part) for part in version.split(".")[:2]) == TESTED_ASYNCSSH


def writer() -> str:
    """Which packet writer is in use, for the log."""
    if not _enabled:
        return "asyncssh's (fast_path off, or an asyncssh it was not written for)"
    if _native:
        return "direct, AES-GCM and AES-CTR + HMAC-EtM in C (sshchat/ssh/_wire.c)"
    if _wire is None:
        return "direct, in Python (the C part was not built: no C compiler or OpenSSL headers at install)"
    return "direct, in Python (native = false)"


def install(native: bool = True) -> None:
    """Use the trimmed output path on server connections (idempotent); on an
    asyncssh these patches were not written for, leave asyncssh as it is.
    ``native``: AES-GCM and AES-CTR + HMAC-EtM packets built in C (_wire)
    where it is built."""
    global _enabled, _native, send_data
    if not compatible():
        log.warning("asyncssh %s: fast_path is written for %d.%d; running without it",
                    asyncssh.__version__, *TESTED_ASYNCSSH)
        return
    SSHServerConnection.send_packet = _send_packet  # type: ignore[method-assign]
    SSHServerConnection.reload_config = _keep_config  # type: ignore[method-assign]
    pq._PyCAKEM.__init__ = _kem_init  # type: ignore[method-assign]
    pq._PyCAKEM._priv_key = property(_kem_key)  # type: ignore[attr-defined]
    install_common()
    _enabled = True
    _native = native and _wire is not None
    if _native:
        _wire.configure(GCMEncryption, SSHLogger, _py_send_data, gcm_sealer, ETMEncryption, etm_parts)
        # Kept once installed (uninstall leaves it): a cipher that has a C
        # keystream must go on drawing on it.
        gcm.BasicCipher.encrypt = _basic_encrypt  # type: ignore[method-assign]
        _wire.set_enabled(True)
        send_data = _wire.send_data
    else:
        if _wire is not None:
            _wire.set_enabled(False)
        send_data = _py_send_data


def uninstall() -> None:
    global _enabled, _native, send_data
    if _wire is not None:
        _wire.set_enabled(False)
    send_data = _py_send_data
    _native = False
    SSHServerConnection.send_packet = _original_send_packet  # type: ignore[method-assign]
    SSHServerConnection.reload_config = _original_reload_config  # type: ignore[method-assign]
    pq._PyCAKEM.__init__ = _original_kem_init  # type: ignore[method-assign]
    SSHPacketLogger._log_packet = _original_log_packet  # type: ignore[method-assign]
    SSHLogger.log = _original_log  # type: ignore[method-assign]
    if "_priv_key" in pq._PyCAKEM.__dict__:
        del pq._PyCAKEM._priv_key  # back to the attribute its __init__ sets
    chacha.ChachaCipher.encrypt_and_sign = _original_encrypt_and_sign  # type: ignore[method-assign]
    gcm.GCMCipher.encrypt_and_sign = _original_gcm_encrypt  # type: ignore[method-assign]
    gcm.GCMCipher.verify_and_decrypt = _original_gcm_decrypt  # type: ignore[method-assign]
    _enabled = False
