"""Plugins as people meet them, in the core (no sockets): their commands in
/help, Tab and use; their say over messages (rewrite, hold back); their bot;
and what a broken plugin (raising, hanging) may never do: hold up anyone's
messages, reorder a sender's lines, or paint on a terminal."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from sshchat.chat.admission import JoinRefused
from sshchat.chat.completion import complete
from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.plugin_host import ABANDONED_MOST, RUN_LINES, WAITING_MOST, PluginHost
from sshchat.chat.plugins import (
    PASS,
    Chat,
    CommandCall,
    CommandSpec,
    Drop,
    Plugin,
    PluginError,
    Presence,
    Rewrite,
    Said,
    Verdict,
)
from sshchat.chat.store import Binding, Snapshot
from sshchat.store.memory import MemoryStore
from tests.support.chat import Recorder, person
from tests.support.settings import chat_settings
from tests.support.waiting import eventually, stays_false

# ------------------------------------------------------------- test plugins


class Echo(Plugin):
    """/echo TEXT: the bot says it to the room; /secret: operators only."""

    name = "echo"

    def commands(self) -> list[CommandSpec]:
        return [
            CommandSpec("echo", "TEXT", "the bot repeats TEXT", self.echo, min_args=1),
            CommandSpec("secret", "", "operators' own", self.secret, op_only=True),
            CommandSpec("whisper-me", "TEXT", "the bot tells you TEXT privately", self.whisper, min_args=1),
        ]

    async def echo(self, call: CommandCall) -> None:
        call.chat.say(call.room, call.rest)

    async def secret(self, call: CommandCall) -> None:
        call.reply("the secret is 42")

    async def whisper(self, call: CommandCall) -> None:
        call.chat.tell(call.sender, call.rest)


class Shout(Plugin):
    """Rewrites every message in capitals; holds back lines with "spam"."""

    name = "shout"

    async def on_message(self, said: Said) -> Verdict:
        if "spam" in said.text:
            return Drop("no spam here")
        return Rewrite(said.text.upper())


class Sleepy(Plugin):
    """Sleeps 10 s in every hook (and ignores being cancelled)."""

    name = "sleepy"

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec("nap", "", "sleep", self.nap)]

    async def nap(self, call: CommandCall) -> None:
        await _sleep_through(10)
        call.reply("woke up")

    async def on_message(self, said: Said) -> Verdict:
        await _sleep_through(10)
        return Drop("too late")

    async def on_join(self, event: Presence) -> None:
        await _sleep_through(10)

    async def on_leave(self, event: Presence) -> None:
        await _sleep_through(10)


class Raising(Plugin):
    name = "raising"

    async def on_message(self, said: Said) -> Verdict:
        raise RuntimeError("broken plugin")

    async def on_join(self, event: Presence) -> None:
        raise RuntimeError("broken join")


class Greeter(Plugin):
    """Greets each newcomer in their room, says goodbye when they leave."""

    name = "greeter"

    async def on_join(self, event: Presence) -> None:
        event.chat.say(event.room, f"welcome {event.name}")

    async def on_leave(self, event: Presence) -> None:
        event.chat.say(event.room, f"bye {event.name}")


class Painter(Plugin):
    """Tries to paint on terminals: escape sequences in everything it says."""

    name = "painter"

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec("paint", "", "paint", self.paint)]

    async def paint(self, call: CommandCall) -> None:
        call.chat.say(call.room, "\x1b[2J\x1b]0;owned\x07red\x1b[31m!")
        call.reply("\x1b[2Jreply")

    async def on_message(self, said: Said) -> Verdict:
        return Rewrite("\x1b[2J" + said.text + "\x1b[5m")


class _Stop:
    """Set at a test's end: the hostile hooks' tasks end with it."""

    now = False

    def set(self) -> None:
        self.now = True


STOP_SLEEPING = _Stop()


async def _sleep_through(seconds: float) -> None:
    """A hostile hook: it ignores being cancelled, and sleeps on."""
    STOP_SLEEPING.now = False
    end = time.monotonic() + seconds
    while time.monotonic() < end and not STOP_SLEEPING.now:
        try:
            await asyncio.sleep(0.02)
        except asyncio.CancelledError:
            continue


def hub_with(*plugins: Plugin, message_timeout: float = 0.2, task_timeout: float = 0.5) -> Hub:
    host = PluginHost(list(plugins), message_timeout, task_timeout)
    return Hub(MemoryStore(), chat_settings(rate_burst=1000), plugins=host)


# ------------------------------------------------------------------ commands


async def test_a_plugin_command_is_in_help_and_tab_and_works() -> None:
    hub = hub_with(Echo())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "/help")
    assert any(n.startswith("plugins:") and "/echo" in n for n in a.notices)
    hub.handle_line(alice, "/help echo")
    assert "/echo TEXT: the bot repeats TEXT" in a.notices
    assert complete(hub, alice, "/ec") == (0, ["/echo "])
    hub.handle_line(alice, "/echo")
    assert a.notices[-1] == "usage: /echo TEXT"
    hub.handle_line(alice, "/echo hello room")
    await eventually(lambda: b.texts(Kind.CHAT, "echo-bot") == ["hello room"])
    assert a.texts(Kind.CHAT, "echo-bot") == ["hello room"]


async def test_an_operators_plugin_command_is_refused_to_others_and_hidden() -> None:
    hub = hub_with(Echo())
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/secret")
    assert a.notices[-1] == "/secret is for operators only"
    a.notices.clear()
    hub.handle_line(alice, "/help")
    assert any("/echo" in n for n in a.notices) and not any("/secret" in n for n in a.notices)
    assert complete(hub, alice, "/sec") == (0, [])
    await stays_false(lambda: any("42" in n for n in a.notices), for_=0.1)


async def test_an_operator_may_use_it() -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), admins=["SHA256:op"],
              plugins=PluginHost([Echo()], 0.2, 0.5))
    op, o = person(hub, "oper", "SHA256:op")
    assert complete(hub, op, "/sec") == (0, ["/secret "])
    hub.handle_line(op, "/secret")
    await eventually(lambda: "the secret is 42" in o.notices)


async def test_a_plugin_command_costs_a_rate_token() -> None:
    host = PluginHost([Echo()], 0.2, 0.5)
    hub = Hub(MemoryStore(), chat_settings(rate_burst=2, rate_per_second=0.001), plugins=host)
    alice, a = person(hub, "alice")
    for n in range(3):
        hub.handle_line(alice, f"/echo {n}")
    assert any(n.startswith("slow down") for n in a.notices)
    await eventually(lambda: a.texts(Kind.CHAT, "echo-bot") == ["0", "1"])


def test_a_plugin_may_not_replace_a_built_in_command() -> None:
    class Thief(Plugin):
        name = "thief"

        def commands(self) -> list[CommandSpec]:
            return [CommandSpec("nick", "NAME", "mine now", Echo().echo)]

    with pytest.raises(PluginError, match="/nick is already a command"):
        PluginHost([Thief()], 0.2, 0.5)


def test_hooks_must_be_async() -> None:
    class Sync(Plugin):
        name = "sync"

        def on_message(self, said: Said) -> Verdict:  # type: ignore[override]
            return PASS

    with pytest.raises(PluginError, match="on_message must be an async def"):
        PluginHost([Sync()], 0.2, 0.5)


# ------------------------------------------------------------ message hooks


async def test_a_message_hook_rewrites_and_holds_back() -> None:
    hub = hub_with(Shout())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "hello")
    hub.handle_line(alice, "buy spam now")
    hub.handle_line(alice, "/me waves")
    await eventually(lambda: b.texts(Kind.EMOTE) == ["WAVES"])
    assert b.texts(Kind.CHAT, "alice") == ["HELLO"]
    assert a.texts(Kind.CHAT, "alice") == ["HELLO"]  # the sender sees what the room saw
    assert "no spam here" in a.notices
    assert not any("spam" in m.text for m in b.messages)


async def test_a_rewrite_and_a_bot_post_are_cleaned() -> None:
    hub = hub_with(Painter())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "hi")
    hub.handle_line(alice, "/paint")
    await eventually(lambda: len(b.texts(Kind.CHAT)) == 2)
    assert b.texts(Kind.CHAT) == ["hi", "red!"]
    await eventually(lambda: "reply" in a.notices)
    assert not any("\x1b" in m.text for m in b.messages)


async def test_a_rewrite_is_length_checked_again() -> None:
    class Longer(Plugin):
        name = "longer"

        async def on_message(self, said: Said) -> Verdict:
            return Rewrite(said.text * 2000)

    hub = hub_with(Longer())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "abc")
    await eventually(lambda: any("too long" in n for n in a.notices))
    assert b.texts(Kind.CHAT) == []


async def test_a_hanging_plugin_holds_nobody_else_and_keeps_a_senders_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sshchat")
    hub = hub_with(Sleepy(), message_timeout=0.2)
    alice, _a = person(hub, "alice")
    bob, _b = person(hub, "bob")
    _carol, c = person(hub, "carol")
    started = time.monotonic()
    for n in range(5):
        hub.handle_line(alice, f"a{n}")
    hub.handle_line(bob, "from bob")
    # Bob's line waits for nobody's plugin run but his own (abandoned at 0.2 s).
    await eventually(lambda: c.texts(Kind.CHAT, "bob") == ["from bob"], timeout=2)
    await eventually(lambda: len(c.texts(Kind.CHAT, "alice")) == 5, timeout=2)
    assert time.monotonic() - started < 1.5  # far below the plugin's 10 s
    assert c.texts(Kind.CHAT, "alice") == [f"a{n}" for n in range(5)]  # in the order typed
    assert any("sleepy" in r.getMessage() and "message hook" in r.getMessage() for r in caplog.records)
    # Skipped since: the next lines go at once, and the log says so once.
    before = time.monotonic()
    hub.handle_line(alice, "later")
    await eventually(lambda: "later" in c.texts(Kind.CHAT, "alice"), timeout=1)
    assert time.monotonic() - before < 0.15
    # A login and a leave wait for no plugin either.
    before = time.monotonic()
    dave, _ = person(hub, "dave")
    hub.leave(dave)
    assert time.monotonic() - before < 0.05
    STOP_SLEEPING.set()


async def test_a_plugins_command_abandoned_at_its_limit_says_nothing_later() -> None:
    hub = hub_with(Sleepy(), task_timeout=0.1)
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/nap")
    hub.handle_line(alice, "still here")
    await eventually(lambda: "still here" in a.texts(Kind.CHAT), timeout=1)
    await stays_false(lambda: "woke up" in a.notices, for_=0.3)
    STOP_SLEEPING.set()


async def test_a_raising_plugin_is_logged_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sshchat")
    hub = hub_with(Raising())
    alice, _a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    for n in range(20):
        hub.handle_line(alice, f"line {n}")
    await eventually(lambda: len(b.texts(Kind.CHAT)) == 20)
    assert b.texts(Kind.CHAT) == [f"line {n}" for n in range(20)]
    lines = [r.getMessage() for r in caplog.records if "broken plugin" in r.getMessage()]
    assert len(lines) == 1 and "raising" in lines[0]


async def test_on_hook_hears_each_run() -> None:
    heard: list[tuple[str, str, str]] = []
    host = PluginHost([Raising(), Shout()], 0.2, 0.5)
    host.on_hook = lambda plugin, hook, seconds, outcome: heard.append((plugin, hook, outcome))
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), plugins=host)
    alice, _ = person(hub, "alice")
    hub.handle_line(alice, "x")
    await eventually(lambda: len(heard) >= 3)
    assert ("raising", "on_message", "error") in heard
    assert ("shout", "on_message", "ok") in heard
    assert ("raising", "on_join", "error") in heard


# ------------------------------------------------------------------ the bot


async def test_a_bot_posts_to_the_room_and_privately_under_its_name() -> None:
    hub = hub_with(Echo())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "/whisper-me only for you")
    await eventually(lambda: a.texts(Kind.PRIVATE) == ["only for you"])
    msg = a.messages[-1]
    assert (msg.sender, msg.recipient) == ("echo-bot", "alice")
    assert b.texts(Kind.PRIVATE) == []


def test_nobody_may_log_in_or_rename_as_a_bot() -> None:
    hub = hub_with(Echo())
    for name in ("echo-bot", "Echo-Bot", "ech0-bot"):
        with pytest.raises(JoinRefused, match="bot"):
            hub.join(name, None, Recorder())
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/nick echo-bot")
    assert any("bot" in n for n in a.notices)
    assert alice.name == "alice"


def test_a_bot_name_must_say_it_is_a_bot() -> None:
    class Named(Plugin):
        name = "named"
        bot_name = "alice"

    with pytest.raises(PluginError, match="must end in -bot"):
        PluginHost([Named()], 0.2, 0.5)


async def test_join_and_leave_hooks() -> None:
    hub = hub_with(Greeter())
    _alice, a = person(hub, "alice")
    bob, _b = person(hub, "bob")
    await eventually(lambda: "welcome bob" in a.texts(Kind.CHAT, "greeter-bot"))
    hub.leave(bob)
    await eventually(lambda: "bye bob" in a.texts(Kind.CHAT, "greeter-bot"))


def test_a_registered_name_that_became_a_bots_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sshchat")

    class Kept(MemoryStore):
        """A store that kept someone's registration of "echo-bot"."""

        def load(self, recent_per_room: int) -> Snapshot:
            return Snapshot(bindings={"echo-bot": Binding("echo-bot", "SHA256:someone", 0.0)})

    hub = Hub(Kept(), chat_settings(), plugins=PluginHost([Echo()], 0.2, 0.5))
    assert any('"echo-bot" (registered to a key) is taken by a plugin' in r.getMessage() for r in caplog.records)
    with pytest.raises(JoinRefused, match="bot"):
        hub.join("echo-bot", "SHA256:someone", Recorder())


async def test_a_plugin_looping_on_say_cannot_flood_a_room() -> None:
    class Looper(Plugin):
        """/flood: the bot says 1000 lines; its own timer would say 1000 more."""

        name = "looper"
        kept: Chat | None = None

        def commands(self) -> list[CommandSpec]:
            return [CommandSpec("flood", "", "flood the room", self.flood)]

        async def flood(self, call: CommandCall) -> None:
            for n in range(1000):
                call.chat.say(call.room, f"from a command {n}")

        def start(self, chat: Chat) -> None:
            self.kept = chat

    looper = Looper()
    host = PluginHost([looper], 0.2, 0.5)
    hub = Hub(MemoryStore(), chat_settings(rate_burst=10, rate_per_second=0.001), plugins=host)
    host.start()
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/flood")
    await eventually(lambda: len(a.texts(Kind.CHAT, "looper-bot")) == RUN_LINES)
    assert looper.kept is not None
    for n in range(1000):
        looper.kept.say("#lobby", f"from a timer {n}")
    await eventually(lambda: len(a.texts(Kind.CHAT, "looper-bot")) == RUN_LINES + 10)
    await stays_false(lambda: len(a.texts(Kind.CHAT, "looper-bot")) > RUN_LINES + 10, for_=0.1)


class Passing(Plugin):
    """A message hook that lets everything through, after a moment."""

    name = "passing"

    async def on_message(self, said: Said) -> Verdict:
        await asyncio.sleep(0.005)
        return PASS


async def test_a_script_whose_input_ends_while_its_lines_wait_still_says_them() -> None:
    # printf 'one\ntwo\n...' | ssh -T alice@host: the session ends right after its last line
    hub = hub_with(Passing())
    alice, _a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    for line in ("one", "two", "/nick alicia", "//three"):
        hub.handle_line(alice, line)
    hub.leave(alice)
    await eventually(lambda: b.texts(Kind.CHAT, "alice") == ["one", "two", "/three"])
    await stays_false(lambda: len(b.texts(Kind.CHAT)) > 3, for_=0.1)


async def test_lines_waiting_when_their_sender_is_kicked_go_nowhere() -> None:
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), admins=["SHA256:op"],
              plugins=PluginHost([Passing()], 0.2, 0.5))
    op, _o = person(hub, "oper", "SHA256:op")
    alice, _a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    for n in range(3):
        hub.handle_line(alice, f"spam {n}")
    hub.handle_line(op, "/kick alice")
    await eventually(lambda: any("kicked" in t for t in b.texts(Kind.LEAVE)))
    await stays_false(lambda: bool(b.texts(Kind.CHAT, "alice")), for_=0.2)


async def test_a_plugin_whose_hooks_never_end_holds_a_bounded_number_of_them() -> None:
    class Stubborn(Plugin):
        """Its join hook ignores being cancelled and never ends (within the test)."""

        name = "stubborn"

        def __init__(self) -> None:
            self.started = 0

        async def on_join(self, event: Presence) -> None:
            self.started += 1
            await _sleep_through(10)

    stubborn = Stubborn()
    host = PluginHost([stubborn], 0.2, 0.05)
    timeouts: list[str] = []
    host.on_hook = lambda plugin, hook, seconds, outcome: timeouts.append(hook) if outcome == "timeout" else None
    hub = Hub(MemoryStore(), chat_settings(rate_burst=1000), plugins=host)
    for n in range(ABANDONED_MOST):
        person(hub, f"p{n}")
    await eventually(lambda: len(timeouts) == ABANDONED_MOST, timeout=3)
    for n in range(20):  # each login would otherwise leave one more task running forever
        person(hub, f"q{n}")
    await stays_false(lambda: stubborn.started > ABANDONED_MOST, for_=0.2)
    STOP_SLEEPING.set()


async def test_a_long_paste_behind_a_message_hook_is_told_once_what_was_not_sent() -> None:
    hub = hub_with(Passing())
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    for n in range(WAITING_MOST + 50):
        hub.handle_line(alice, f"line {n}")
    await eventually(lambda: len(b.texts(Kind.CHAT, 'alice')) == WAITING_MOST, timeout=5)
    assert b.texts(Kind.CHAT, "alice") == [f"line {n}" for n in range(WAITING_MOST)]
    assert len([n for n in a.notices if "not sent" in n]) == 1


@pytest.mark.parametrize("name", ["", "roll dice", "\x1b[2Jx", "9lives", "x" * 33])
def test_a_plugin_command_name_must_be_one_that_can_be_typed(name: str) -> None:
    class Odd(Plugin):
        name = "odd"

        def commands(self) -> list[CommandSpec]:
            return [CommandSpec(name, "", "odd", Echo().echo)]

    with pytest.raises(PluginError, match="command name"):
        PluginHost([Odd()], 0.2, 0.5)


def test_what_help_shows_of_a_plugin_command_is_cleaned() -> None:
    class Loud(Plugin):
        name = "loud"

        def commands(self) -> list[CommandSpec]:
            return [CommandSpec("loud", "\x1b[31mTEXT", "\x1b]0;owned\x07says it", Echo().echo)]

    hub = hub_with(Loud())
    alice, a = person(hub, "alice")
    hub.handle_line(alice, "/help loud")
    assert "/loud TEXT: says it" in a.notices
