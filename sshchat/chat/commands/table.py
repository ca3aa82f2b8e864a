"""The one table of slash commands, from which /help, usage lines and Tab
completion are made.

Each command is data (name, parameters, summary, minimum argument count,
operator-only flag, aliases, handler), checked before the handler runs: a
handler never sees too few arguments or a caller without the right to use
it, and every error names the right usage.
"""

from __future__ import annotations

from dataclasses import dataclass

from sshchat.chat.commands import moderation, people, rooms, talk, view
from sshchat.chat.commands.common import echo
from sshchat.chat.commands.core import Core, Handler
from sshchat.chat.member import Member


@dataclass(frozen=True)
class Command:
    """One slash command. ``rest`` in a handler is the text after the name."""

    name: str
    params: str
    summary: str
    handler: Handler
    min_args: int = 0
    op_only: bool = False
    aliases: tuple[str, ...] = ()
    group: str = "talk"
    example: str = ""

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.params}".rstrip()


def dispatch(core: Core, member: Member, line: str, table: CommandTable | None = None) -> None:
    """Run the command on ``line`` (which starts with "/") for ``member``,
    from ``table`` (default: the built-in commands)."""
    word, _, rest = line[1:].partition(" ")
    command = (table or BUILT_IN).get(word.lower())
    if command is None or (command.op_only and not core.is_op(member)):
        typed = echo(word, empty="")
        if command is not None:
            member.outlet.notice(f"/{typed} is for operators only")
        else:
            member.outlet.notice(f"unknown command /{typed}; type /help for the list")
        return
    rest = rest.strip()
    args = rest.split()
    if len(args) < command.min_args:
        member.outlet.notice(f"usage: {command.usage}")
        return
    command.handler(core, member, args, rest)


_GROUPS = (
    ("talk", "talking"), ("rooms", "rooms"), ("people", "people"), ("view", "your view"), ("ops", "operators"),
    ("plugins", "plugins"),
)


def help_(core: Core, member: Member, args: list[str], rest: str) -> None:
    is_op = core.is_op(member)
    table = core.commands
    if args:
        command = table.get(args[0].lstrip("/").lower())
        if command is None or (command.op_only and not is_op):
            member.outlet.notice(f"no command /{echo(args[0].lstrip('/'), empty='')}; type /help")
            return
        member.outlet.notice(f"{command.usage}: {command.summary}")
        if command.aliases:
            member.outlet.notice("also: " + ", ".join(f"/{a}" for a in command.aliases))
        if command.example:
            member.outlet.notice(f"example: {command.example}")
        return
    for group, title in _GROUPS:
        names = [f"/{c.name}" for c in table.commands if c.group == group and (is_op or not c.op_only)]
        if names:
            member.outlet.notice(f"{title + ':':11} {' '.join(names)}")
    member.outlet.notice("/help COMMAND explains one. Tab completes. Ctrl-C or Ctrl-D on an empty line leaves.")


C = Command
TABLE = (
    C("help", "[COMMAND]", "list commands, or explain one", help_, example="/help msg"),
    C("me", "ACTION", "say what you are doing: * alice waves", talk.me, 1, example="/me waves"),
    C("msg", "NAME TEXT", "send a private message", talk.msg, 2, example="/msg bob see you at 5",
      aliases=("dm", "whisper", "w")),
    C("reply", "TEXT", "answer the last person who wrote to you privately", talk.reply, 1, example="/reply ok!",
      aliases=("r",)),
    C("history", "[N]", "show the last N messages of this room (default 50)", talk.history, example="/history 100"),
    C("quit", "", "leave the chat", talk.quit_, aliases=("exit",)),
    C("join", "#ROOM", "go to a room, making it if it is new", rooms.join, 1, group="rooms", example="/join #rust",
      aliases=("j",)),
    C("part", "[#ROOM]", "leave this room (or another)", rooms.part, group="rooms", example="/part #rust",
      aliases=("leave",)),
    C("rooms", "[TEXT]", "your rooms, then the busiest (or those named with TEXT): online, unread, topic",
      rooms.rooms, group="rooms", example="/rooms rust", aliases=("list",)),
    C("topic", "[TEXT]", "show this room's topic (its creator and operators: set it)", rooms.topic,
      group="rooms", example="/topic release on Friday"),
    C("names", "[#ROOM]", "who is in this room (or another)", rooms.names, group="people", example="/names #rust",
      aliases=("who", "users")),
    C("whois", "NAME", "key, registration, time connected, idle time, away", people.whois, 1,
      group="people", example="/whois bob"),
    C("nick", "NEWNAME", "change your name", people.nick, 1, group="people", example="/nick alice2"),
    C("away", "[REASON]", "tell people you are away", people.away, group="people", example="/away lunch"),
    C("back", "", "you are back", people.back, group="people"),
    C("ignore", "[NAME]", "never see NAME's messages (no NAME: list)", people.ignore, group="people",
      example="/ignore mallory"),
    C("unignore", "NAME", "see NAME's messages again", people.unignore, 1, group="people"),
    C("motd", "[TEXT]", "show the message of the day (operators: set it; - clears)", people.motd, group="people"),
    C("kick", "NAME [REASON]", "operators: disconnect someone; a room's creator: remove them from it",
      moderation.kick, 1, group="rooms", example="/kick bob please stop"),
    C("quiet", "", "hide (or show again) join and leave notices", view.quiet, group="view"),
    C("timestamp", "off|time|datetime [ZONE]", "times on messages; ZONE: UTC, +05:30, Europe/Paris",
      view.timestamp, 1, group="view", example="/timestamp time Europe/Paris"),
    C("theme", "256|16|mono", "colours: 256, 16 for basic terminals, or none", view.theme, 1, group="view",
      example="/theme mono"),
    C("bell", "off|mention|all", "when your terminal beeps (default: mentions and private)", view.bell, 1,
      group="view", example="/bell off"),
    C("ban", "TARGET [DURATION] [REASON]", "turn away a NAME (their key and address), key:FP or ip:ADDR[/N]",
      moderation.ban, 1, op_only=True, group="ops", example="/ban bob 2h spam"),
    C("unban", "TARGET", "lift a ban on a NAME, fingerprint:... or ip:...", moderation.unban, 1, op_only=True,
      group="ops", example="/unban ip:203.0.113.0/24"),
    C("banned", "", "list bans with expiry and reason", moderation.banned, op_only=True, group="ops"),
    C("mute", "NAME [DURATION] [REASON]", "only they see their messages", moderation.mute, 1, op_only=True,
      group="ops", example="/mute bob 10m calm down"),
    C("unmute", "NAME", "let someone be heard again", moderation.unmute, 1, op_only=True, group="ops"),
    C("op", "NAME", "make someone's key an operator", moderation.op, 1, op_only=True, group="ops"),
    C("deop", "NAME", "take operator status away", moderation.deop, 1, op_only=True, group="ops"),
    C("rmroom", "#ROOM [REASON]", "remove a room and its history; its people go to #lobby", rooms.rmroom, 1,
      op_only=True, group="ops", example="/rmroom #spam flooded"),
    C("unregister", "NAME", "release a name from its key", moderation.unregister, 1, op_only=True, group="ops"),
    C("allow", "add|remove|list [TARGET]", "manage the allowlist: a NAME or fingerprint:SHA256:...",
      moderation.allow, 1, op_only=True, group="ops", example="/allow add bob"),
    C("audit", "[N]", "show the last N moderation actions", moderation.audit, op_only=True, group="ops"),
)

COMMANDS: dict[str, Command] = {name: c for c in TABLE for name in (c.name, *c.aliases)}
"""Every command by each of its names (aliases included)."""


class CommandTable:
    """The commands of one chat: the built-in ones, and those its plugins add.

    One per hub (not a module-level list that plugins would change): /help,
    dispatch and Tab completion of a hub read its own, and two hubs in one
    process (tests) never see each other's plugins.
    """

    def __init__(self, commands: tuple[Command, ...]) -> None:
        self.commands = commands
        self.by_name: dict[str, Command] = {name: c for c in commands for name in (c.name, *c.aliases)}
        # Tab completion's candidates, sorted once: everyone's, and operators'
        self.user_names = sorted({f"/{c.name} " for c in commands if not c.op_only})
        self.all_names = sorted({f"/{c.name} " for c in commands})

    def get(self, name: str) -> Command | None:
        return self.by_name.get(name)

    def extended(self, extra: list[Command]) -> CommandTable:
        """This table with ``extra`` added; ValueError (saying which) if one
        would take the name of a command already there: a plugin never
        replaces a built-in command, nor another plugin's."""
        taken = dict(self.by_name)
        for command in extra:
            for name in (command.name, *command.aliases):
                if name.lower() in taken:
                    raise ValueError(f"/{name} is already a command")
                taken[name.lower()] = command
        return CommandTable((*self.commands, *extra))


BUILT_IN = CommandTable(TABLE)
"""The built-in commands alone (a chat without plugins)."""
