"""The command line as a script or a person uses it: real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from sshchat.ssh.hostkey import HostKeyError, fingerprint, load_or_create
from tests.support.clients import KeylessClient
from tests.support.server import ServerProcess

SSHCHAT = [sys.executable, "-m", "sshchat"]


def start(tmp: Path, *args: str) -> tuple[subprocess.Popen[str], ServerProcess]:
    """Start `sshchat serve` in ``tmp``; its port is read from the readiness line."""
    server = ServerProcess(tmp, *args, cwd=tmp)
    return server.proc, server


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SSHCHAT, *args], capture_output=True, text=True, cwd=cwd, timeout=30)


def test_serve_generates_key_listens_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    proc, server = start(tmp_path)
    port = server.port
    try:
        key = tmp_path / "host"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600

        async def chat_until_shutdown() -> tuple[str, int | None]:
            async with asyncssh.connect(
                "127.0.0.1", port, username="alice", known_hosts=None,
                client_keys=None, agent_path=None, client_factory=KeylessClient,
            ) as conn:
                process = await conn.create_process(encoding="utf-8")
                out = await process.stdout.readuntil("alice joined")
                proc.send_signal(signal.SIGTERM)
                out += await asyncio.wait_for(process.stdout.read(), 10)
                await process.wait_closed()
                return out, process.exit_status

        out, _status = asyncio.run(chat_until_shutdown())
        assert "the server is shutting down" in out
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in "".join(server.log)


def test_sigint_stops_with_status_0(tmp_path: Path) -> None:
    proc, _ = start(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--host", "127.0.0.1", "--port", str(port), "--host-key", "k", cwd=tmp_path)
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreadable_host_key_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad").write_text("not a key\n")
    (tmp_path / "bad").chmod(0o600)
    r = run("serve", "--port", "0", "--host-key", "bad", cwd=tmp_path)
    assert r.returncode == 1
    assert "host key bad is not a usable private key" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_bad_option_values(tmp_path: Path) -> None:
    r = run("serve", "--port", "70000", cwd=tmp_path)
    assert r.returncode == 1 and "port must be between 0 and 65535" in r.stderr
    r = run("serve", "--port", "many", cwd=tmp_path)
    assert r.returncode == 2 and "invalid int value" in r.stderr
    r = run(cwd=tmp_path)
    assert r.returncode == 2


def test_environment_and_config_file_reach_serve(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('host = "127.0.0.1"\nport = 1\n')
    server = ServerProcess(
        tmp_path, "--config", "c.toml", "--host-key", "k", env={"SSHCHAT_PORT": "0"}, cwd=tmp_path, bare=True,
    )
    assert server.port not in (0, 1)  # host from the file; port 0 from the environment beat its 1
    assert server.stop() == 0


def test_keygen_writes_and_refuses_to_overwrite(tmp_path: Path) -> None:
    r = run("keygen", "keys/host", cwd=tmp_path)
    assert r.returncode == 0 and "SHA256:" in r.stdout
    path = tmp_path / "keys" / "host"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    r = run("keygen", "keys/host", cwd=tmp_path)
    assert r.returncode == 1 and "already exists; use --force" in r.stderr
    assert path.read_bytes() == before
    r = run("keygen", "keys/host", "--force", cwd=tmp_path)
    assert r.returncode == 0 and path.read_bytes() != before


def test_both_event_loops_serve(tmp_path: Path) -> None:
    for choice in ("asyncio", "uvloop"):
        server = ServerProcess(tmp_path, "--event-loop", choice)
        try:

            async def chat(server: ServerProcess = server, choice: str = choice) -> str:
                async with asyncssh.connect(
                    "127.0.0.1", server.port, username="alice", known_hosts=None,
                    client_keys=None, agent_path=None, client_factory=KeylessClient,
                ) as conn:
                    process = await conn.create_process(encoding="utf-8")
                    process.stdin.write(f"on {choice}\n")
                    return await asyncio.wait_for(process.stdout.readuntil(f"alice: on {choice}"), 10)

            assert f"alice: on {choice}" in asyncio.run(chat())
        finally:
            assert server.stop() == 0
        assert f"event loop: {choice}" in "".join(server.log)


def test_bad_cipher_setting(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('ciphers = "bogus"\n')
    r = run("serve", "--config", "c.toml", "--host", "127.0.0.1", "--port", "0", "--host-key", "k", "--db", ":memory:",
            cwd=tmp_path)
    assert r.returncode == 1
    assert "invalid setting: bogus is not a valid encryption algorithm" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_mac_setting(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('macs = "hmac-bogus"\n')
    r = run("serve", "--config", "c.toml", "--host", "127.0.0.1", "--port", "0", "--host-key", "k", "--db", ":memory:",
            cwd=tmp_path)
    assert r.returncode == 1
    assert "hmac-bogus" in r.stderr and "Traceback" not in r.stderr


# ------------------------------------------------------------ the host key files


def test_host_key_is_0600_from_its_creation_even_with_umask_0(tmp_path: Path) -> None:
    r = subprocess.run(
        [*SSHCHAT, "keygen", "keys/host"], capture_output=True, text=True, cwd=tmp_path, timeout=30, umask=0,
    )
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "keys" / "host").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys" / "host.pub").stat().st_mode) == 0o644


def test_host_key_mode_does_not_wait_for_a_later_chmod(tmp_path: Path, monkeypatch) -> None:
    # Only the mode given when the file is created counts: no chmod after it.
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)
    monkeypatch.setattr(os, "fchmod", lambda *a, **k: None)
    old = os.umask(0)
    try:
        load_or_create(str(tmp_path / "host"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "host").stat().st_mode) == 0o600


def test_a_symlink_at_the_host_key_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (tmp_path / "dangling").symlink_to(tmp_path / "made-by-us")
    (tmp_path / "planted").symlink_to(victim)
    victim.write_text("precious\n")
    for name in ("dangling", "planted"):
        with pytest.raises(HostKeyError, match=f"{name} is a symbolic link"):
            load_or_create(str(tmp_path / name))
        r = run("keygen", name, "--force", cwd=tmp_path)
        assert r.returncode == 1 and f"{name} is a symbolic link" in r.stderr
    r = run("serve", "--port", "0", "--host-key", "planted", cwd=tmp_path)
    assert r.returncode == 1 and "planted is a symbolic link" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "made-by-us").exists()
    assert victim.read_text() == "precious\n"


def test_a_symlink_at_the_public_key_path_is_refused_too(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "host.pub").symlink_to(victim)
    r = run("keygen", "host", cwd=tmp_path)
    assert r.returncode == 1 and "host.pub is a symbolic link" in r.stderr
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "host").exists()  # nothing half-made


def test_an_existing_host_key_is_loaded_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "host"
    first = load_or_create(str(path))
    before = path.read_bytes()
    again = load_or_create(str(path))
    assert fingerprint(again) == fingerprint(first)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620], ids=oct)
def test_a_host_key_others_may_read_is_refused_with_the_chmod_that_mends_it(tmp_path: Path, mode: int) -> None:
    load_or_create(str(tmp_path / "host"))
    (tmp_path / "host").chmod(mode)
    r = run("serve", "--port", "0", "--host-key", "host", cwd=tmp_path)
    assert r.returncode == 1
    assert f"host key host is open to others (mode {mode:04o}); refusing to use it: run chmod 600 host" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "host").chmod(0o600)
    assert fingerprint(load_or_create(str(tmp_path / "host")))  # mended, it loads
