"""With a real full disk (RLIMIT_FSIZE 0 on a `sshchat serve` process, so
every write to a file fails), a /ban, /topic, /mute or a /nick (which
registers the name to the key) is refused as not saved and changes
nothing; once space returns they work, and after a restart only what was
durable exists."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from tests.support.server import ServerProcess, admin_keys_file, disk_full, login

LOST = "SHA256:" + "L" * 43
KEPT = "SHA256:" + "K" * 43
NOT_SAVED = "was not saved (storage error); nothing changed"


async def test_ban_and_topic_with_the_disk_full_are_refused_and_work_once_space_returns(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    args = ("--admin-keys", str(admin_keys_file(tmp_path, key)))
    server = ServerProcess(tmp_path, *args)
    try:
        dana = await login(server.port, "dana", key=key)
        with disk_full(server.pid):
            dana.line(f"/ban fingerprint:{LOST} lost")
            await dana.wait_for(lambda c: c.text.count(NOT_SAVED) == 1, timeout=10)
            dana.line("/topic the lost topic")
            await dana.wait_for(lambda c: c.text.count(NOT_SAVED) == 2, timeout=10)
        dana.line(f"/ban fingerprint:{KEPT} kept")
        await dana.wait_for("banned", timeout=10)
        dana.line("/topic the kept topic")
        await dana.wait_for("set the topic: the kept topic", timeout=10)
        assert dana.text.count("banned") == 1 and "set the topic: the lost" not in dana.text
        await dana.close()
    finally:
        assert server.stop() == 0, "".join(server.log)
    again = ServerProcess(tmp_path, *args)
    try:
        dana = await login(again.port, "dana", key=key)
        await dana.wait_for("the kept topic", timeout=10)
        dana.line("/banned")
        await dana.wait_for("1 bans:", timeout=10)
        await dana.wait_for(KEPT[:20], timeout=10)
        assert LOST[:20] not in dana.text and "lost topic" not in dana.text
        await dana.close()
    finally:
        assert again.stop() == 0, "".join(again.log)


async def test_nick_and_mute_with_the_disk_full_are_refused_and_work_once_space_returns(tmp_path: Path) -> None:
    key, erin_key, other_key = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(3))
    args = ("--admin-keys", str(admin_keys_file(tmp_path, key)))
    server = ServerProcess(tmp_path, *args)
    try:
        dana = await login(server.port, "dana", key=key)
        erin = await login(server.port, "erin", key=erin_key)
        with disk_full(server.pid):
            dana.line("/nick lostname")
            await dana.wait_for(
                'the name "lostname" was not saved (storage error); nothing changed, you are still dana'
            )
            dana.line("/mute erin")
            await dana.wait_for(f"the mute on erin {NOT_SAVED}", timeout=10)
        erin.line("still heard")  # (with the disk full, nobody's line is kept: nor heard)
        await dana.wait_for("erin: still heard", timeout=10)
        assert "you were muted" not in erin.text
        dana.line("/nick keptname")
        await dana.wait_for("dana is now known as keptname", timeout=10)
        dana.line("/mute erin")
        await dana.wait_for("muted erin", timeout=10)
        await erin.wait_for("you were muted by keptname", timeout=10)
        await erin.close()
        await dana.close()
    finally:
        assert server.stop() == 0, "".join(server.log)
    again = ServerProcess(tmp_path, *args)
    try:
        other = await login(again.port, "lostname", key=other_key)  # never registered: free
        other.line("/nick keptname")  # registered to dana's key for good
        await other.wait_for('the name "keptname" is registered to another key', timeout=10)
        erin = await login(again.port, "erin", key=erin_key)
        await erin.wait_for("you are muted", timeout=10)
        erin.line("not heard")
        other.line("heard")
        await other.wait_for("lostname: heard", timeout=10)
        assert "erin: not heard" not in other.text
        await other.close()
        await erin.close()
    finally:
        assert again.stop() == 0, "".join(again.log)
