"""A second, independent SSH implementation (paramiko) as the client."""

from __future__ import annotations

import asyncio
import time

import paramiko
import pytest

from tests.support.clients import ANSI_RE
from tests.support.server import Server


def paramiko_session(port: int, name: str, key: paramiko.PKey | None) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    if key is None:
        transport = paramiko.Transport(("127.0.0.1", port))
        transport.start_client(timeout=10)
        transport.auth_interactive(name, lambda title, instructions, prompts: [])
        client._transport = transport  # type: ignore[attr-defined]
    else:
        client.connect("127.0.0.1", port, username=name, pkey=key, look_for_keys=False, allow_agent=False, timeout=10)
    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.get_pty(term="xterm", width=80, height=24)
    chan.invoke_shell()
    chan.settimeout(10)
    return client, chan


def read_until(chan: paramiko.Channel, text: str, timeout: float = 10) -> str:
    got = b""
    deadline = time.monotonic() + timeout
    while text not in ANSI_RE.sub("", got.decode(errors="replace")):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {text!r} in {got!r}")
        got += chan.recv(65536)
    return got.decode()


@pytest.mark.parametrize("with_key", [True, False])
async def test_paramiko_client_chats(server: Server, with_key: bool) -> None:
    watcher = await server.connect("watcher")
    key = paramiko.Ed25519Key.generate() if with_key and hasattr(paramiko.Ed25519Key, "generate") else None
    if with_key and key is None:
        key = paramiko.RSAKey.generate(2048)

    def chat() -> str:
        client, chan = paramiko_session(server.port, "pk", key)
        try:
            read_until(chan, "[pk #lobby]")
            chan.sendall(b"hello from paramiko\r")
            return read_until(chan, "pk: hello from paramiko")
        finally:
            client.close()

    await asyncio.to_thread(chat)
    await watcher.wait_for("pk: hello from paramiko")
    await watcher.wait_for("pk left")
