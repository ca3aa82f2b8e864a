"""The terminal experience: completion, away, ignore, quiet, timestamps,
themes, bells, wrapping; in the core and on a screen."""

from __future__ import annotations

import re
from pathlib import Path

import pyte
import pytest

from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.prefs import Prefs
from sshchat.store.memory import MemoryStore
from sshchat.term.editor import LineEditor
from tests.support.chat import Clock, person
from tests.support.clients import Client
from tests.support.server import Server
from tests.support.settings import chat_settings

OP = "SHA256:op-key-0000000000000000000000000000000000"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub(clock: Clock) -> Hub:
    return Hub(MemoryStore(), chat_settings(), clock=clock, admins={OP})



# -------------------------------------------------------------- completion


def test_completion_of_commands_people_and_rooms(hub: Hub, clock: Clock) -> None:
    me, _ = person(hub, "me")
    for name in ("bob", "bobby", "carol"):
        person(hub, name)
    clock.now += 5
    hub.handle_line(hub.find("bobby"), "I spoke last")  # type: ignore[arg-type]
    assert complete(hub, me, "/jo") == (0, ["/join "])
    assert "/ban " not in complete(hub, me, "/")[1]  # operators' commands only for operators
    assert complete(hub, me, "bo") == (0, ["bobby: ", "bob: "])  # most recently active first
    assert complete(hub, me, "hi ca") == (3, ["carol "])
    hub.handle_line(me, "/join #rust")
    hub.handle_line(me, "/join #ruby")
    assert complete(hub, me, "/join #ru") == (6, ["#ruby", "#rust"])
    assert complete(hub, me, "/j #ru") == (3, ["#ruby", "#rust"])  # and by their aliases
    assert complete(hub, me, "/leave #rub") == (7, ["#ruby"])
    assert complete(hub, me, "zz")[1] == []


def test_tab_cycles_through_candidates_in_the_editor() -> None:
    editor = LineEditor(80, max_chars=100, max_submit=100)
    editor.completer = lambda before: (0, ["bobby: ", "bob: "]) if before == "bo" else (0, [])
    editor.feed("bo")
    editor.feed("\t")
    assert editor.text == "bobby: "
    editor.feed("\t")
    assert editor.text == "bob: "
    editor.feed("\t")
    assert editor.text == "bobby: "
    editor.feed("hi")
    assert editor.text == "bobby: hi"


# ------------------------------------------------------- away, ignore, quiet


def test_away_and_back(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    bob, _bob_out = person(hub, "bob")
    hub.handle_line(bob, "/away at lunch")
    hub.handle_line(alice, "/msg bob are you there?")
    assert out.notices[-1] == "bob is away: at lunch"
    hub.handle_line(alice, "/names")
    assert out.notices[-1] == "2 in #lobby: alice, bob (away)"
    hub.handle_line(alice, "/whois bob")
    assert "away: at lunch" in out.notices[-1]
    hub.handle_line(bob, "/back")
    hub.handle_line(alice, "/names")
    assert out.notices[-1] == "2 in #lobby: alice, bob"


def test_ignore(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    troll, _ = person(hub, "troll")
    hub.handle_line(alice, "/ignore troll")
    hub.handle_line(troll, "you can't hide")
    hub.handle_line(troll, "/msg alice psst")
    hub.handle_line(troll, "/me pokes alice")
    assert not any(m.sender == "troll" and m.kind is not Kind.JOIN for m in out.messages)
    hub.handle_line(alice, "/ignore")
    assert out.notices[-1] == "ignoring: troll"
    hub.handle_line(alice, "/unignore TROLL")
    hub.handle_line(troll, "hello again")
    assert "hello again" in out.texts()


def test_quiet_hides_comings_and_goings(hub: Hub) -> None:
    alice, out = person(hub, "alice")
    hub.handle_line(alice, "/quiet")
    bob, _ = person(hub, "bob")
    hub.leave(bob)
    assert out.texts(Kind.JOIN) == ["alice joined (1 online)"]
    assert out.texts(Kind.LEAVE) == []


@pytest.mark.parametrize(("args", "reply"), [
    ("time Europe/Paris", "timestamps: time, Europe/Paris"),
    ("datetime +05:30", "timestamps: datetime, +05:30"),
    ("off", "timestamps off"),
    ("time Mars/Olympus", "unknown time zone Mars/Olympus"),
    ("time ../../etc/passwd", "unknown time zone"),
    ("sometimes", "usage: /timestamp off|time|datetime"),
])
def test_timestamp_settings(hub: Hub, args: str, reply: str) -> None:
    alice, out = person(hub, "alice")
    hub.handle_line(alice, f"/timestamp {args}")
    assert out.notices[-1].startswith(reply)


def test_settings_persist_for_keys_only(tmp_path: Path) -> None:
    from sshchat.store.sqlite import SQLiteStore

    db = str(tmp_path / "c.db")
    store = SQLiteStore(db)
    hub = Hub(store, chat_settings())
    keyed, _ = person(hub, "keyed", "SHA256:k")
    anon, _ = person(hub, "anon")
    person(hub, "troll", "SHA256:t")  # ignored by key: it follows the person
    for m in (keyed, anon):
        for line in ("/theme mono", "/timestamp datetime UTC", "/bell off", "/quiet", "/ignore troll"):
            hub.handle_line(m, line)
    store.close()
    store = SQLiteStore(db)
    hub = Hub(store, chat_settings())
    keyed, _ = person(hub, "keyed", "SHA256:k")
    anon, _ = person(hub, "anon")
    p = keyed.prefs
    assert (p.theme, p.timestamps, p.bell, p.quiet) == ("mono", "datetime", "off", True)
    assert p.ignores == ("fingerprint:SHA256:t",)
    assert anon.prefs.theme is None and anon.prefs.ignores == ()
    store.close()


# ------------------------------------------------------------- on a screen


class Seen:
    def __init__(self, client: Client, cols: int = 40, rows: int = 30) -> None:
        self.client, self.screen = client, pyte.Screen(cols, rows)
        self.stream, self.fed = pyte.Stream(self.screen), 0

    @property
    def lines(self) -> list[str]:
        self.stream.feed(self.client.output[self.fed :])
        self.fed = len(self.client.output)
        return [line.rstrip() for line in self.screen.display]


async def test_long_lines_wrap_under_the_text_and_rewrap_after_resize(server: Server) -> None:
    alice = await server.connect("alice", pty=True, term="xterm", width=40)
    seen = Seen(alice, 40)
    bob = await server.connect("bob")
    bob.line("one two three four five six seven eight nine ten 日本語のテキスト end")
    await alice.wait_for(lambda c: any(line.endswith("日本語のテキスト end") for line in seen.lines))
    rows = seen.lines
    first = next(i for i, line in enumerate(rows) if line.startswith("bob: one"))
    assert rows[first] == "bob: one two three four five six seven"
    assert rows[first + 1] == "     eight nine ten 日本語のテキスト end"
    assert all(len(r) <= 40 for r in rows)
    seen.screen.resize(30, 24)
    alice.process.change_terminal_size(24, 30)
    bob.line("alpha beta gamma delta epsilon zeta")
    await alice.wait_for(lambda c: any("zeta" in line for line in seen.lines))
    rows = seen.lines
    at = next(i for i, line in enumerate(rows) if line.startswith("bob: alpha"))
    assert rows[at] == "bob: alpha beta gamma"
    assert rows[at + 1] == "     delta epsilon zeta"


async def test_timestamps_theme_and_no_color(server: Server) -> None:
    alice = await server.connect("alice", pty=True, term="xterm-256color")
    bob = await server.connect("bob")
    alice.send("/timestamp time UTC\r")
    await alice.wait_for("timestamps: time, UTC")
    bob.line("stamped")
    await alice.wait_for(re.compile(r"\d\d:\d\d bob: stamped"))
    alice.send("/theme mono\r")
    await alice.wait_for("theme: mono")
    mark = len(alice.output)
    bob.line("no colour please")
    await alice.wait_for("no colour please")
    assert "\x1b[3" not in alice.output[mark:] and "\x1b[38" not in alice.output[mark:]
    plain = await server.connect("carol", pty=True, term="xterm-256color", env={"NO_COLOR": "1"})
    bob.line("for carol")
    await plain.wait_for("for carol")
    assert "\x1b[38" not in plain.output and "\x1b[3" not in plain.output


async def test_mentions_are_highlighted_and_ring_the_bell(server: Server) -> None:
    alice = await server.connect("alice", pty=True, term="xterm-256color")
    bob = await server.connect("bob")
    mark = len(alice.output)
    bob.line("nothing for you")
    await alice.wait_for("nothing for you")
    assert "\x07" not in alice.output[mark:]
    bob.line("hey ALICE, look")
    await alice.wait_for("hey ALICE, look")
    assert "\x07" in alice.output[mark:]
    assert "\x1b[1;38;5;226mhey ALICE, look" in alice.output
    alice.send("/bell off\r")
    await alice.wait_for("bell: off")
    mark = len(alice.output)
    bob.line("alice again")
    bob.line("/msg alice private")
    await alice.wait_for("private")
    assert "\x07" not in alice.output[mark:]


def test_ignore_list_is_bounded(clock: Clock) -> None:
    from sshchat.chat.prefs import MAX_IGNORES

    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), clock=clock)  # (not a test of the rate limit)
    alice, out = person(hub, "alice")
    for n in range(MAX_IGNORES + 5):
        person(hub, f"user{n}")  # /ignore follows a person: one who is here
        hub.handle_line(alice, f"/ignore user{n}")
    assert len(alice.prefs.ignores) == MAX_IGNORES
    assert out.notices[-1] == f"you ignore {MAX_IGNORES} people already; /unignore someone first"


def test_the_list_of_ignores_cannot_be_changed_by_mistake() -> None:
    """``ignores`` is what /ignore lists; changing it would change nothing
    (a copy), so it is a tuple: a mistaken ``append`` fails loudly."""
    p = Prefs()
    p.ignore("fingerprint:SHA256:t")
    with pytest.raises(AttributeError):
        p.ignores.append("fingerprint:SHA256:u")  # type: ignore[attr-defined]
    assert p.ignores == ("fingerprint:SHA256:t",)
