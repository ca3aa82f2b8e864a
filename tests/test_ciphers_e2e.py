"""Every cipher and MAC the server offers, end to end, against clients that
run no code of ours: the real OpenSSH client and paramiko.

Each client pins one cipher (and, for AES-CTR, one MAC; AES-GCM carries its
own), forces a key exchange every kilobyte or so, and sends a few KB of
lines while it reads every line back (the chat echoes a sender's own
messages): data in both directions across many key changes, through the
server's own packet writer (the asyncssh patches), with every MAC checked
by the client. Each line must arrive intact and in order.

Beyond the default offer: chacha20-poly1305 (its own send patch) and UMAC,
which a server with ``ciphers``/``macs`` set empty offers (asyncssh's
whole lists); and key exchanges the server starts, where the direct
writer steps aside and asyncssh sends the KEXINIT.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Any

import paramiko
import pytest

from sshchat.config import DEFAULT_CIPHERS, DEFAULT_MACS
from sshchat.ssh import patches
from sshchat.ssh.patches import direct_write
from tests.support.server import Server
from tests.support.terminal import ssh_argv
from tests.support.waiting import eventually

AEAD = {"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"}
OFFERED_CIPHERS = DEFAULT_CIPHERS.split(",")
OFFERED_MACS = DEFAULT_MACS.split(",")
# Each AEAD cipher alone (its MAC is built in); each other cipher with each MAC.
PAIRS = [(c, None) for c in OFFERED_CIPHERS if c in AEAD] + [
    (c, m) for c in OFFERED_CIPHERS if c not in AEAD for m in OFFERED_MACS
]
LINES = 60
ROUND = 10
FILLER = "0123456789abcdefghijklmnopqrstuvwxyz" * 2  # 72 characters: ~5 KB each way in all


def expected_lines(name: str) -> list[str]:
    return [f"{name}: {n:03d} {FILLER}" for n in range(LINES)]


def rounds(name: str) -> list[list[str]]:
    """The lines in rounds of ROUND: each round is sent at once and read
    back before the next, so that ~1 KB flows each way between key
    exchanges (a client sends everything in one go before its first
    rekey has even started)."""
    lines = expected_lines(name)
    return [lines[at:at + ROUND] for at in range(0, LINES, ROUND)]


def check_echo(text: str, name: str) -> None:
    """Every line the client sent came back once, whole and in order."""
    want = expected_lines(name)
    got = [line for line in text.replace("\r", "").split("\n") if line.startswith(f"{name}: ")]
    assert got == want, f"got {len(got)} lines of {len(want)}; first difference: " + next(
        (f"{g!r} != {w!r}" for g, w in zip(got, want, strict=False) if g != w), "(lines missing at the end)"
    )


async def openssh_roundtrip(
    port: int, name: str, cipher: str, mac: str | None, *,
    client_rekey: str | None = "1K", before_data: Callable[[], Awaitable[None]] | None = None,
) -> tuple[str, int]:
    """One `ssh -T` session on the cipher (and MAC): send the lines, read
    them all back, then end it. Returns (output, key exchanges seen).
    ``client_rekey``: the client's RekeyLimit (None: OpenSSH's default,
    so that it starts no key exchange of its own); ``before_data`` is
    awaited once the client is on its way, before any line is sent."""
    extra = ["-T", "-o", "LogLevel=DEBUG1", "-c", cipher]
    if client_rekey is not None:
        extra += ["-o", f"RekeyLimit={client_rekey}"]
    if mac is not None:
        extra += ["-m", mac]
    proc = await asyncio.create_subprocess_exec(
        *ssh_argv(port, name, extra=extra),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    stderr_task = asyncio.ensure_future(proc.stderr.read())
    out = b""
    try:
        async with asyncio.timeout(20):
            if before_data is not None:
                await before_data()
            for lines in rounds(name):
                proc.stdin.write(b"".join(line.split(": ", 1)[1].encode() + b"\n" for line in lines))
                await proc.stdin.drain()
                while lines[-1].encode() not in out:
                    chunk = await proc.stdout.read(65536)
                    if not chunk:
                        break
                    out += chunk
            proc.stdin.close()
            out += await proc.stdout.read()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = (await stderr_task).decode(errors="replace")
    assert f"cipher: {cipher} MAC: {mac or '<implicit>'}" in log, log[-2000:]
    return out.decode(errors="replace"), log.count("SSH2_MSG_NEWKEYS received")


openssh = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


@openssh
@pytest.mark.parametrize(("cipher", "mac"), PAIRS)
async def test_openssh_every_offered_cipher_and_mac_through_rekeys(
    start_server, cipher: str, mac: str | None
) -> None:
    server: Server = await start_server()
    assert "direct_write" in patches.installed()
    out, kex = await openssh_roundtrip(server.port, "ossh", cipher, mac)
    check_echo(out, "ossh")
    assert kex >= 4, f"only {kex} key exchanges"  # the first and at least three more underway


@openssh
@pytest.mark.parametrize(("cipher", "mac"), [("aes128-gcm@openssh.com", None), ("aes128-ctr", "hmac-sha2-256")])
async def test_openssh_with_the_patches_off(start_server, cipher: str, mac: str | None) -> None:
    server: Server = await start_server(fast_path=False)
    assert "direct_write" not in patches.installed()
    out, kex = await openssh_roundtrip(server.port, "plain", cipher, mac)
    check_echo(out, "plain")
    assert kex >= 4


@openssh
@pytest.mark.parametrize(
    ("cipher", "mac", "patch"),
    [
        ("chacha20-poly1305@openssh.com", None, "chacha_one_keystream"),
        ("aes128-ctr", "umac-64-etm@openssh.com", "direct_write"),
        ("aes256-ctr", "umac-128@openssh.com", "direct_write"),  # MAC over the plaintext
    ],
)
async def test_openssh_with_what_the_default_offer_leaves_out(
    start_server, cipher: str, mac: str | None, patch: str
) -> None:
    """``ciphers = ""`` and ``macs = ""`` offer asyncssh's whole lists:
    chacha20-poly1305 (sent through its own patch, and the direct writer)
    and UMAC must work through rekeys as well as the default offer does."""
    server: Server = await start_server(ciphers="", macs="")
    assert {"direct_write", patch} <= set(patches.installed())
    out, kex = await openssh_roundtrip(server.port, "wide", cipher, mac)
    check_echo(out, "wide")
    assert kex >= 4, f"only {kex} key exchanges"


@openssh
@pytest.mark.parametrize(
    ("cipher", "mac"), [("aes128-gcm@openssh.com", None), ("aes128-ctr", "hmac-sha2-256-etm@openssh.com")]
)
async def test_openssh_through_key_exchanges_the_server_starts(
    start_server, monkeypatch, cipher: str, mac: str | None
) -> None:
    """The server's rekey limit made small once the client is in (OpenSSH
    keeps its own default, so every key exchange after the first is the
    server's): each time a chat write finds a rekey due, the direct writer
    declines, asyncssh's own write sends the KEXINIT, and the lines still
    arrive intact and in order, both ways."""
    server: Server = await start_server()
    due: list[int] = []  # what send_data returned for each write that found a rekey due
    send_data = direct_write.send_data

    def watched(chan: Any, data: bytes) -> int:
        conn = chan._conn
        rekey_due = conn._kex_complete and conn._rekey_bytes_sent >= conn._rekey_bytes
        sent = send_data(chan, data)
        if rekey_due:
            due.append(sent)
        return sent

    monkeypatch.setattr(direct_write, "send_data", watched)

    async def small_rekey_limit() -> None:
        # after authentication: asyncssh may set the limit again from its config until then
        await eventually(
            lambda: any(c._auth_complete for c in server.app.ctx.connections), message="the client logged in"
        )
        (conn,) = server.app.ctx.connections
        conn._rekey_bytes = 512

    out, kex = await openssh_roundtrip(
        server.port, "srvkex", cipher, mac, client_rekey=None, before_data=small_rekey_limit
    )
    check_echo(out, "srvkex")
    assert kex >= 4, f"only {kex} key exchanges"
    assert len(due) >= 3, f"only {len(due)} chat writes found a rekey due"
    assert set(due) == {direct_write.NOT_SENT}, "the direct writer sent with a rekey due"


class KexCounter(logging.Handler):
    """Counts the key exchanges paramiko finishes (its own log lines;
    ``handle`` holds the handler's lock around ``emit``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Switch to new keys" in record.getMessage():
            self.count += 1


def paramiko_roundtrip(port: int, name: str, cipher: str, mac: str | None) -> tuple[str, int]:
    """A paramiko session pinned to the cipher (and MAC), rekeying every
    512 bytes sent or received; same lines as the OpenSSH test."""
    counter = KexCounter()
    logger = logging.getLogger("paramiko.transport")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        options = transport.get_security_options()
        options.ciphers = (cipher,)
        if mac is not None:
            options.digests = (mac,)
        transport.start_client(timeout=10)
        transport.packetizer.REKEY_BYTES = 512  # either direction: a key exchange every half KB
        transport.auth_interactive(name, lambda title, instructions, prompts: [])
        assert transport.remote_cipher == cipher and transport.local_cipher == cipher
        if mac is not None:
            assert transport.remote_mac == mac and transport.local_mac == mac
        chan = transport.open_session()
        chan.settimeout(10)
        chan.invoke_shell()  # no PTY: plain lines
        out = b""
        deadline = time.monotonic() + 20
        for lines in rounds(name):
            chan.sendall(b"".join(line.split(": ", 1)[1].encode() + b"\n" for line in lines))
            while lines[-1].encode() not in out and time.monotonic() < deadline:
                chunk = chan.recv(65536)
                if not chunk:
                    break
                out += chunk
        chan.close()
        return out.decode(errors="replace"), counter.count
    finally:
        transport.close()
        logger.removeHandler(counter)
        logger.setLevel(old_level)


PARAMIKO_CIPHERS = set(paramiko.Transport._preferred_ciphers)
PARAMIKO_MACS = set(paramiko.Transport._preferred_macs)


@pytest.mark.parametrize(("cipher", "mac"), PAIRS)
async def test_paramiko_every_offered_cipher_and_mac_through_rekeys(
    start_server, cipher: str, mac: str | None
) -> None:
    if cipher not in PARAMIKO_CIPHERS or (mac is not None and mac not in PARAMIKO_MACS):
        pytest.skip(f"paramiko {paramiko.__version__} has no {cipher if cipher not in PARAMIKO_CIPHERS else mac}")
    server: Server = await start_server()
    out, kex = await asyncio.to_thread(paramiko_roundtrip, server.port, "pmko", cipher, mac)
    check_echo(out, "pmko")
    assert kex >= 4, f"only {kex} key exchanges"
