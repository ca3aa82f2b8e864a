"""End to end over SSH with scripted asyncssh clients: what arrives where."""

from __future__ import annotations

import asyncio
import re

import asyncssh
import pytest

from tests.support.server import Server


async def test_join_and_leave_notices(server: Server, keys) -> None:
    alice = await server.connect("alice", key=keys["alice"])
    await alice.wait_for("alice joined (1 online)")
    bob = await server.connect("bob", key=keys["bob"])
    await alice.wait_for("bob joined (2 online)")
    assert "Welcome to sshchat, bob!" in bob.text
    bob.line("/quit")
    assert await bob.exit_status() == 0
    await alice.wait_for("bob left")


async def test_messages_reach_everyone_in_order_under_concurrent_senders(server: Server) -> None:
    clients = [await server.connect(f"user{i}") for i in range(5)]
    per_sender = 40
    for n in range(per_sender):
        for i, c in enumerate(clients):
            c.line(f"m {i} {n}")
    pattern = re.compile(r"^user(\d): m (\d) (\d+)$", re.M)

    def got_all(c) -> bool:
        return len(pattern.findall(c.text)) == per_sender * len(clients)

    for c in clients:
        await c.wait_for(got_all, timeout=15)
    orders = [[m.group(0) for m in pattern.finditer(c.text)] for c in clients]
    # Everyone saw the same sequence, and each sender's messages in send order.
    assert all(order == orders[0] for order in orders)
    for i in range(len(clients)):
        mine = [int(n) for s, _, n in pattern.findall(clients[0].text) if s == str(i)]
        assert mine == list(range(per_sender))


async def test_private_message_reaches_only_its_two_parties(server: Server) -> None:
    alice, bob, carol = [await server.connect(n) for n in ("alice", "bob", "carol")]
    alice.line("/msg bob the secret is 42")
    await bob.wait_for("[pm] alice -> bob: the secret is 42")
    await alice.wait_for("[pm] alice -> bob: the secret is 42")
    alice.line("public after")  # a marker: once carol has it, she would have had the pm
    await carol.wait_for("alice: public after")
    assert "secret" not in carol.text
    alice.line("/msg nobody-here hi")
    await alice.wait_for("no one called nobody-here is online")


async def test_commands(server: Server, keys) -> None:
    alice = await server.connect("alice", key=keys["alice"])
    bob = await server.connect("bob")
    alice.line("/help")
    await alice.wait_for("/help COMMAND explains one")
    for name in ("/me", "/msg", "/names", "/nick", "/quit", "/join", "/part", "/rooms", "/topic", "/reply", "/whois"):
        assert name in alice.text
    assert "/ban" not in alice.text  # operators only
    alice.line("/help msg")
    await alice.wait_for("/msg NAME TEXT: send a private message")
    await alice.wait_for("example: /msg bob see you at 5")
    alice.line("/me waves")
    await bob.wait_for("* alice waves")
    bob.line("/names")
    await bob.wait_for("2 in #lobby: alice, bob")
    bob.line("/whois alice")
    fp = keys["alice"].get_fingerprint("sha256")
    await bob.wait_for(f"alice: key {fp} (registered); connected since")
    alice.line("/whois bob")
    await alice.wait_for(re.compile(r"bob: no key \(not registered\); connected since .* idle \d+s"))
    alice.line("/nick Alicia")
    await bob.wait_for("alice is now known as Alicia")
    bob.line("hello Alicia")
    await alice.wait_for("bob: hello Alicia")
    bob.line("/nick alicia")
    await bob.wait_for('the name "Alicia" is already in use')
    bob.line("/nick bad name")
    await bob.wait_for('invalid name "bad name": use 1-16 letters')
    bob.line("/frobnicate")
    await bob.wait_for("unknown command /frobnicate; type /help for the list")
    bob.line("/msg alicia")
    await bob.wait_for("usage: /msg NAME TEXT")
    bob.line("//not a command")
    await alice.wait_for("bob: /not a command")
    # Errors and replies went only to the person who typed the command.
    assert "unknown command" not in alice.text and "usage:" not in alice.text
    bob.line("/exit")
    assert await bob.exit_status() == 0


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad!name", 'invalid name "bad!name": use 1-16 letters, digits, _ or -, starting with a letter'),
        ("1abc", 'invalid name "1abc"'),
        ("abcdefghijklmnopq", 'invalid name "abcdefghijklmnopq"'),
        ("Server", 'the name "Server" is reserved'),
    ],
)
async def test_invalid_and_reserved_names_never_join(server: Server, name: str, reason: str) -> None:
    watcher = await server.connect("watcher")
    client = await server.connect(name)
    assert await client.exit_status() == 1
    assert reason in client.stderr
    assert "Welcome" not in client.text
    watcher.line("/names")
    await watcher.wait_for("1 in #lobby: watcher")


async def test_taken_name_is_refused_for_another_key_or_no_key(server: Server, keys) -> None:
    alice = await server.connect("alice", key=keys["alice"])
    for key, reason in ((keys["mallory"], "registered to another key"), (None, "registered to a key")):
        impostor = await server.connect("ALICE", key=key)
        assert await impostor.exit_status() == 1
        assert f'the name "alice" is {reason}; connect with that key' in impostor.stderr
    alice.line("still here")
    await alice.wait_for("alice: still here")


async def test_same_key_takes_over_the_name(server: Server, keys) -> None:
    bob = await server.connect("bob")
    old = await server.connect("alice", key=keys["alice"])
    new = await server.connect("alice", key=keys["alice"])
    await old.wait_for("you logged in from elsewhere")
    assert await old.exit_status() == 0
    new.line("I am back")
    await bob.wait_for("alice: I am back")
    # The takeover is seamless for others: no leave or second join.
    assert "alice left" not in bob.text
    assert bob.text.count("alice joined") == 1


async def test_live_keyed_name_is_refused_while_unregistered(server: Server, keys) -> None:
    server.app.hub.names.release("dave")  # (never registered: keyless holder)
    first = await server.connect("dave")
    second = await server.connect("dave", key=keys["bob"])
    assert await second.exit_status() == 1
    assert 'the name "dave" is already in use' in second.stderr
    first.line("still mine")
    await first.wait_for("dave: still mine")


async def test_keyless_name_cannot_be_taken_over(server: Server) -> None:
    first = await server.connect("carol")
    second = await server.connect("carol")
    assert await second.exit_status() == 1
    first.line("mine")
    await first.wait_for("carol: mine")


async def test_hostile_input_is_cleaned_before_anyone_sees_it(server: Server) -> None:
    mallory = await server.connect("mallory")
    victim = await server.connect("victim", pty=True, term="xterm")
    hostile = (
        "a\x1b[2Jb\x1b]0;pwned\x07c\x07d\x08e\x1b[1;1Hf\u202eg\u200bh\x9b31mi"
        "\x1bPdcs\x1b\\j\x0ck\x1bcl"
    )
    mallory.line(hostile)
    await victim.wait_for("mallory: ")
    await victim.wait_for(lambda c: "abcdefghijkl" in c.text)
    body = victim.output.split("mallory", 2)[-1]
    for bad in ("\x1b[2J", "\x1b]", "\x07", "\x08", "\x1b[1;1H", "\u202e", "\u200b", "\x9b", "\x1bP", "\x0c", "\x1bc"):
        assert bad not in body, repr(bad)


async def test_long_and_blank_messages(server: Server) -> None:
    alice = await server.connect("alice")
    bob = await server.connect("bob")
    alice.line("x" * 1025)
    await alice.wait_for("message too long (1025 characters, at most 1024); not sent")
    alice.line("   ")
    alice.line("y" * 1024)
    await bob.wait_for("alice: " + "y" * 1024)
    assert "x" * 100 not in bob.text
    assert "alice: \n" not in bob.text


async def test_unterminated_line_is_capped(start_server) -> None:
    server = await start_server(max_line_chars=1000)
    alice = await server.connect("alice")
    watcher = await server.connect("watcher")
    alice.send("z" * 5000)
    assert await alice.exit_status() == 0
    assert "line longer than 1000 characters" in alice.text
    await watcher.wait_for("alice left")


async def test_without_pty_output_has_no_escape_codes(server: Server) -> None:
    alice = await server.connect("alice")
    bob = await server.connect("bob", pty=True, term="xterm-256color")
    bob.send("hello\r")
    await alice.wait_for("bob: hello")
    alice.line("/help")
    await alice.wait_for("/whois")
    assert "\x1b" not in alice.output and "\r" not in alice.output
    assert "\x1b[" in bob.output  # while the PTY client does get colour


async def test_eof_leaves_cleanly_and_sends_the_last_line(server: Server) -> None:
    watcher = await server.connect("watcher")
    bot = await server.connect("bot")
    bot.send("first\nlast without newline")
    bot.process.stdin.write_eof()
    assert await bot.exit_status() == 0
    await watcher.wait_for("bot: last without newline")
    await watcher.wait_for("bot left")


async def test_one_session_per_connection(server: Server) -> None:
    alice = await server.connect("alice")
    with pytest.raises(asyncssh.ChannelOpenError):
        await alice.conn.create_process(term_type=None)


async def test_history_on_join(start_server) -> None:
    server = await start_server(history_on_join=3)
    alice = await server.connect("alice")
    for n in range(5):
        alice.line(f"old {n}")
    await alice.wait_for("alice: old 4")
    bob = await server.connect("bob")
    await bob.wait_for("alice: old 4")
    assert "old 1" not in bob.text
    assert bob.text.index("Welcome") < bob.text.index("old 2") < bob.text.index("old 4")


async def test_slow_reader_is_cut_off_and_others_keep_up(start_server) -> None:
    server = await start_server(outbox_limit=64 * 1024)
    # A client that stops reading: its channel no longer takes data, and with
    # a small SSH window the server soon has to hold what it cannot send.
    slow = await server.connect("slow", window=16 * 1024)
    for reader in slow._readers:
        reader.cancel()
    slow.process.channel.pause_reading()
    talker = await server.connect("talker")
    watcher = await server.connect("watcher")
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    for n in range(300):
        sent = loop.time()
        talker.line(f"{n} " + "p" * 900)
        await watcher.wait_for(f"talker: {n} ")
        latencies.append(loop.time() - sent)
    await watcher.wait_for("slow left (too slow to keep up; disconnected)")
    assert server.app.hub.find("slow") is None
    # Its connection (and everything queued for it) is gone, the others stay.
    assert len(server.app.ctx.connections) == 2
    latencies.sort()
    assert latencies[len(latencies) * 99 // 100] < 0.5, latencies[-5:]


async def test_lines_pasted_after_a_nick_go_out_under_the_new_name(server: Server, keys) -> None:
    """/nick is saved before it is taken; what was pasted with it waits for it."""
    alice = await server.connect("alice", key=keys["alice"])
    bob = await server.connect("bob")
    await alice.wait_for("bob joined")
    alice.send("/nick alicia\nsaid as alicia\n/nick alice2\nsaid as alice2\n")
    await bob.wait_for("alice2: said as alice2")
    lines = bob.text.splitlines()
    assert "alicia: said as alicia" in lines, bob.text
    assert not any(line.startswith("alice: said") for line in lines), bob.text
