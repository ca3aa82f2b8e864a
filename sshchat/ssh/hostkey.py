"""Load the server's host key, or make one the first time.

The key object is loaded once and handed to asyncssh, rather than its path:
given a path, asyncssh re-reads the file for every connection.
"""

from __future__ import annotations

import logging
import os

import asyncssh

log = logging.getLogger("sshchat")


class HostKeyError(Exception):
    """A host key that cannot be read or written; ``str()`` says why."""


def generate(path: str, force: bool = False) -> asyncssh.SSHKey:
    """Write a new ed25519 host key to ``path`` with mode 0600."""
    if os.path.exists(path) and not force:
        raise HostKeyError(f"{path} already exists; use --force to replace it")
    key = asyncssh.generate_private_key("ssh-ed25519")
    data = key.export_private_key()
    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
        # Created with 0600 from the start: never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
        with open(path + ".pub", "wb") as f:
            f.write(key.export_public_key())
    except OSError as e:
        raise HostKeyError(f"cannot write host key {path}: {e.strerror}") from None
    return key


def load_or_create(path: str) -> asyncssh.SSHKey:
    """The host key at ``path``; generated (and logged) if missing."""
    if not os.path.exists(path):
        key = generate(path)
        log.info("generated a new ed25519 host key in %s (%s)", path, fingerprint(key))
        return key
    try:
        return asyncssh.read_private_key(path)
    except OSError as e:
        raise HostKeyError(f"cannot read host key {path}: {e.strerror}") from None
    except (asyncssh.KeyImportError, ValueError) as e:
        raise HostKeyError(f"host key {path} is not a usable private key: {e}") from None


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The SHA256 fingerprint people compare with what their client shows."""
    return key.get_fingerprint("sha256")
