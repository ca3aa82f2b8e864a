"""What a person sees, over SSH with a PTY, for every terminal type we support.

The server's output to a PTY client is fed to a terminal emulator (pyte) and
the screen is read back, as a person would read it.
"""

from __future__ import annotations

import pyte
import pytest

from tests.support.clients import Client
from tests.support.server import Server

TERMS = [
    "xterm", "xterm-256color", "screen", "screen-256color",
    "tmux-256color", "xterm-kitty", "linux", "vt100",
]


class Seen:
    """A pyte screen kept up to date with a PTY client's output."""

    def __init__(self, client: Client, cols: int, rows: int = 24) -> None:
        self.client = client
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.fed = 0

    def update(self) -> None:
        self.stream.feed(self.client.output[self.fed :])
        self.fed = len(self.client.output)

    @property
    def lines(self) -> list[str]:
        self.update()
        return [line.rstrip() for line in self.screen.display]

    def char_at_cursor(self) -> str:
        self.update()
        return self.screen.buffer[self.screen.cursor.y][self.screen.cursor.x].data

    async def wait_for(self, text: str) -> None:
        await self.client.wait_for(lambda c: any(text in line for line in self.lines))


async def pty_client(server: Server, name: str, term: str, cols: int = 40) -> tuple[Client, Seen]:
    client = await server.connect(name, pty=True, term=term, width=cols)
    seen = Seen(client, cols)
    await seen.wait_for(f"[{name} #lobby]")
    return client, seen


@pytest.mark.parametrize("term", TERMS)
async def test_half_typed_line_survives_incoming_messages(server: Server, term: str) -> None:
    cols = 40
    alice, screen = await pty_client(server, "alice", term, cols)
    bob = await server.connect("bob")
    typed = "a long reply that is wider than the terminal 日本語 😀 ok"
    alice.send(typed + "\x1b[D" * 4)  # and the cursor moved back into it
    await alice.wait_for(lambda c: "ok" in "".join(screen.lines))
    for n in range(3):
        bob.line(f"message {n} " + "x" * 50)
    await screen.wait_for("message 2")
    lines = screen.lines
    input_rows = [i for i, line in enumerate(lines) if line.startswith("[alice #lobby]")]
    assert input_rows, lines
    start = input_rows[-1]
    shown = "".join(lines[start:]).replace(" ", "")
    assert shown == ("[alice#lobby]" + typed).replace(" ", ""), lines
    assert screen.char_at_cursor() == typed[-4]
    # Messages are above the input, none of them cut into it.
    assert all("message" not in line for line in lines[start:])
    # Enter still sends exactly what was typed.
    alice.send("\r")
    await bob.wait_for(f"alice: {typed}")


@pytest.mark.parametrize("term", TERMS)
async def test_a_line_taller_than_the_terminal_leaves_the_chat_in_sight(server: Server, term: str) -> None:
    """The input shows at most the terminal's rows less one, around the
    cursor: a message that arrives is seen, and an edit at the line's start
    redraws what is on the screen."""
    cols = 40
    alice, screen = await pty_client(server, "alice", term, cols)  # 24 rows
    bob = await server.connect("bob")
    typed = "".join(f"{i:03d}x" for i in range(250))  # 1000 characters: 26 rows at 40 columns
    alice.send(typed)
    await alice.wait_for(lambda c: typed[-12:] in "".join(screen.lines))
    bob.line("hello alice")
    await screen.wait_for("hello alice")
    lines = screen.lines
    seen = lines.index("bob: hello alice")
    rows = [line for line in lines[seen + 1 :] if line]
    assert 1 <= len(rows) <= 23 and "".join(rows).endswith(typed[-40:]), lines
    alice.send("\x01>")  # Home, then a character at the start
    await alice.wait_for(lambda c: any(line.startswith("[alice #lobby] >000x") for line in screen.lines))
    assert "bob: hello alice" in screen.lines
    assert screen.char_at_cursor() == "0"


@pytest.mark.parametrize("term", ["xterm", "tmux-256color", "vt100"])
async def test_resize_is_honoured(server: Server, term: str) -> None:
    alice, screen = await pty_client(server, "alice", term, 60)
    alice.send("z" * 50)
    await alice.wait_for(lambda c: "z" * 50 in "".join(screen.lines))
    screen.screen.resize(24, 30)
    alice.process.change_terminal_size(30, 24)
    bob = await server.connect("bob")
    bob.line("after resize")
    await screen.wait_for("after resize")
    lines = screen.lines
    start = max(i for i, line in enumerate(lines) if line.startswith("[alice #lobby]"))
    assert lines[start] == "[alice #lobby] " + "z" * 15
    assert lines[start + 1] == "z" * 30
    assert lines[start + 2] == "z" * 5


async def test_names_have_stable_colours_and_own_messages_echo_alike(server: Server) -> None:
    alice, _ = await pty_client(server, "alice", "xterm-256color")
    bob, _ = await pty_client(server, "bob", "xterm-256color")
    alice.send("hi\r")
    await bob.wait_for("alice: hi")
    await alice.wait_for(lambda c: c.text.count("alice: hi") == 1)
    colour_for_bob = bob.output.split("alice\x1b[0m: hi")[0].rsplit("\x1b[38;5;", 1)[1]
    colour_for_alice = alice.output.split("alice\x1b[0m: hi")[0].rsplit("\x1b[38;5;", 1)[1]
    assert colour_for_bob == colour_for_alice


@pytest.mark.parametrize(("term", "expect_colour"), [("vt100", False), ("linux", True), ("screen", True)])
async def test_colour_only_where_the_terminal_has_it(server: Server, term: str, expect_colour: bool) -> None:
    alice, _ = await pty_client(server, "alice", term)
    bob = await server.connect("bob")
    bob.line("hello")
    await alice.wait_for("bob: hello")
    assert ("\x1b[3" in alice.output or "\x1b[9" in alice.output) is expect_colour


async def test_paste_with_control_characters_sends_clean_lines(server: Server) -> None:
    alice, _ = await pty_client(server, "alice", "xterm")
    bob = await server.connect("bob")
    alice.send("\x1b[200~first\x07 line\rsecond\x1b[2J line\r\x1b[201~")
    await bob.wait_for("alice: second line")
    assert "alice: first line" in bob.text
    assert "\x07" not in bob.output and "\x1b" not in bob.output


async def test_ctrl_d_on_empty_line_leaves_and_restores_the_terminal(server: Server) -> None:
    alice, _ = await pty_client(server, "alice", "xterm")
    watcher = await server.connect("watcher")
    alice.send("\x04")
    assert await alice.exit_status() == 0
    await watcher.wait_for("alice left")
    assert alice.output.endswith("\x1b[?2004l")  # bracketed paste switched off again


async def test_invalid_name_with_pty_is_told_why(server: Server) -> None:
    client = await server.connect("no way", pty=True)
    assert await client.exit_status() == 1
    assert 'invalid name "no way"' in client.stderr
