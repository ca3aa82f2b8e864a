"""The real OpenSSH client in a pseudo-terminal, read back as a screen.

These are the tests closest to a person: /usr/bin/ssh, a TERM value, typing
key by key, and what the terminal emulator (pyte) shows afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess
from tests.support.terminal import Terminal, ssh_argv

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real `sshchat serve` process for the module."""
    server = ServerProcess(tmp_path_factory.mktemp("server"))
    yield server.port
    assert server.stop() == 0


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("keys") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


def input_row(term: Terminal, name: str) -> int:
    rows = [i for i, line in enumerate(term.lines()) if line.startswith(f"[{name} #lobby]")]
    assert rows, term.dump()
    return rows[-1]


@pytest.mark.parametrize("term_type", ["xterm", "tmux-256color"])
def test_half_typed_line_survives_an_incoming_message(port: int, keyfile: str, term_type: str) -> None:
    name = "alice" if term_type == "xterm" else "alice2"
    with Terminal(ssh_argv(port, name, key=keyfile), term=term_type, rows=20, cols=50) as alice, \
         Terminal(ssh_argv(port, "bob" + name[-1]), term="xterm", rows=20, cols=50) as bob:
        alice.wait_for(f"[{name} #lobby]")
        bob.wait_for("[bob")
        # Unique per run: the room's history replays earlier tests' lines.
        typed = f"{name} half typed, 日本語 and more than fifty cells wide!!"
        alice.type(typed)
        alice.send("\x1b[D" * 5)
        alice.wait_for(lambda t: f"[{name} #lobby]{typed}".replace(" ", "") in "".join(t.lines()).replace(" ", ""))
        bob.type(f"interrupting {name}\r")
        alice.wait_for(f"interrupting {name}")
        start = input_row(alice, name)
        assert f"interrupting {name}" in alice.text().split(f"[{name} #lobby]")[0]
        shown = "".join(alice.lines()[start:]).replace(" ", "")
        assert shown == f"[{name}#lobby]{typed}".replace(" ", ""), alice.dump()
        row, col = alice.cursor()
        assert alice.char_at(row, col).data == typed[-5], alice.dump()
        alice.type("\r")
        sent = f"{name}: {typed}".replace(" ", "")
        bob.wait_for(lambda t: sent in "".join(t.lines()).replace(" ", ""))


def test_ctrl_c_twice_leaves_and_others_see_it(port: int) -> None:
    with Terminal(ssh_argv(port, "carol"), term="screen", rows=20, cols=60) as carol, \
         Terminal(ssh_argv(port, "dave"), term="xterm-256color", rows=20, cols=60) as dave:
        carol.wait_for("[carol #lobby]")
        dave.wait_for("[dave #lobby]")
        carol.type("never sent")
        carol.send("\x03")
        carol.wait_for(lambda t: "never sent" not in t.text())
        carol.send("\x03")
        assert carol.wait_exit(10) == 0
        dave.wait_for("carol left")
        assert "never sent" not in dave.text()


def test_invalid_name_is_explained_by_the_real_client(port: int) -> None:
    with Terminal(ssh_argv(port, "9lives"), term="xterm", rows=10, cols=100) as term:
        status = term.wait_exit(10)
        assert status not in (0, None)
        assert 'invalid name "9lives": use 1-16 letters, digits, _ or -, starting with a letter' in term.text()


def test_tab_completion_and_wrapping_with_the_real_client(port: int) -> None:
    with Terminal(ssh_argv(port, "erin"), term="tmux-256color", rows=20, cols=44) as erin, \
         Terminal(ssh_argv(port, "frank"), term="xterm", rows=20, cols=60) as frank:
        erin.wait_for("[erin #lobby]")
        frank.wait_for("[frank #lobby]")
        frank.type("/join #wrapping-room\r")
        frank.wait_for("[frank #wrapping-room]")
        erin.type("/jo\t#wrapp\t")
        erin.wait_for("/join #wrapping-room")
        erin.type("\r")
        erin.wait_for("[erin #wrapping-room]")
        erin.type("fr\t")
        erin.wait_for("[erin #wrapping-room] frank:")
        erin.type("a long line that certainly needs more than one row here\r")
        erin.wait_for(lambda t: any(line.startswith("erin: frank: a long") for line in t.lines()))
        rows = erin.lines()
        first = next(i for i, line in enumerate(rows) if line.startswith("erin: frank: a long"))
        assert rows[first] == "erin: frank: a long line that certainly"
        assert rows[first + 1] == "      needs more than one row here"
