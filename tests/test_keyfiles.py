"""authorized_keys-format files for --admin-keys and --allowlist."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import asyncssh
import pytest

from sshchat.ssh.keyfiles import KeyFileError, parse_expiry, read_key_file
from tests.support.server import Server
from tests.support.waiting import eventually


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
        fps = read_key_file(str(f)).fingerprints()
    assert fps == {a.get_fingerprint("sha256"), b.get_fingerprint("sha256")}
    assert f"{f}:5: not a public key, skipped" in caplog.text
    assert f"{f}:6: not a public key, skipped" in caplog.text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file"):
        read_key_file(str(tmp_path / "nope"))


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


# ------------------------------------------------ options: honoured or refused


def _pub(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


def test_unsupported_options_refuse_the_line_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ks = [asyncssh.generate_private_key("ssh-ed25519") for _ in range(6)]
    f = tmp_path / "admins"
    f.write_text(
        f'command="/bin/true" {_pub(ks[0])}\n'
        f"cert-authority {_pub(ks[1])}\n"
        f'environment="A=b",from="127.0.0.1" {_pub(ks[2])}\n'
        f"frobnicate {_pub(ks[3])}\n"
        f'from="10.0.0.1/8" {_pub(ks[4])}\n'  # host bits set: sshd rejects it too
        f"restrict,pty {_pub(ks[5])}\n"
    )
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        fps = read_key_file(str(f)).fingerprints()
    assert fps == set()
    for number, word in enumerate(["command", "cert-authority", "environment", "frobnicate", "10.0.0.1/8", "pty"], 1):
        assert f"{f}:{number}: " in caplog.text
        line = next(x for x in caplog.text.splitlines() if f"{f}:{number}: " in x)
        assert word in line and "not admitted" in line


def test_options_that_withhold_what_sshchat_never_gives_are_honoured(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    f = tmp_path / "keys"
    f.write_text(f"restrict,no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc {_pub(a)}\n")
    assert read_key_file(str(f)).fingerprints() == {a.get_fingerprint("sha256")}


def test_from_patterns_follow_sshd(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    fp = a.get_fingerprint("sha256")
    f = tmp_path / "keys"
    f.write_text(f'from="!10.0.0.5,10.0.0.0/8,192.168.1.*,2001:db8::/32,*.example.com" {_pub(a)} someone\n')
    keys = read_key_file(str(f))
    assert keys.fingerprints() == {fp}
    now = time.time()
    for address in ("10.1.2.3", "192.168.1.77", "2001:db8::1"):
        assert keys.refusal(fp, address, now) is None, address
    for address in ("10.0.0.5", "11.0.0.1", "192.168.2.1", "2001:db9::1", "127.0.0.1"):
        refusal = keys.refusal(fp, address, now)
        assert refusal is not None and f"{f}:1" in refusal, address
    # a key the file does not name: nothing to say about it
    assert keys.refusal("SHA256:other", "127.0.0.1", now) is None


def test_any_line_for_the_key_may_admit_it(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    fp = a.get_fingerprint("sha256")
    f = tmp_path / "keys"
    f.write_text(f'from="10.0.0.1" {_pub(a)}\nfrom="127.0.0.1" {_pub(a)}\n')
    keys = read_key_file(str(f))
    assert keys.refusal(fp, "127.0.0.1", time.time()) is None
    assert keys.refusal(fp, "10.0.0.2", time.time()) is not None


def test_expiry_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(2))
    f = tmp_path / "keys"
    f.write_text(f'expiry-time="20200101" {_pub(a)}\nexpiry-time="20991231235959Z" {_pub(b)}\n')
    with caplog.at_level(logging.WARNING, logger="sshchat"):
        keys = read_key_file(str(f))
    assert f"{f}:1: expired" in caplog.text
    fp = b.get_fingerprint("sha256")
    assert keys.fingerprints() == {fp}
    assert keys.refusal(fp, "127.0.0.1", time.time()) is None
    assert keys.refusal(fp, "127.0.0.1", parse_expiry("21000101Z")) is not None
    assert parse_expiry("20991231235959Z") == 4102444799.0
    for bad in ("2099", "209912311", "20991341", "abcdefgh"):
        with pytest.raises(ValueError):
            parse_expiry(bad)


async def test_admin_key_with_from_elsewhere_is_no_admin_over_ssh(start_server, tmp_path: Path, keys) -> None:
    f = tmp_path / "admins"
    f.write_text(
        f'from="10.9.9.9" {_pub(keys["carol"])}\n'
        f'from="127.0.0.1",expiry-time="20991231" {_pub(keys["alice"])}\n'
    )
    server: Server = await start_server(admin_keys=str(f))
    # From 127.0.0.1 carol's key is not accepted at all, as sshd would not
    # (OpenSSH then goes on to keyboard-interactive and comes in keyless).
    with pytest.raises(asyncssh.PermissionDenied):
        await server.connect("fake", key=keys["carol"])
    fake = await server.connect("fake")
    boss = await server.connect("boss", key=keys["alice"])
    fake.line("/kick boss")
    await fake.wait_for("only operators, and the creator of a room (in that room), can /kick")
    boss.line("/kick fake bye")
    assert await fake.exit_status() == 0
    assert "you were kicked by boss: bye" in fake.text


async def test_allowlist_key_with_from_elsewhere_is_refused_over_ssh(start_server, tmp_path: Path, keys) -> None:
    f = tmp_path / "allowed"
    f.write_text(f'from="10.9.9.9" {_pub(keys["bob"])}\nfrom="127.0.0.0/8" {_pub(keys["alice"])}\n')
    server: Server = await start_server(allowlist=str(f))
    alice = await server.connect("alice", key=keys["alice"])
    assert "Welcome" in alice.text
    with pytest.raises(asyncssh.PermissionDenied):
        await server.connect("bob", key=keys["bob"])
    bob = await server.connect("bob")  # what OpenSSH does next: no key
    assert await bob.exit_status() == 1
    assert "this server admits only keys on its allowlist" in bob.stderr


async def test_a_session_ends_when_its_keys_expiry_time_passes(start_server, tmp_path: Path, keys) -> None:
    """expiry-time= holds for the whole session, not only at login."""
    soon = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 3))
    f = tmp_path / "allowed"
    f.write_text(
        f'expiry-time="{soon}" {_pub(keys["alice"])}\n'
        f'expiry-time="20991231Z" {_pub(keys["bob"])}\n'
    )
    server: Server = await start_server(allowlist=str(f))
    alice = await server.connect("alice", key=keys["alice"])
    bob = await server.connect("bob", key=keys["bob"])
    assert "Welcome" in alice.text and "Welcome" in bob.text
    await eventually(lambda: "expiry-time has passed" in alice.text, timeout=10, message="alice's session ended")
    assert await alice.exit_status() == 0
    await bob.wait_for("alice left")
    bob.line("still here")
    await bob.wait_for("bob: still here")  # a key that has not expired stays


def test_until_when_a_file_admits_a_key(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519")
    fp = a.get_fingerprint("sha256")
    f = tmp_path / "keys"
    f.write_text(f'expiry-time="20980101Z" {_pub(a)}\nexpiry-time="20990101Z",from="10.0.0.0/8" {_pub(a)}\n')
    keys = read_key_file(str(f))
    now = time.time()
    assert keys.admitted_until(fp, "127.0.0.1", now) == parse_expiry("20980101Z")
    assert keys.admitted_until(fp, "10.1.2.3", now) == parse_expiry("20990101Z")  # the latest line that admits it
    assert keys.admitted_until("SHA256:other", "127.0.0.1", now) is None
