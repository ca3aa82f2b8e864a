"""The plugin API: what a plugin is, what its hooks get and what they answer.

A plugin is a subclass of ``Plugin`` overriding the hooks it needs. Pure
data and protocols only: the host that runs hooks is ``chat/plugin_host.py``;
finding and importing plugins (entry points, ``module:attr``) is outside the
core, in ``sshchat/plugins/loader.py``.

Why a base class and not a bare Protocol: a plugin overrides only the hooks
it needs and the host can tell which (a hook left as the base's is never
run, so a plugin without a message hook costs messages nothing), and a reader
can copy a plugin of ten lines.

Why hooks are ``async def`` (the loader refuses plain functions): a hook
that waits (a sleep, a web request) can then be abandoned at its time limit
without holding anyone's message. A hook that computes for long without
awaiting cannot be stopped in the same process: the server runs one event
loop, so keep hooks' own work small (the README says so).

Hooks see names and text, never a ``Member``: what a plugin holds cannot
change a person, and a hook abandoned at its time limit can do nothing
afterwards (its ``Chat`` and ``CommandCall`` are closed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "DROP",
    "PASS",
    "Chat",
    "CommandCall",
    "CommandSpec",
    "Drop",
    "Pass",
    "Plugin",
    "PluginError",
    "Presence",
    "Rewrite",
    "Said",
    "Verdict",
]


class PluginError(ValueError):
    """A plugin that cannot be used as configured; ``str()`` says which and why,
    in one line (the server prints it and exits with status 2)."""


# ------------------------------------------------------------------ verdicts


@dataclass(frozen=True, slots=True)
class Pass:
    """Let the message through as it is."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Let it through as ``text`` instead (cleaned and length-checked again,
    as a person's line is)."""

    text: str


@dataclass(frozen=True, slots=True)
class Drop:
    """Hold the message back: nobody sees it; the sender is told ``notice``."""

    notice: str = "your message was held back by a filter"


Verdict = Pass | Rewrite | Drop
PASS = Pass()
DROP = Drop()


# -------------------------------------------------------- what hooks receive


class Chat(Protocol):
    """What a plugin may do in the chat: speak as its bot (``Plugin.bot_name``).

    Everything posted takes the one path of every message (cleaning, length,
    store, delivery), so a plugin cannot paint on anyone's terminal. Both
    calls return at once; what could not be posted is logged.
    """

    def say(self, room: str, text: str) -> None:
        """Post ``text`` to ``room`` (e.g. "#lobby") as the bot."""
        ...

    def tell(self, name: str, text: str) -> None:
        """Send ``text`` privately to the person called ``name``, if online here."""
        ...


@dataclass(frozen=True, slots=True)
class Said:
    """A message on its way, before it is stored: what ``on_message`` sees.

    ``kind`` is "chat" (a line typed, or a bot's ``say``) or "emote" (/me).
    The text is already cleaned and within the length limit.
    """

    sender: str
    room: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Presence:
    """Someone came (``on_join``) or went (``on_leave``): their name and the
    room they were looking at."""

    name: str
    room: str
    chat: Chat


@dataclass(frozen=True, slots=True)
class CommandCall:
    """One use of a plugin's command: who, where, what they typed, and how
    to answer (``reply`` to them alone, ``chat`` to speak as the bot)."""

    sender: str
    room: str
    args: list[str]
    rest: str  # the text after the command's name, stripped
    is_op: bool
    reply: Callable[[str], None]
    chat: Chat


CommandHandler = Callable[[CommandCall], Awaitable[None]]


@dataclass(frozen=True)
class CommandSpec:
    """A slash command a plugin adds: listed in /help (under "plugins"),
    /help NAME and Tab completion like the built-in ones, checked the same
    way (too few arguments: usage; ``op_only``: refused to others) and
    paying the same rate-limit token. It may not take a built-in's name."""

    name: str  # without the "/"
    params: str  # "NdM", "[TEXT]": shown in usage lines
    summary: str  # one line for /help
    handler: CommandHandler
    op_only: bool = False
    min_args: int = 0
    example: str = ""


# ------------------------------------------------------------------- plugin


class Plugin:
    """Subclass this and override what you need; every hook is optional.

    Hooks run with a time limit and their errors caught: one that raises,
    hangs or is slow is logged and skipped for that event. The server sets
    ``name`` (the name it was enabled by) before ``configure``.
    """

    name: str = ""
    # The name the plugin speaks under: must end in "-bot" and follow the
    # rule for names; nobody may log in under it (or one looking like it).
    # None: "<name>-bot" ("attr-bot" for a plugin enabled as module:Attr).
    bot_name: str | None = None

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Read this plugin's table of the TOML file (``[plugin.NAME]``),
        once at start; raise PluginError to stop the server with that line.
        The default takes no settings."""
        if settings:
            raise PluginError(f"plugin {self.name} takes no settings, got {', '.join(sorted(settings))}")

    def commands(self) -> Sequence[CommandSpec]:
        """The slash commands this plugin adds (asked once, at start)."""
        return ()

    def start(self, chat: Chat) -> None:
        """Called once the chat is up, with the bot's ``Chat`` to keep (e.g.
        for a timer task of the plugin's own)."""

    async def on_message(self, said: Said) -> Verdict:
        """A message in a room (not a private one), before it is stored:
        ``PASS``, ``Rewrite(text)`` or ``Drop(notice)``. Runs on the sender's
        node only; the sender's later messages wait for it, nobody else's do."""
        return PASS

    async def on_join(self, event: Presence) -> None:
        """Someone logged in (run in the background: the login never waits)."""

    async def on_leave(self, event: Presence) -> None:
        """Someone left (run in the background)."""


def overrides(plugin: Plugin, hook: str) -> bool:
    """Whether ``plugin`` has its own ``hook``: the base's hooks are never run."""
    return getattr(type(plugin), hook) is not getattr(Plugin, hook)


HOOKS = ("on_message", "on_join", "on_leave")
