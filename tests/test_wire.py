"""ssh/_wire.c, the optional C packet writer: built where it can be, and
sealing exactly as the cryptography library does (the packets themselves
are compared with asyncssh's in test_fastpath.py)."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sshchat.ssh import fastpath


def _can_build() -> bool:
    include = Path(sysconfig.get_paths()["include"])
    compiler = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    return (
        shutil.which(compiler) is not None
        and (include / "Python.h").exists()
        and Path("/usr/include/openssl/evp.h").exists()
    )


def test_built_where_a_compiler_and_openssl_headers_are() -> None:
    """CI installs both (.ci/run): a C part that silently failed to build
    would otherwise leave every C test skipped and the server on Python."""
    if not _can_build():
        pytest.skip("no C compiler, Python.h or OpenSSL headers here: sshchat runs without _wire")
    assert fastpath._wire is not None, "pip install -e . should have built sshchat/ssh/_wire.c"


wire = pytest.importorskip("sshchat.ssh._wire")


@pytest.mark.parametrize("key_bytes", [16, 32])
def test_sealer_matches_aesgcm(key_bytes: int) -> None:
    key = os.urandom(key_bytes)
    sealer, reference = wire.GcmSealer(key), AESGCM(key)
    for size in (0, 1, 15, 16, 17, 100, 4096, 40_000):
        nonce, data, aad = os.urandom(12), os.urandom(size), os.urandom(4)
        assert sealer.encrypt(nonce, data, aad) == reference.encrypt(nonce, data, aad)
    # one context, reused: a packet sealed after others is still right
    nonce = bytes(12)
    assert sealer.encrypt(nonce, b"again", b"") == reference.encrypt(nonce, b"again", b"")


def test_sealer_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        wire.GcmSealer(b"short key")
    sealer = wire.GcmSealer(bytes(16))
    with pytest.raises(ValueError):
        sealer.encrypt(b"11 bytes..", b"data", b"")  # a nonce is 12
    with pytest.raises(RuntimeError):  # never given a key
        wire.GcmSealer.__new__(wire.GcmSealer).encrypt(bytes(12), b"data", b"")


def test_send_data_does_nothing_until_enabled() -> None:
    wire.set_enabled(False)
    try:
        assert wire.send_data(object(), b"data") == fastpath.NOT_SENT
    finally:
        if fastpath._native:
            wire.set_enabled(True)
