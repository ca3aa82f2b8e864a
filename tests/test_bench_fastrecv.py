"""The load generator's lean receive path delivers what asyncssh would."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.server import Server


@pytest.mark.parametrize("cipher", ["aes128-gcm@openssh.com", "aes128-ctr"])
async def test_lean_receive_gets_every_byte_in_order(start_server, cipher: str) -> None:
    """3 MB in lines of all sizes: more than the client's window, so the
    window must be adjusted as it goes; CTR takes asyncssh's own path."""
    from bench import fastrecv

    server: Server = await start_server()
    fastrecv.install()
    calls = fastrecv.calls
    try:
        client = await server.connect("reader", encryption_algs=[cipher])
        await client.wait_for("reader joined")  # the server's own lines are out of the way
        await asyncio.sleep(0.1)
        (conn,) = server.app.ctx.connections
        (chan,) = conn._channels.values()
        lines = [f"{n:06d} " + "y" * (n * 7919 % 40000) + "\n" for n in range(150)]
        sent = "".join(lines)
        assert len(sent) > 2_900_000
        for line in lines:
            chan.write(line)
            await asyncio.sleep(0)
        tail = lines[-1].rstrip("\n")
        await client.wait_for(tail, timeout=20)
        got = client.text[client.text.index(lines[0][:7]):]
        at = next((i for i, (a, b) in enumerate(zip(got, sent)) if a != b), None)
        assert at is None, (at, len(got), len(sent), got[at - 40:at + 40], sent[at - 40:at + 40])
        assert (fastrecv.calls > calls) == cipher.startswith("aes128-gcm")
        client.line("still two-way")
        await client.wait_for("reader: still two-way")
    finally:
        fastrecv.uninstall()
