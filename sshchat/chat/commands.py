"""The slash commands: one table, from which /help and usage lines are made.

Each command is data (name, parameters, summary, minimum argument count,
handler), checked before the handler runs, so a handler never sees too few
arguments and every error names the right usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sshchat.chat.message import Kind

if TYPE_CHECKING:
    from sshchat.chat.hub import Hub
    from sshchat.chat.member import Member

Handler = Callable[["Hub", "Member", list[str], str], None]


@dataclass(frozen=True)
class Command:
    """One slash command. ``rest`` in a handler is the text after the name."""

    name: str
    params: str
    summary: str
    handler: Handler
    min_args: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.params}".rstrip()


def dispatch(hub: Hub, member: Member, line: str) -> None:
    """Run the command on ``line`` (which starts with "/") for ``member``."""
    word, _, rest = line[1:].partition(" ")
    command = COMMANDS.get(word.lower())
    if command is None:
        shown = hub.accept_text(member, word) or ""
        member.outlet.notice(f"unknown command /{shown[:32]}; type /help for the list")
        return
    rest = rest.strip()
    args = rest.split()
    if len(args) < command.min_args:
        member.outlet.notice(f"usage: {command.usage}")
        return
    command.handler(hub, member, args, rest)


def ago(seconds: float) -> str:
    """A short human duration: 45s, 3m, 2h 5m, 4d 1h."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


# ----------------------------------------------------------------- handlers


def _help(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    if args:
        command = COMMANDS.get(args[0].lstrip("/").lower())
        if command is None:
            member.outlet.notice(f"no command /{args[0].lstrip('/')[:32]}; type /help")
        else:
            member.outlet.notice(f"{command.usage}: {command.summary}")
        return
    lines = ["commands:"]
    width = max(len(c.usage) for c in _TABLE)
    lines += [f"  {c.usage.ljust(width)}  {c.summary}" for c in _TABLE]
    lines.append("Ctrl-C or Ctrl-D on an empty line leaves; // starts a message with /")
    for line in lines:
        member.outlet.notice(line)


def _me(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    text = hub.accept_text(member, rest)
    if text:
        hub.say(member, Kind.EMOTE, text)


def _msg(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target = hub.find(args[0])
    if target is None:
        shown = hub.accept_text(member, args[0]) or "?"
        member.outlet.notice(f"no one called {shown[:32]} is online")
        return
    text = hub.accept_text(member, rest[len(args[0]) :])
    if text:
        hub.private(member, target, text)


def _names(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    names = sorted((m.name for m in hub.members.values()), key=str.casefold)
    member.outlet.notice(f"{len(names)} online: {', '.join(names)}")


def _nick(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    hub.rename(member, rest)  # the whole rest: "bad name" is refused, not cut to "bad"


def _whois(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target = hub.find(args[0])
    if target is None:
        shown = hub.accept_text(member, args[0]) or "?"
        member.outlet.notice(f"no one called {shown[:32]} is online")
        return
    now = hub.clock()
    key = f"key {target.fingerprint}" if target.fingerprint else "no key"
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(target.connected_at))
    member.outlet.notice(
        f"{target.name}: {key}; connected since {since} "
        f"({ago(now - target.connected_at)} ago); idle {ago(now - target.last_active)}"
    )


def _quit(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    member.outlet.close("bye")


_TABLE = (
    Command("help", "[COMMAND]", "list commands, or explain one", _help),
    Command("me", "ACTION", "say what you are doing: * alice waves", _me, 1),
    Command("msg", "NAME TEXT", "send a private message", _msg, 2),
    Command("names", "", "who is online", _names),
    Command("nick", "NEWNAME", "change your name", _nick, 1),
    Command("whois", "NAME", "key, time connected and idle time of someone", _whois, 1),
    Command("quit", "", "leave the chat (also /exit)", _quit, aliases=("exit",)),
)

COMMANDS: dict[str, Command] = {
    name: c for c in _TABLE for name in (c.name, *c.aliases)
}
