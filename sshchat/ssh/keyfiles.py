"""Read public keys from authorized_keys-format files into fingerprints.

Used for --admin-keys and --allowlist. A bad line is skipped with a warning
naming the file and line, so one typo does not lock everyone out.
"""

from __future__ import annotations

import logging

import asyncssh

log = logging.getLogger("sshchat")


class KeyFileError(Exception):
    """A key file that cannot be read at all."""


def _key_in(line: str) -> asyncssh.SSHKey | None:
    """The public key on an authorized_keys line, skipping any options."""
    words = line.split()
    for i in range(len(words) - 1):  # options come first and may be anything
        try:
            return asyncssh.import_public_key(f"{words[i]} {words[i + 1]}")
        except (asyncssh.KeyImportError, ValueError):
            continue
    return None


def read_fingerprints(path: str) -> set[str]:
    """SHA256 fingerprints of the keys listed in ``path``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    found: set[str] = set()
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key = _key_in(line)
        if key is None:
            log.warning("%s:%d: not a public key, skipped", path, number)
            continue
        found.add(key.get_fingerprint("sha256"))
    return found
