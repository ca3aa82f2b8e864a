"""The bot interface: say, tail, who; with and without --json; piped input."""

from __future__ import annotations

import json
import re

import pytest

from sshchat.chat.bots import UsageError, parse
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.store.memory import MemoryStore
from tests.support.channel import open_session, settle
from tests.support.chat import Recorder
from tests.support.server import Server
from tests.support.settings import chat_settings


async def run(server: Server, name: str, command: str, stdin: str | None = None, **kw) -> tuple[int | None, str, str]:
    client = await server.connect(name, command=command, wait_joined=False, **kw)
    if stdin is not None:
        client.send(stdin)
        client.process.stdin.write_eof()
    status = await client.exit_status(timeout=10)
    return status, client.output, client.stderr


def test_parse() -> None:
    assert parse("say #ops deploy done").text == "deploy done"
    assert parse("say #ops deploy done").room == "#ops"
    cmd = parse("tail #ops -n 5 --follow --json")
    assert (cmd.room, cmd.count, cmd.follow, cmd.as_json) == ("#ops", 5, True, True)
    assert parse("who --json").room == "#lobby"
    assert parse("say it's done").text == "it's done"  # no shell quoting rules for TEXT
    for bad in ("", "dance", "tail --bogus", "who -n 3", "tail -n 'unclosed"):
        with pytest.raises(UsageError):
            parse(bad)


async def test_say_posts_one_message_and_exits_0(server: Server) -> None:
    watcher = await server.connect("watcher")
    status, _, err = await run(server, "deploybot", "say deploy finished: v1.2")
    assert status == 0 and err == ""
    await watcher.wait_for("deploybot: deploy finished: v1.2")
    assert "deploybot joined" not in watcher.text  # bots do not come and go


async def test_say_to_a_room_and_from_piped_input(server: Server) -> None:
    member = await server.connect("member")
    member.line("/join #ops")
    await member.wait_for("now in #ops")
    status, _, _ = await run(server, "bot", "say #ops", stdin="line one\nline two\n")
    assert status == 0
    await member.wait_for("bot: line two")
    assert "bot: line one" in member.text
    status, _, err = await run(server, "bot", "say #nowhere hi")
    assert status == 1 and "no room called #nowhere" in err


async def test_a_refused_line_ends_say_and_the_lines_after_it_are_not_posted() -> None:
    """Lines that arrive together (one SSH packet) stop at the first refusal,
    with its status and error, as a script's set -e would."""
    hub = Hub(MemoryStore(), chat_settings(max_message_chars=10))
    reader = Recorder()
    hub.join("reader", None, reader)
    session, chan, _ = open_session(hub, "bot", pty=False, command="say", max_message_chars=10)
    session.data_received("first\n" + "x" * 11 + "\nafter\n", None)  # one chunk of input
    session.eof_received()
    await settle()
    assert chan.status == 1
    assert "".join(chan.stderr) == "sshchat: message too long (11 characters, at most 10); not sent\n"
    assert reader.texts(Kind.CHAT) == ["first"]


async def test_tail_plain_and_json(server: Server) -> None:
    alice = await server.connect("alice")
    for n in range(5):
        alice.line(f"message {n}")
    await alice.wait_for("alice: message 4")
    status, out, _ = await run(server, "reader", "tail -n 3")
    assert status == 0
    assert out.splitlines() == ["alice: message 2", "alice: message 3", "alice: message 4"]
    status, out, _ = await run(server, "reader", "tail -n 2 --json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == ["message 3", "message 4"]
    assert set(rows[0]) == {"id", "room", "time", "sender", "kind", "text"}
    assert rows[0]["room"] == "#lobby" and rows[0]["kind"] == "chat" and rows[0]["sender"] == "alice"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rows[0]["time"])
    assert rows[0]["id"] < rows[1]["id"]
    assert "\x1b" not in out


async def test_a_following_bot_misses_nothing_and_keeps_order(server: Server) -> None:
    follower = await server.connect("follower", command="tail -n 0 --follow --json", wait_joined=False)
    follower.process.stdin.write_eof()  # as with stdin at /dev/null: it keeps following
    talkers = [await server.connect("t0")]
    await follower.wait_for('"text": "t0 joined')  # it follows from here on
    talkers += [await server.connect(f"t{n}") for n in (1, 2)]
    for n in range(30):
        for i, t in enumerate(talkers):
            t.line(f"{i}:{n}")
    await follower.wait_for(lambda c: c.output.count('"kind": "chat"') >= 90, timeout=10)
    rows = [json.loads(line) for line in follower.output.splitlines()]
    chats = [r for r in rows if r["kind"] == "chat"]
    assert len(chats) == 90
    assert [r["id"] for r in chats] == sorted(r["id"] for r in chats)
    for i in range(3):
        assert [int(r["text"].split(":")[1]) for r in chats if r["text"].startswith(f"{i}:")] == list(range(30))
    # Everyone else saw the same order.
    order = [f"{r['sender']}: {r['text']}" for r in chats]
    await talkers[0].wait_for(lambda c: len(re.findall(r"^t\d: \d+:\d+$", c.text, re.M)) >= 90)
    assert re.findall(r"^t\d: \d+:\d+$", talkers[0].text, re.M) == order
    # It is not a member: /names does not list it.
    talkers[0].line("/names")
    await talkers[0].wait_for("3 in #lobby: t0, t1, t2")


async def test_who_plain_and_json(server: Server) -> None:
    await server.connect("alice")
    bob = await server.connect("bob")
    bob.line("/away lunch")
    await bob.wait_for("you are away")
    status, out, _ = await run(server, "bot", "who")
    assert status == 0 and out.splitlines() == ["alice", "bob (away)"]
    status, out, _ = await run(server, "bot", "who --json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["alice", "bob"] and rows[1]["away"] == "lunch"


async def test_unknown_command_prints_usage_and_exits_2(server: Server) -> None:
    status, _, err = await run(server, "bot", "dance --wildly")
    assert status == 2
    assert "unknown command 'dance'" in err and "usage: ssh [-p PORT] NAME@HOST COMMAND" in err


async def test_bots_obey_bans_names_mutes_and_rate_limits(start_server, keys) -> None:
    server: Server = await start_server(rate_burst=3, rate_per_second=0.01, admin_keys="")
    alice = await server.connect("alice", key=keys["alice"])
    # A registered name needs its key.
    status, _, err = await run(server, "alice", "say I am alice", key=keys["bob"])
    assert status == 1 and "registered to another key" in err
    status, _, err = await run(server, "alice", "say from alice's own key", key=keys["alice"])
    assert status == 0
    # The rate limit follows the identity across connections.
    results = [await run(server, "spammer", f"say spam {n}") for n in range(5)]
    assert [r[0] for r in results] == [0, 0, 0, 1, 1]
    assert "slow down" in results[3][2]  # the same refusal a person gets
    await alice.wait_for("spammer: spam 2")
    assert "spam 3" not in alice.text
    # Invalid names are refused the same way.
    status, _, err = await run(server, "9bot", "say hi")
    assert status == 1 and 'invalid name "9bot"' in err


async def test_muted_bot_is_refused(start_server, keys, tmp_path) -> None:
    admins = tmp_path / "admins"
    admins.write_text(keys["carol"].export_public_key().decode())
    server: Server = await start_server(admin_keys=str(admins))
    boss = await server.connect("boss", key=keys["carol"])
    status, _, _ = await run(server, "bot", "say first", key=keys["bob"])
    assert status == 0
    boss.line("/mute bot")
    await boss.wait_for("muted bot")
    status, _, err = await run(server, "bot", "say second", key=keys["bob"])
    assert status == 1 and "you are muted" in err


async def test_followers_are_told_when_the_server_stops(start_server) -> None:
    server: Server = await start_server(shutdown_grace=2)
    follower = await server.connect("follower", command="tail --follow", wait_joined=False)
    await server.connect("probe")
    await follower.wait_for("probe joined")  # it follows from here on
    await server.app.stop()
    assert await follower.exit_status() == 0
    assert "the server is shutting down" in follower.stderr


async def test_a_ban_ends_a_following_bot(start_server, keys, tmp_path) -> None:
    admins = tmp_path / "admins"
    admins.write_text(keys["carol"].export_public_key().decode())
    server: Server = await start_server(admin_keys=str(admins))
    boss = await server.connect("boss", key=keys["carol"])
    follower = await server.connect("spy", command="tail --follow", wait_joined=False, key=keys["bob"])
    boss.line("anyone following?")
    await follower.wait_for("boss: anyone following?")  # it follows from here on
    boss.line("/ban spy")
    await boss.wait_for("banned spy")
    assert await follower.exit_status() == 0
    assert "you were banned by boss" in follower.stderr


async def test_a_bot_whose_name_could_not_be_registered_is_told_on_stderr() -> None:
    """As a person is told: the name is the bot's for this command only."""
    from sshchat.config import Config
    from sshchat.ssh.context import Peer, ServerContext
    from sshchat.ssh.session import Session
    from tests.support.channel import FakeChannel, FakeConn

    store = MemoryStore()
    hub = Hub(store, chat_settings())
    reader = Recorder()
    hub.join("reader", None, reader)
    store.fail_saves = True  # the disk is full: the name's binding is not kept
    conn, chan = FakeConn(), FakeChannel()
    peer = Peer(conn, "keybot", "SHA256:keybot-key-00000000000000000000000000000", "127.0.0.1")  # type: ignore[arg-type]
    session = Session(ServerContext(hub, Config()), peer)
    session.connection_made(chan)  # type: ignore[arg-type]
    session.exec_requested("say deployed")
    session.session_started()
    await settle()
    assert chan.status == 0 and reader.texts(Kind.CHAT) == ["deployed"]
    assert "".join(chan.stderr) == (
        'sshchat: your name "keybot" was not registered to your key (storage error); '
        "it is yours for this session only\n"
    )
    assert hub.names.binding("keybot") is None

