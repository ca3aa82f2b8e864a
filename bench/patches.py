"""Each asyncssh patch's own step, timed against asyncssh's: ``python -m bench.patches``.

A tight loop per step, on this process's CPU (best of several runs), with
asyncssh's function and ours side by side: one 156-byte packet sealed
(AES-GCM, chacha20-poly1305), one options rebuild at login, one ML-KEM-768
key pair, one disabled log call and one packet-log call. What the output
path gains as a whole (the direct writer, the IGNORE trim) is measured by
``python -m bench.hotpath --without PATCH``; logins as a whole by
``python -m bench.loadgen --logins-only`` with ``SSHCHAT_FAST_PATH=false``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, ClassVar

import asyncssh
from asyncssh.crypto.chacha import ChachaCipher
from asyncssh.crypto.cipher import GCMCipher
from asyncssh.logging import logger as asyncssh_logger
from asyncssh.packet import SSHPacketLogger
from cryptography.hazmat.primitives.asymmetric import mlkem

from sshchat.ssh import patches
from sshchat.ssh.patches import chacha_one_keystream, gcm_one_context, log_level_first

PACKET = 156  # bytes: a chat line of ~100 characters in one CHANNEL_DATA packet


def per_call_us(fn: Callable[[], object], calls: int, runs: int = 5) -> float:
    """CPU microseconds per call, best of ``runs``."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, time.process_time() - start)
    return best * 1e6 / calls


def _seal(calls: int) -> list[tuple[str, float, float]]:
    header, data = os.urandom(4), os.urandom(PACKET - 4)
    gcm = GCMCipher("aes128-gcm", os.urandom(16), os.urandom(12))
    chacha = ChachaCipher(os.urandom(64))
    nonce = os.urandom(8)
    return [
        ("gcm_one_context: seal one packet (AES-128-GCM)",
         per_call_us(lambda: GCMCipher.encrypt_and_sign(gcm, header, data), calls),
         per_call_us(lambda: gcm_one_context.encrypt_and_sign(gcm, header, data), calls)),
        ("chacha_one_keystream: seal one packet",
         per_call_us(lambda: ChachaCipher.encrypt_and_sign(chacha, header, data, nonce), calls),
         per_call_us(lambda: chacha_one_keystream.encrypt_and_sign(chacha, header, data, nonce), calls)),
    ]


def _reload(calls: int) -> tuple[str, float, float]:
    """What asyncssh's reload_config does at each login without a config
    file (a full options build, in a worker thread); ours does nothing."""
    key = asyncssh.generate_private_key("ssh-ed25519")

    async def rebuild_all() -> float:
        options = await asyncssh.SSHServerConnectionOptions.construct(server_host_keys=[key], rdns_lookup=False)
        start = time.process_time()
        for _ in range(calls):
            await asyncssh.SSHServerConnectionOptions.construct(
                options=options, reload=True, accept_addr="127.0.0.1", accept_port=2222,
                username="someone", client_host="127.0.0.1", client_addr="127.0.0.1",
            )
        return (time.process_time() - start) * 1e6 / calls

    return ("skip_login_reload: options rebuild per login", asyncio.run(rebuild_all()), 0.0)


def _mlkem(calls: int) -> tuple[str, float, float]:
    return ("lazy_mlkem: ML-KEM-768 key pair per login (server)",
            per_call_us(mlkem.MLKEM768PrivateKey.generate, calls), 0.0)


class _PacketLog(SSHPacketLogger):
    _handler_names: ClassVar[dict[int, str]] = {94: "MSG_CHANNEL_DATA"}

    @property
    def logger(self) -> Any:
        return asyncssh_logger


def _logging(calls: int) -> list[tuple[str, float, float]]:
    """asyncssh's logger at WARNING, as sshchat sets it: both calls log nothing."""
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    packet_log, payload = _PacketLog(), os.urandom(PACKET)
    original_log_packet, original_log = SSHPacketLogger._log_packet, type(asyncssh_logger).log

    def theirs_packet() -> None:
        original_log_packet(packet_log, "Sent", 94, 7, payload, "")

    def ours_packet() -> None:
        log_level_first._log_packet(packet_log, "Sent", 94, 7, payload, "")

    def theirs_info() -> None:
        original_log(asyncssh_logger, logging.INFO, "Accepted SSH connection from %s", ("127.0.0.1", 50000))

    def ours_info() -> None:
        log_level_first._log(asyncssh_logger, logging.INFO, "Accepted SSH connection from %s", ("127.0.0.1", 50000))

    return [
        ("log_level_first: one packet's log call (packet logging off)",
         per_call_us(theirs_packet, calls), per_call_us(ours_packet, calls)),
        ("log_level_first: one INFO call (logger at WARNING)",
         per_call_us(theirs_info, calls), per_call_us(ours_info, calls)),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.patches", description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=20_000, help="calls per timed run of the per-packet steps")
    args = p.parse_args(argv)
    if not 100 <= args.calls <= 10_000_000:
        p.error("--calls 100..10000000")
    patches.uninstall()  # asyncssh's own functions where we call "theirs"
    patches.install()  # gate and set-up (log_level_first needs its logger class); "theirs" are kept above
    patches.uninstall()
    rows = [*_seal(args.calls), _reload(max(10, args.calls // 200)), _mlkem(max(10, args.calls // 20)),
            *_logging(args.calls)]
    print(f"{'step':62s} {'asyncssh us':>12s} {'patched us':>11s}")
    for label, theirs, ours in rows:
        print(f"{label:62s} {theirs:12.2f} {ours:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
