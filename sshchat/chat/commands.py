"""The slash commands: one table, from which /help and usage lines are made.

Each command is data (name, parameters, summary, minimum argument count,
operator-only flag, handler), checked before the handler runs: a handler
never sees too few arguments or a caller without the right to use it, and
every error names the right usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sshchat.chat.member import identity
from sshchat.chat.message import Kind
from sshchat.chat.moderation import parse_duration, parse_network, until_text, when
from sshchat.chat.names import NAME_RE, name_key, shown
from sshchat.chat.prefs import BELLS, MAX_IGNORES, THEMES, TIMESTAMPS, parse_zone
from sshchat.chat.store import Ban, Mute

if TYPE_CHECKING:
    from sshchat.chat.hub import Hub
    from sshchat.chat.member import Member
    from sshchat.chat.room import Room

Handler = Callable[["Hub", "Member", list[str], str], None]

FINGERPRINT_PREFIX = "fingerprint:"
IP_PREFIX = "ip:"


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


def dispatch(hub: Hub, member: Member, line: str) -> None:
    """Run the command on ``line`` (which starts with "/") for ``member``."""
    word, _, rest = line[1:].partition(" ")
    command = COMMANDS.get(word.lower())
    if command is None or (command.op_only and not hub.is_op(member)):
        shown = (hub.accept_text(member, word) or "")[:32]
        if command is not None:
            member.outlet.notice(f"/{shown} is for operators only")
        else:
            member.outlet.notice(f"unknown command /{shown}; type /help for the list")
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


def _count(args: list[str], default: int, most: int) -> int | None:
    """A positive count from the first argument, capped at ``most``."""
    if not args:
        return default
    return min(int(args[0]), most) if args[0].isdigit() and int(args[0]) > 0 else None


def _resolve_key(hub: Hub, member: Member, target: str) -> tuple[str | None, Member | None, str]:
    """A target as (fingerprint or None, online member or None, label).

    Accepts "fingerprint:SHA256:...", an online name, or a registered name.
    Tells ``member`` and returns (None, None, "") when nothing matches.
    """
    if target.startswith(FINGERPRINT_PREFIX):
        fp = target[len(FINGERPRINT_PREFIX) :]
        if not fp.startswith("SHA256:") or len(fp) < 20:
            member.outlet.notice("a fingerprint looks like fingerprint:SHA256:AbC...")
            return None, None, ""
        online = next((m for m in hub.members.values() if m.fingerprint == fp), None)
        return fp, online, fp
    online = hub.find(target)
    if online is not None:
        return online.fingerprint, online, online.name
    binding = hub.names.binding(target)
    if binding is not None:
        return binding.fingerprint, None, binding.name
    shown = (hub.accept_text(member, target) or "?")[:32]
    member.outlet.notice(f"no one called {shown} is online or registered")
    return None, None, ""


def _duration_and_reason(args: list[str]) -> tuple[float | None, str]:
    """Split "[DURATION] [REASON...]"; the first word is a duration if it parses."""
    if args and parse_duration(args[0]) is not None:
        return parse_duration(args[0]), " ".join(args[1:])
    return None, " ".join(args)


# ----------------------------------------------------------------- everyone


_GROUPS = (("talk", "talking"), ("rooms", "rooms"), ("people", "people"), ("view", "your view"), ("ops", "operators"))


def _help(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    is_op = hub.is_op(member)
    if args:
        command = COMMANDS.get(args[0].lstrip("/").lower())
        if command is None or (command.op_only and not is_op):
            shown = (hub.accept_text(member, args[0].lstrip("/")) or "")[:32]
            member.outlet.notice(f"no command /{shown}; type /help")
            return
        member.outlet.notice(f"{command.usage}: {command.summary}")
        if command.aliases:
            member.outlet.notice("also: " + ", ".join(f"/{a}" for a in command.aliases))
        if command.example:
            member.outlet.notice(f"example: {command.example}")
        return
    for group, title in _GROUPS:
        names = [f"/{c.name}" for c in _TABLE if c.group == group and (is_op or not c.op_only)]
        if names:
            member.outlet.notice(f"{title + ':':11} {' '.join(names)}")
    member.outlet.notice("/help COMMAND explains one. Tab completes. Ctrl-C or Ctrl-D on an empty line leaves.")


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
    if args:
        room = hub.rooms.get(name_key(args[0]))
        if room is None:
            member.outlet.notice(f"no room called {(hub.accept_text(member, args[0]) or '?')[:32]}; see /rooms")
            return
    else:
        room = hub.room_of(member)
    people = sorted(room.members.values(), key=lambda m: m.key)
    names = [m.name + (" (away)" if m.away else "") for m in people]
    member.outlet.notice(f"{len(names)} in {room.name}: {', '.join(names) or 'nobody'}")


def _join(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    hub.enter(member, rest)  # "#sp ace" is refused, not cut to "#sp"


def _part(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    hub.part(member, args[0] if args else None)


ROOMS_SHOWN = 30  # lines one /rooms prints at most: a server may have a thousand rooms


def _rooms(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    """Your rooms first, then the busiest; a filter finds the rest."""
    needle = name_key(rest.strip())  # room keys are name keys: case and compatibility forms alike
    rooms = [room for room in hub.rooms.values() if needle in room.key]

    def order(room: Room) -> tuple[int, int, str]:
        mine = 0 if room.key == member.room else 1 if room.key in member.rooms else 2
        return (mine, -len(room.members) if mine == 2 else 0, room.key)

    rooms.sort(key=order)
    plural = "" if len(rooms) == 1 else "s"
    what = f"{len(rooms)} room{plural} with '{shown(needle)}' in the name" if needle else f"{len(rooms)} room{plural}"
    member.outlet.notice(f"{what} (* you are here, + you are a member):")
    for room in rooms[:ROOMS_SHOWN]:
        mark = "*" if room.key == member.room else "+" if room.key in member.rooms else " "
        unread = member.unread.get(room.key, 0)
        details = [f"{len(room.members)} online"]
        if unread:
            details.append(f"{unread} unread")
        topic = f" - {room.info.topic}" if room.info.topic else ""
        member.outlet.notice(f" {mark}{room.name} ({', '.join(details)}){topic}")
    if len(rooms) > ROOMS_SHOWN:
        member.outlet.notice(
            f"... and {len(rooms) - ROOMS_SHOWN} more; /rooms TEXT lists the rooms with TEXT in their name"
        )


def _topic(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    hub.set_topic(member, hub.accept_text(member, rest) if rest else None)


def _reply(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target = hub.find(member.last_pm_from) if member.last_pm_from else None
    if target is None:
        who = f"{member.last_pm_from} is not online" if member.last_pm_from else "nobody has written to you yet"
        member.outlet.notice(f"{who}; use /msg NAME TEXT")
        return
    text = hub.accept_text(member, rest)
    if text:
        hub.private(member, target, text)


def _nick(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    hub.rename(member, rest)  # the whole rest: "bad name" is refused, not cut to "bad"


def _whois(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target = hub.find(args[0])
    binding = hub.names.binding(args[0])
    if target is None:
        if binding is None:
            shown = hub.accept_text(member, args[0]) or "?"
            member.outlet.notice(f"no one called {shown[:32]} is online or registered")
        else:
            member.outlet.notice(
                f"{binding.name} is offline; the name is registered to {binding.fingerprint}"
            )
        return
    now = hub.clock()
    key = f"key {target.fingerprint}" if target.fingerprint else "no key"
    standing = "registered" if binding is not None else "not registered"
    if hub.is_op(target):
        standing += ", operator"
    if target.away:
        standing += f", away: {target.away}"
    member.outlet.notice(
        f"{target.name}: {key} ({standing}); connected since {when(target.connected_at)} "
        f"({ago(now - target.connected_at)} ago); idle {ago(now - target.last_active)}"
    )


def _history(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    most = hub.settings.history_per_call
    count = _count(args, 50, most)
    if count is None:
        member.outlet.notice(f"usage: /history [N] (N from 1 to {most})")
        return

    room = hub.room_of(member)

    def show(messages: list) -> None:
        member.outlet.notice(f"the last {len(messages)} messages of {room.name}:")
        for msg in messages:
            member.outlet.deliver(msg)

    hub.store.history(room.name, None, count, show)


def _motd(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    if not rest:
        for line in (hub.moderation.motd or "there is no message of the day").splitlines():
            member.outlet.notice(line)
        return
    if not hub.is_op(member):
        member.outlet.notice("only operators can set the message of the day")
        return
    text = None if rest == "-" else hub.accept_text(member, rest)
    hub.moderation.set_motd(text)
    hub.audit(member, "motd", "-", text or "(cleared)")
    member.outlet.notice("message of the day cleared" if text is None else "message of the day set")


def _away(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    member.away = hub.accept_text(member, rest) or "away"
    member.outlet.notice(f"you are away ({member.away}); /back when you return")


def _back(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    if member.away is None:
        member.outlet.notice("you were not away")
        return
    member.away = None
    member.outlet.notice("welcome back")


def _ignore(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    ignores = member.prefs.ignores
    if not args:
        member.outlet.notice(f"ignoring: {', '.join(ignores)}" if ignores else "you ignore nobody")
        return
    if NAME_RE.fullmatch(args[0]) is None:
        member.outlet.notice("/ignore takes a name: 1-16 letters, digits, _ or -")
        return
    key = name_key(args[0])
    if key == member.key:
        member.outlet.notice("you cannot ignore yourself")
        return
    if key not in ignores:
        if len(ignores) >= MAX_IGNORES:
            member.outlet.notice(f"you ignore {MAX_IGNORES} people already; /unignore someone first")
            return
        ignores.append(key)
        hub.save_prefs(member)
    member.outlet.notice(f"ignoring {args[0][:16]}: their messages never reach you; /unignore to undo")


def _unignore(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    key = name_key(args[0])
    if key not in member.prefs.ignores:
        member.outlet.notice(f"you are not ignoring {(hub.accept_text(member, args[0]) or '?')[:16]}")
        return
    member.prefs.ignores.remove(key)
    hub.save_prefs(member)
    member.outlet.notice(f"no longer ignoring {args[0][:16]}")


def _quiet(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    member.prefs.quiet = not member.prefs.quiet
    hub.save_prefs(member)
    member.outlet.notice("join and leave notices hidden; /quiet again shows them"
                         if member.prefs.quiet else "join and leave notices shown")


def _choice(member: Member, args: list[str], options: tuple[str, ...], what: str) -> str | None:
    if not args or args[0].lower() not in options:
        member.outlet.notice(f"usage: /{what} {'|'.join(options)}")
        return None
    return args[0].lower()


def _timestamp(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    mode = _choice(member, args[:1], TIMESTAMPS, "timestamp")
    if mode is None:
        return
    zone = args[1] if len(args) > 1 else member.prefs.zone
    if parse_zone(zone) is None:
        member.outlet.notice(f"unknown time zone {(hub.accept_text(member, zone) or '?')[:40]}: "
                             "use UTC, an offset like +05:30, or a name like Europe/Paris")
        return
    member.prefs.timestamps, member.prefs.zone = mode, zone
    hub.save_prefs(member)
    member.outlet.prompt_changed()  # the view changed: redraw with the new settings
    member.outlet.notice("timestamps off" if mode == "off" else f"timestamps: {mode}, {zone}")


def _theme(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    theme = _choice(member, args, THEMES, "theme")
    if theme is None:
        return
    member.prefs.theme = theme
    hub.save_prefs(member)
    member.outlet.prompt_changed()
    member.outlet.notice(f"theme: {theme}")


def _bell(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    bell = _choice(member, args, BELLS, "bell")
    if bell is None:
        return
    member.prefs.bell = bell
    hub.save_prefs(member)
    member.outlet.notice(f"bell: {bell}")


def _quit(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    member.outlet.close("bye")


# --------------------------------------------------------------- operators


def _kick(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    is_op = hub.is_op(member)
    if not is_op and not hub.may_manage(member, hub.room_of(member)):
        member.outlet.notice("only operators, and the creator of a room (in that room), can /kick")
        return
    target = hub.find(args[0])
    if target is None:
        member.outlet.notice(f"no one called {(hub.accept_text(member, args[0]) or '?')[:32]} is online")
        return
    reason = hub.accept_text(member, " ".join(args[1:])) or ""
    if _protected(hub, member, target.fingerprint, target.name):
        return
    if not is_op:
        hub.remove_from_room(member, target, reason)
        return
    hub.audit(member, "kick", target.name, reason)
    because = f": {reason}" if reason else ""
    hub.disconnect(target, f"kicked by {member.name}{because}", f"you were kicked by {member.name}{because}")


def _ban(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target, *more = args
    until, reason = _duration_and_reason(more)
    reason = hub.accept_text(member, reason) or ""
    now = hub.clock()
    if target.startswith(IP_PREFIX):
        network = parse_network(target[len(IP_PREFIX) :])
        if network is None:
            member.outlet.notice("an address looks like ip:203.0.113.7 or ip:203.0.113.0/24")
            return
        kind, value, label = "ip", network, network
    else:
        fp, online, label = _resolve_key(hub, member, target)
        if not label:
            return
        if fp is not None:
            kind, value = "fingerprint", fp
        elif online is not None:  # no key: the address is all we have
            kind, value = "ip", parse_network(online.address) or online.address
            label = f"{online.name} (no key, so their address {value})"
        else:
            return
    if kind == "fingerprint" and _protected(hub, member, value, label):
        return
    ban = Ban(kind, value, now + until if until else None, reason, member.name, now)
    hub.moderation.ban(ban)
    hub.audit(member, "ban", f"{kind}:{value}", reason + (f" for {args[1]}" if until else ""))
    member.outlet.notice(f"banned {label}{until_text(ban.until)}")
    for victim in list(hub.members.values()):
        if victim is not member and hub.moderation.ban_for(victim.fingerprint, victim.address) is ban:
            because = f": {reason}" if reason else ""
            hub.disconnect(
                victim, f"banned by {member.name}{because}",
                f"you were banned by {member.name}{until_text(ban.until)}{because}",
            )


    for room in hub.rooms.values():  # bots following a room are turned away too
        for visitor in list(room.listeners):
            if hub.moderation.ban_for(visitor.fingerprint, visitor.address) is ban:
                visitor.outlet.close(f"you were banned by {member.name}")


def _protected(hub: Hub, actor: Member, fingerprint: str | None, label: str) -> bool:
    """Admins from --admin-keys are out of reach of operators made at runtime
    (the actor is told so)."""
    admins = hub.moderation.admins
    if fingerprint is None or fingerprint not in admins or actor.fingerprint in admins:
        return False
    actor.outlet.notice(f"{label} is an admin (--admin-keys); operators cannot act on admins")
    return True


def _unban(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    target = args[0]
    if target.startswith(IP_PREFIX):
        key = ("ip", parse_network(target[len(IP_PREFIX) :]) or "")
    elif target.startswith(FINGERPRINT_PREFIX):
        key = ("fingerprint", target[len(FINGERPRINT_PREFIX) :])
    else:
        binding = hub.names.binding(target)
        key = ("fingerprint", binding.fingerprint if binding else "")
    if hub.moderation.unban(*key) is None:
        member.outlet.notice(f"no ban on {(hub.accept_text(member, target) or '?')[:60]}; see /banned")
        return
    hub.audit(member, "unban", f"{key[0]}:{key[1]}")
    member.outlet.notice(f"lifted the ban on {key[1]}")


def _banned(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    bans = hub.moderation.active_bans()
    if not bans:
        member.outlet.notice("no bans")
        return
    member.outlet.notice(f"{len(bans)} bans:")
    for b in bans:
        member.outlet.notice(
            f"  {b.kind}:{b.value} by {b.by} on {when(b.time)}, "
            f"{'until ' + when(b.until) if b.until else 'until lifted'}"
            + (f": {b.reason}" if b.reason else "")
        )


def _mute(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = _resolve_key(hub, member, args[0])
    if not label:
        return
    if _protected(hub, member, fp, label):
        return
    target = identity(fp, name_key(label) if online is None else online.key)
    until, reason = _duration_and_reason(args[1:])
    reason = hub.accept_text(member, reason) or ""
    now = hub.clock()
    mute = Mute(target, now + until if until else None, reason, member.name, now)
    hub.moderation.mute(mute)
    hub.audit(member, "mute", target, reason + (f" for {args[1]}" if until else ""))
    member.outlet.notice(f"muted {label}{until_text(mute.until)}")
    if online is not None:
        online.muted_reminded = hub.clock()  # told now; no reminder on their next line
        online.outlet.notice(
            f"you were muted by {member.name}{until_text(mute.until)}: nobody else sees your messages"
        )


def _unmute(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    by_name = identity(None, name_key(args[0]))
    if not args[0].startswith(FINGERPRINT_PREFIX) and hub.find(args[0]) is None and by_name in hub.moderation.mutes:
        fp, online, label = None, None, args[0][:16]  # a keyless person, offline
    else:
        fp, online, label = _resolve_key(hub, member, args[0])
        if not label:
            return
    target = identity(fp, name_key(label) if online is None else online.key)
    if hub.moderation.unmute(target) is None:
        member.outlet.notice(f"{label} is not muted")
        return
    hub.audit(member, "unmute", target)
    member.outlet.notice(f"unmuted {label}")
    if online is not None:
        online.outlet.notice(f"you were unmuted by {member.name}")


def _op(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = _resolve_key(hub, member, args[0])
    if not label:
        return
    if fp is None:
        member.outlet.notice(f"{label} has no key; only people with a key can be operators")
        return
    if hub.moderation.is_op(fp):
        member.outlet.notice(f"{label} is already an operator")
        return
    hub.moderation.grant(fp, member.name)
    hub.audit(member, "op", fp, label)
    member.outlet.notice(f"{label} is now an operator")
    if online is not None:
        online.outlet.notice(f"{member.name} made you an operator; /help lists your new commands")


def _deop(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = _resolve_key(hub, member, args[0])
    if not label:
        return
    if fp is not None and fp in hub.moderation.admins:
        member.outlet.notice(f"{label} is an admin from the server's --admin-keys file; change it there")
        return
    if fp is None or not hub.moderation.revoke(fp):
        member.outlet.notice(f"{label} is not an operator")
        return
    hub.audit(member, "deop", fp, label)
    member.outlet.notice(f"{label} is no longer an operator")
    if online is not None:
        online.outlet.notice(f"{member.name} removed your operator status")


def _unregister(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    binding = hub.names.release(args[0])
    if binding is None:
        member.outlet.notice(f"{(hub.accept_text(member, args[0]) or '?')[:32]} is not registered")
        return
    hub.audit(member, "unregister", binding.name, binding.fingerprint)
    member.outlet.notice(f"released the name {binding.name} (was {binding.fingerprint})")


def _allow(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    moderation = hub.moderation
    if moderation.allowlist_file is None:
        member.outlet.notice("the allowlist is off; start the server with --allowlist FILE to use it")
        return
    action = args[0].lower()
    if action == "list":
        fps = sorted(moderation.allowlist_file | moderation.allowed)
        member.outlet.notice(f"{len(fps)} keys on the allowlist (admins are always let in):")
        for fp in fps:
            source = "file" if fp in moderation.allowlist_file else "added"
            member.outlet.notice(f"  {fp} ({source})")
        return
    if action not in ("add", "remove") or len(args) < 2:
        member.outlet.notice("usage: /allow add|remove NAME|fingerprint:SHA256:... or /allow list")
        return
    fp, _, label = _resolve_key(hub, member, args[1])
    if not label:
        return
    if fp is None:
        member.outlet.notice(f"{label} has no key; the allowlist holds keys")
        return
    if action == "add":
        moderation.allow(fp, member.name)
        member.outlet.notice(f"added {label} to the allowlist")
    elif moderation.disallow(fp):
        member.outlet.notice(f"removed {label} from the allowlist")
    else:
        note = " (it is in the file; edit the file)" if fp in moderation.allowlist_file else ""
        member.outlet.notice(f"{label} was not added at runtime{note}")
        return
    hub.audit(member, f"allow {action}", fp, label)


def _audit(hub: Hub, member: Member, args: list[str], rest: str) -> None:
    most = hub.settings.history_per_call
    count = _count(args, 20, most)
    if count is None:
        member.outlet.notice(f"usage: /audit [N] (N from 1 to {most})")
        return

    def show(entries: list) -> None:
        member.outlet.notice(f"the last {len(entries)} moderation actions:")
        for e in entries:
            member.outlet.notice(
                f"  {when(e.time)} {e.actor} {e.action} {e.target}" + (f": {e.detail}" if e.detail else "")
            )

    hub.store.audit_log(count, show)


C = Command
_TABLE = (
    C("help", "[COMMAND]", "list commands, or explain one", _help, example="/help msg"),
    C("me", "ACTION", "say what you are doing: * alice waves", _me, 1, example="/me waves"),
    C("msg", "NAME TEXT", "send a private message", _msg, 2, example="/msg bob see you at 5",
      aliases=("dm", "whisper", "w")),
    C("reply", "TEXT", "answer the last person who wrote to you privately", _reply, 1, example="/reply ok!",
      aliases=("r",)),
    C("history", "[N]", "show the last N messages of this room (default 50)", _history, example="/history 100"),
    C("quit", "", "leave the chat", _quit, aliases=("exit",)),
    C("join", "#ROOM", "go to a room, making it if it is new", _join, 1, group="rooms", example="/join #rust",
      aliases=("j",)),
    C("part", "[#ROOM]", "leave this room (or another)", _part, group="rooms", example="/part #rust",
      aliases=("leave",)),
    C("rooms", "[TEXT]", "your rooms, then the busiest (or those named with TEXT): online, unread, topic",
      _rooms, group="rooms", example="/rooms rust", aliases=("list",)),
    C("topic", "[TEXT]", "show this room's topic (its creator and operators: set it)", _topic,
      group="rooms", example="/topic release on Friday"),
    C("names", "[#ROOM]", "who is in this room (or another)", _names, group="people", example="/names #rust",
      aliases=("who", "users")),
    C("whois", "NAME", "key, registration, time connected, idle time, away", _whois, 1,
      group="people", example="/whois bob"),
    C("nick", "NEWNAME", "change your name", _nick, 1, group="people", example="/nick alice2"),
    C("away", "[REASON]", "tell people you are away", _away, group="people", example="/away lunch"),
    C("back", "", "you are back", _back, group="people"),
    C("ignore", "[NAME]", "never see NAME's messages (no NAME: list)", _ignore, group="people",
      example="/ignore mallory"),
    C("unignore", "NAME", "see NAME's messages again", _unignore, 1, group="people"),
    C("motd", "[TEXT]", "show the message of the day (operators: set it; - clears)", _motd, group="people"),
    C("kick", "NAME [REASON]", "operators: disconnect someone; a room's creator: remove them from it",
      _kick, 1, group="rooms", example="/kick bob please stop"),
    C("quiet", "", "hide (or show again) join and leave notices", _quiet, group="view"),
    C("timestamp", "off|time|datetime [ZONE]", "times on messages; ZONE: UTC, +05:30, Europe/Paris",
      _timestamp, 1, group="view", example="/timestamp time Europe/Paris"),
    C("theme", "256|16|mono", "colours: 256, 16 for basic terminals, or none", _theme, 1, group="view",
      example="/theme mono"),
    C("bell", "off|mention|all", "when your terminal beeps (default: mentions and private)", _bell, 1,
      group="view", example="/bell off"),
    C("ban", "TARGET [DURATION] [REASON]", "turn away a NAME, fingerprint:FP or ip:ADDR[/N]",
      _ban, 1, op_only=True, group="ops", example="/ban bob 2h spam"),
    C("unban", "TARGET", "lift a ban on a NAME, fingerprint:... or ip:...", _unban, 1, op_only=True,
      group="ops", example="/unban ip:203.0.113.0/24"),
    C("banned", "", "list bans with expiry and reason", _banned, op_only=True, group="ops"),
    C("mute", "NAME [DURATION] [REASON]", "only they see their messages", _mute, 1, op_only=True,
      group="ops", example="/mute bob 10m calm down"),
    C("unmute", "NAME", "let someone be heard again", _unmute, 1, op_only=True, group="ops"),
    C("op", "NAME", "make someone's key an operator", _op, 1, op_only=True, group="ops"),
    C("deop", "NAME", "take operator status away", _deop, 1, op_only=True, group="ops"),
    C("unregister", "NAME", "release a name from its key", _unregister, 1, op_only=True, group="ops"),
    C("allow", "add|remove|list [TARGET]", "manage the allowlist: a NAME or fingerprint:SHA256:...",
      _allow, 1, op_only=True, group="ops", example="/allow add bob"),
    C("audit", "[N]", "show the last N moderation actions", _audit, op_only=True, group="ops"),
)

COMMANDS: dict[str, Command] = {
    name: c for c in _TABLE for name in (c.name, *c.aliases)
}
