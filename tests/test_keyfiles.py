"""authorized_keys-format files for --admin-keys and --allowlist."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncssh
import pytest

from sshchat.ssh.keyfiles import KeyFileError, read_fingerprints
from tests.support.server import Server


def test_comments_options_and_bad_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    b = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    f = tmp_path / "keys"
    f.write_text(
        "# operators\n\n"
        f"{a.export_public_key().decode().strip()} alice@laptop\n"
        f'no-pty,from="10.0.0.0/8" {b.export_public_key().decode().strip()}\n'
        "ssh-ed25519 AAAAnot-base64 broken\n"
        "garbage line\n"
    )
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        fps = read_fingerprints(str(f))
    assert fps == {a.get_fingerprint("sha256"), b.get_fingerprint("sha256")}
    assert f"{f}:5: not a public key, skipped" in caplog.text
    assert f"{f}:6: not a public key, skipped" in caplog.text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file"):
        read_fingerprints(str(tmp_path / "nope"))


async def test_allowlist_file_over_ssh(start_server, tmp_path: Path, keys) -> None:
    f = tmp_path / "allowed"
    f.write_text(keys["alice"].export_public_key().decode())
    server: Server = await start_server(allowlist=str(f))
    alice = await server.connect("alice", key=keys["alice"])
    assert "Welcome" in alice.text
    for key in (keys["bob"], None):
        other = await server.connect("bob", key=key)
        assert await other.exit_status() == 1
        assert "this server admits only keys on its allowlist" in other.stderr


async def test_admin_keys_file_over_ssh(start_server, tmp_path: Path, keys) -> None:
    f = tmp_path / "admins"
    f.write_text(keys["carol"].export_public_key().decode())
    server: Server = await start_server(admin_keys=str(f))
    boss = await server.connect("boss", key=keys["carol"])
    bob = await server.connect("bob", key=keys["bob"])
    bob.line("/kick boss")
    await bob.wait_for("only operators, and the creator of a room (in that room), can /kick")
    boss.line("/kick bob bye")
    assert await bob.exit_status() == 0
    assert "you were kicked by boss: bye" in bob.text
    await boss.wait_for("bob left (kicked by boss: bye)")
