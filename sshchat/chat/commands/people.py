"""Commands about people: /whois, /nick, /away, /back, /ignore, /unignore, /motd."""

from __future__ import annotations

from sshchat.chat.commands.common import ago, echo
from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.moderation import when
from sshchat.chat.names import NAME_RE, name_key
from sshchat.chat.prefs import MAX_IGNORES


def whois(core: Core, member: Member, args: list[str], rest: str) -> None:
    target = core.find(args[0])
    binding = core.binding(args[0])
    if target is None:
        if binding is None:
            member.outlet.notice(f"no one called {echo(args[0])} is online or registered")
        else:
            member.outlet.notice(f"{binding.name} is offline; the name is registered to {binding.fingerprint}")
        return
    now = core.now()
    key = f"key {target.fingerprint}" if target.fingerprint else "no key"
    standing = "registered" if binding is not None else "not registered"
    if core.is_op(target):
        standing += ", operator"
    if target.away:
        standing += f", away: {target.away}"
    member.outlet.notice(
        f"{target.name}: {key} ({standing}); connected since {when(target.connected_at)} "
        f"({ago(now - target.connected_at)} ago); idle {ago(now - target.last_active)}"
    )


def nick(core: Core, member: Member, args: list[str], rest: str) -> None:
    core.rename(member, rest)  # the whole rest: "bad name" is refused, not cut to "bad"


def away(core: Core, member: Member, args: list[str], rest: str) -> None:
    note = core.on_behalf(member, rest, "leave an away note")
    if note is None:
        return
    member.away = note or "away"
    member.outlet.notice(f"you are away ({member.away}); /back when you return")


def back(core: Core, member: Member, args: list[str], rest: str) -> None:
    if member.away is None:
        member.outlet.notice("you were not away")
        return
    member.away = None
    member.outlet.notice("welcome back")


def ignore(core: Core, member: Member, args: list[str], rest: str) -> None:
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
        core.save_prefs(member)
    member.outlet.notice(f"ignoring {args[0][:16]}: their messages never reach you; /unignore to undo")


def unignore(core: Core, member: Member, args: list[str], rest: str) -> None:
    key = name_key(args[0])
    if key not in member.prefs.ignores:
        member.outlet.notice(f"you are not ignoring {echo(args[0], 16)}")
        return
    member.prefs.ignores.remove(key)
    core.save_prefs(member)
    member.outlet.notice(f"no longer ignoring {echo(args[0], 16)}")


def motd(core: Core, member: Member, args: list[str], rest: str) -> None:
    if not rest:
        for line in (core.motd() or "there is no message of the day").splitlines():
            member.outlet.notice(line)
        return
    if not core.is_op(member):
        member.outlet.notice("only operators can set the message of the day")
        return
    text = None
    if rest != "-":  # "-" clears it
        text = core.on_behalf(member, rest, "set the message of the day")
        if text == "":
            member.outlet.notice("nothing is left of that text once cleaned; /motd - clears it")
        if not text:  # refused (they were told why) or empty: the old one stays
            return
    core.set_motd(text)
    core.audit(member, "motd", "-", text or "(cleared)")
    member.outlet.notice("message of the day cleared" if text is None else "message of the day set")
