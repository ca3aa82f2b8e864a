"""The plugins that ship with sshchat (dice, wordfilter), how plugins are
found and enabled (entry points, module:attr, --plugin, the TOML file), and
what a person sees over real SSH."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyte
import pytest

from sshchat.chat.hub import Hub
from sshchat.chat.message import Kind
from sshchat.chat.plugins import PluginError
from sshchat.config import load as load_config
from sshchat.plugins import loader
from sshchat.plugins.dice import MAX_DICE, Dice, parse
from sshchat.plugins.wordfilter import HELD, WordFilter
from sshchat.store.memory import MemoryStore
from tests.support.chat import person
from tests.support.plugins import Hello
from tests.support.settings import chat_settings
from tests.support.waiting import eventually

SSHCHAT = [sys.executable, "-m", "sshchat", "serve", "--host", "127.0.0.1", "--port", "0"]


def hub_of(names: list[str], settings: dict[str, dict[str, Any]] | None = None) -> Hub:
    host = loader.load(names, settings or {}, 0.2, 1.0)
    return Hub(MemoryStore(), chat_settings(rate_burst=1000), plugins=host)


def words_file(tmp_path: Path, *words: str) -> str:
    path = tmp_path / "words.txt"
    path.write_text("# filtered words\n" + "\n".join(words) + "\n")
    return str(path)


# ---------------------------------------------------------------------- dice


async def test_roll_shows_everyone_the_throw_and_the_sum() -> None:
    hub = hub_of(["dice"])
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "/roll 2d6")
    await eventually(lambda: len(b.texts(Kind.CHAT, "dice-bot")) == 1)
    line = b.texts(Kind.CHAT, "dice-bot")[0]
    assert line.startswith("alice rolls 2d6: ")
    throws, total = line.split(": ")[1].split(" = ")
    values = [int(v) for v in throws.split(" + ")]
    assert len(values) == 2 and all(1 <= v <= 6 for v in values) and sum(values) == int(total)
    assert a.texts(Kind.CHAT, "dice-bot") == [line]


@pytest.mark.parametrize("spec", ["2x6", "d1", "0d6", "1000000d1000000", "101d6", "1d1001", "2d6 3d6", "-1d6"])
async def test_a_bad_or_huge_roll_gets_the_usage(spec: str) -> None:
    hub = hub_of(["dice"])
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    started = time.perf_counter()
    hub.handle_line(alice, f"/roll {spec}")
    await eventually(lambda: any(n.startswith("usage: /roll") for n in a.notices))
    assert time.perf_counter() - started < 0.5
    assert b.texts(Kind.CHAT, "dice-bot") == []


def test_dice_bounds() -> None:
    assert parse("d20") == (1, 20)
    assert parse(f"{MAX_DICE}d6") == (MAX_DICE, 6)
    assert parse(f"{MAX_DICE + 1}d6") is None
    assert parse("9" * 5000 + "d6") is None  # refused by its length, never turned into a number


# ---------------------------------------------------------------- wordfilter


async def test_wordfilter_replaces_words(tmp_path: Path) -> None:
    hub = hub_of(["wordfilter"], {"wordfilter": {"words": words_file(tmp_path, "darn", "Heck")}})
    alice, _ = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "DARN it, what the heck; darned classic")
    await eventually(lambda: len(b.texts(Kind.CHAT, "alice")) == 1)
    assert b.texts(Kind.CHAT, "alice") == ["**** it, what the ****; darned classic"]


async def test_wordfilter_holds_messages_back(tmp_path: Path) -> None:
    settings = {"wordfilter": {"words": words_file(tmp_path, "darn"), "action": "hold"}}
    hub = hub_of(["wordfilter"], settings)
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    hub.handle_line(alice, "oh darn")
    hub.handle_line(alice, "fine words")
    await eventually(lambda: b.texts(Kind.CHAT, "alice") == ["fine words"])
    assert HELD in a.notices
    assert "oh darn" not in a.texts(Kind.CHAT)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({}, "set words ="),
        ({"words": "/nonexistent/words"}, "cannot read words file /nonexistent/words"),
        ({"words": "WORDS", "action": "shout"}, "action must be replace or hold"),
        ({"words": "WORDS", "colour": "red"}, "unknown setting 'colour'"),
    ],
)
def test_wordfilter_settings_errors(tmp_path: Path, settings: dict[str, Any], error: str) -> None:
    settings = {k: words_file(tmp_path, "x") if v == "WORDS" else v for k, v in settings.items()}
    with pytest.raises(PluginError, match=error):
        loader.load(["wordfilter"], {"wordfilter": settings}, 0.2, 1.0)


def test_wordfilter_costs_the_length_of_the_line_not_the_words(tmp_path: Path) -> None:
    few, many = WordFilter(), WordFilter()
    few.configure({"words": words_file(tmp_path, *(f"w{n}" for n in range(10)))})
    many.configure({"words": words_file(tmp_path, *(f"w{n}" for n in range(10_000)))})
    line = ("word " * 205)[:1024]

    def cost(plugin: WordFilter) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(20):
                plugin.filter(line)
            best = min(best, time.perf_counter() - started)
        return best / 20

    assert cost(many) < 3 * cost(few) + 50e-6  # 1000x the words, about the same cost


# ----------------------------------------------------------- finding plugins


def test_the_shipped_plugins_are_entry_points() -> None:
    assert {"dice", "wordfilter"} <= set(loader.installed())
    assert isinstance(loader.make("dice", {}), Dice)


def test_module_attr_and_a_monkeypatched_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = loader.make("tests.support.plugins:Hello", {})
    assert isinstance(plugin, Hello) and plugin.name == "tests.support.plugins:Hello"
    fake = importlib.metadata.EntryPoint("hello", "tests.support.plugins:Hello", loader.GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [fake] if group == loader.GROUP else [])
    assert isinstance(loader.make("hello", {}), Hello)


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("nosuch", "unknown plugin 'nosuch'"),
        ("nosuch_module_x:Thing", "cannot import nosuch_module_x"),
        ("tests.support.plugins:Nothing", "has no Nothing"),
        ("tests.support.plugins:CommandSpec", "cannot be made"),
        ("tests.support.plugins:__doc__", "is not a sshchat.chat.plugins.Plugin"),
    ],
)
def test_a_plugin_that_cannot_be_used(name: str, error: str) -> None:
    with pytest.raises(PluginError, match=error):
        loader.load([name], {}, 0.2, 1.0)


def test_settings_for_a_plugin_not_enabled_and_settings_it_does_not_take() -> None:
    with pytest.raises(PluginError, match="not enabled"):
        loader.load(["dice"], {"wordfilter": {"words": "x"}}, 0.2, 1.0)
    with pytest.raises(PluginError, match="takes no settings"):
        loader.load(["dice"], {"dice": {"sides": 6}}, 0.2, 1.0)


def test_the_toml_file_and_the_flag(tmp_path: Path) -> None:
    toml = tmp_path / "sshchat.toml"
    toml.write_text('plugins = ["dice", "wordfilter"]\nplugin_timeout = 0.5\n'
                    '[plugin.wordfilter]\nwords = "w.txt"\naction = "hold"\n')
    config = load_config(str(toml))
    assert config.plugins == ("dice", "wordfilter") and config.plugin_timeout == 0.5
    assert config.plugin == {"wordfilter": {"words": "w.txt", "action": "hold"}}
    assert load_config(str(toml), {}, {"plugins": ["dice"]}).plugins == ("dice",)
    assert load_config(None, {"SSHCHAT_PLUGINS": "dice, wordfilter"}).plugins == ("dice", "wordfilter")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SSHCHAT, "--host-key", str(tmp_path / "host"), "--db", str(tmp_path / "chat.db"), *args],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )


def test_an_unknown_plugin_stops_the_start_with_one_line(tmp_path: Path) -> None:
    r = run(tmp_path, "--plugin", "dice", "--plugin", "nosuch")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "sshchat: unknown plugin 'nosuch' (installed: dice, wordfilter; or give module:attr)"
    ]


def test_a_bad_words_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    toml = tmp_path / "sshchat.toml"
    toml.write_text('plugins = ["wordfilter"]\n[plugin.wordfilter]\nwords = "missing.txt"\n')
    r = run(tmp_path, "--config", str(toml))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "sshchat: plugin wordfilter: cannot read words file missing.txt: No such file or directory"
    ]


# ------------------------------------------------------------- over real SSH


async def test_a_roll_over_ssh_is_seen_by_both(start_server: Any, tmp_path: Path) -> None:
    words = words_file(tmp_path, "darn")
    server = await start_server(
        plugins=("dice", "wordfilter", "tests.support.plugins:Hello"), plugin={"wordfilter": {"words": words}}
    )
    alice = await server.connect("alice")
    bob = await server.connect("bob")
    alice.line("/roll 3d4")
    for client in (alice, bob):
        await client.wait_for("dice-bot: alice rolls 3d4: ")
    alice.line("darn it")
    await bob.wait_for("alice: **** it")
    bob.line("/help roll")
    await bob.wait_for("/roll [N]dM: roll dice")
    bob.line("/hello")
    await alice.wait_for("hello-bot: hello bob")
    refused = await server.connect("dice-bot")
    await refused.wait_for(lambda c: "bot" in c.stderr + c.text)


# ------------------------------------------------- the README's example plugin


def readme_example(folder: Path) -> None:
    """The README's example plugin, written out as the package ``greet``."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("    # greet/__init__.py")
    end = readme.index("and its `pyproject.toml`", start)
    code = "\n".join(line[4:] for line in readme[start:end].splitlines())
    (folder / "greet").mkdir()
    (folder / "greet" / "__init__.py").write_text(code)


async def test_the_readme_example_plugin_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme_example(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    hub = hub_of(["greet:Greet"], {"greet:Greet": {"greeting": "hi there"}})
    alice, a = person(hub, "alice")
    _bob, b = person(hub, "bob")
    await eventually(lambda: b.texts(Kind.PRIVATE) == ["hi there, bob!"])
    hub.handle_line(alice, "/hug bob")
    await eventually(lambda: b.texts(Kind.CHAT, "greet-bot") == ["alice hugs bob"])
    hub.handle_line(alice, "HELLO EVERYONE")
    hub.handle_line(alice, "!secret 1234")
    await eventually(lambda: "Hello everyone" in b.texts(Kind.CHAT, "alice"))
    await eventually(lambda: "keep that to yourself" in a.notices)
    assert not any("1234" in m.text for m in b.messages)
    hub.handle_line(alice, "/help")
    assert any(n.startswith("plugins:") and "/hug" in n for n in a.notices)


async def test_tab_completes_a_plugin_command_on_a_terminal(start_server: Any) -> None:
    server = await start_server(plugins=("dice",))
    alice = await server.connect("alice", pty=True, term="xterm-256color", width=60)
    screen = pyte.Screen(60, 24)
    stream = pyte.Stream(screen)

    fed = 0

    def lines() -> list[str]:
        nonlocal fed
        stream.feed(alice.output[fed:])
        fed = len(alice.output)
        return [line.rstrip() for line in screen.display]

    await alice.wait_for(lambda c: any(line.startswith("[alice #lobby]") for line in lines()))
    alice.send("/rol\t")
    await alice.wait_for(lambda c: "[alice #lobby] /roll" in lines())
    alice.send("2d6\r")
    await alice.wait_for(lambda c: any(line.startswith("dice-bot: alice rolls 2d6: ") for line in lines()))
