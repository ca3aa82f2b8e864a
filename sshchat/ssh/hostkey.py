"""Load the server's host key, or make one the first time.

The key object is loaded once and handed to asyncssh, rather than its path:
given a path, asyncssh re-reads the file for every connection.

The files are never written or read through a symbolic link: one planted at
the path (in a shared or badly-owned directory) would otherwise make the
server write its secret key where someone else can read it, or overwrite
some other file. The secret key is created with O_EXCL|O_NOFOLLOW and mode
0600 in the same call, so there is no moment it exists with another mode; an existing one that
others may read is refused with the chmod that mends it, as sshd does.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import tempfile

import asyncssh

log = logging.getLogger("sshchat")

_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


class HostKeyError(Exception):
    """A host key that cannot be read or written; ``str()`` says why."""


def _symlink_refusal(path: str) -> HostKeyError:
    return HostKeyError(f"{path} is a symbolic link; refusing to use it for the host key (give the real path)")


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` (it must not exist, not even as a dangling link)."""
    fd = os.open(path, _NEW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # the umask may only have taken bits away
            f.write(data)
    except BaseException:
        os.unlink(path)
        raise


def _write_over(path: str, data: bytes, mode: int) -> None:
    """Replace ``path`` whole: a fresh file (O_EXCL|O_NOFOLLOW, mode 0600
    from the start) renamed over it; a rename replaces a link, never its target."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".sshchat-key-")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def generate(path: str, force: bool = False) -> asyncssh.SSHKey:
    """Write a new ed25519 host key to ``path`` (0600) and ``path.pub`` (0644)."""
    for p in (path, path + ".pub"):
        if os.path.islink(p):
            raise _symlink_refusal(p)
    if os.path.lexists(path) and not force:
        raise HostKeyError(f"{path} already exists; use --force to replace it")
    key = asyncssh.generate_private_key("ssh-ed25519")
    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
        (_write_over if force else _write_new)(path, key.export_private_key(), 0o600)
        _write_over(path + ".pub", key.export_public_key(), 0o644)  # a stale one is replaced
    except FileExistsError:  # someone made it since we looked
        raise HostKeyError(f"{path} already exists; use --force to replace it") from None
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link planted since we looked
            raise _symlink_refusal(path) from None
        raise HostKeyError(f"cannot write host key {path}: {e.strerror}") from None
    return key


def _read(path: str) -> bytes:
    """The secret key's bytes; refused, as sshd refuses one, if others than
    its owner may read or write it (it may have been copied already, but
    running with it would hide that)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode & 0o777
        if mode & 0o077:
            raise HostKeyError(
                f"host key {path} is open to others (mode {mode:04o}); "
                f"refusing to use it: run chmod 600 {shlex.quote(path)}"
            )
        return f.read()


def load_or_create(path: str, create: bool = True) -> asyncssh.SSHKey:
    """The host key at ``path``; generated (and logged) if missing and ``create``."""
    if os.path.islink(path):
        raise _symlink_refusal(path)
    if not os.path.lexists(path) and not create:
        raise HostKeyError(f"cannot read host key {path}: it is missing")
    if not os.path.lexists(path):
        key = generate(path)
        log.info("generated a new ed25519 host key in %s (%s)", path, fingerprint(key))
        return key
    try:
        return asyncssh.import_private_key(_read(path))
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _symlink_refusal(path) from None
        raise HostKeyError(f"cannot read host key {path}: {e.strerror}") from None
    except (asyncssh.KeyImportError, ValueError) as e:
        raise HostKeyError(f"host key {path} is not a usable private key: {e}") from None


def fingerprint(key: asyncssh.SSHKey) -> str:
    """The SHA256 fingerprint people compare with what their client shows."""
    return key.get_fingerprint("sha256")
