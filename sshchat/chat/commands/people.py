"""Commands about people: /whois, /nick, /away, /back, /ignore, /unignore, /motd."""

from __future__ import annotations

from sshchat.chat.commands.common import ago, echo, not_saved
from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.moderation import when
from sshchat.chat.names import NAME_RE
from sshchat.chat.prefs import MAX_IGNORES
from sshchat.chat.roster import IDLE_STEP


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
    # Someone on another node of a cluster: their node tells their last
    # activity again only once it moved on by IDLE_STEP (not at every line),
    # so the idle time shown here may be that much too long.
    idle = f"idle {ago(now - target.last_active)}"
    if target.node:
        idle += f" (within {int(IDLE_STEP)}s), on another server of this chat"
    member.outlet.notice(
        f"{target.name}: {key} ({standing}); connected since {when(target.connected_at)} "
        f"({ago(now - target.connected_at)} ago); {idle}"
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


# /ignore follows the person (Member.person: their key, or a keyless person's
# session), not a name: whoever takes the name next is not ignored, and the
# person ignored is still ignored under any new name.


def _shown(core: Core, person: str) -> str:
    """How an ignored person is listed: their name while online."""
    online = core.find_person(person)
    if online is not None:
        return online.name
    return person if person.startswith("fingerprint:") else "(a keyless person, gone)"


def _people_called(core: Core, name: str) -> list[str]:
    """Who ``name`` may mean: the person online under it, and the key it is registered to."""
    found = []
    online = core.find(name)
    if online is not None:
        found.append(online.person)
    binding = core.binding(name)
    if binding is not None:
        found.append(f"fingerprint:{binding.fingerprint}")
    return list(dict.fromkeys(found))  # once each: the one online may hold the name's key


def ignore(core: Core, member: Member, args: list[str], rest: str) -> None:
    ignores = member.prefs.ignores
    if not args:
        shown = [_shown(core, p) for p in ignores]
        member.outlet.notice(f"ignoring: {', '.join(shown)}" if ignores else "you ignore nobody")
        return
    if NAME_RE.fullmatch(args[0]) is None:
        member.outlet.notice("/ignore takes a name: 1-16 letters, digits, _ or -")
        return
    people = _people_called(core, args[0])
    if not people:
        member.outlet.notice(f"no one called {args[0]} is online or registered")
        return
    person = people[0]
    if person == member.person:
        member.outlet.notice("you cannot ignore yourself")
        return
    prefs = member.prefs
    if not prefs.ignoring(person):
        if len(ignores) >= MAX_IGNORES:  # sessions that ended hold no place
            prefs.set_ignores([p for p in ignores if not p.startswith("session:") or core.find_person(p)])
        if len(prefs.ignored) >= MAX_IGNORES:
            member.outlet.notice(f"you ignore {MAX_IGNORES} people already; /unignore someone first")
            return
        prefs.ignore(person)
        core.save_prefs(member)
    member.outlet.notice(f"ignoring {args[0][:16]}: their messages never reach you; /unignore to undo")


def unignore(core: Core, member: Member, args: list[str], rest: str) -> None:
    meant = [p for p in _people_called(core, args[0]) if member.prefs.ignoring(p)]
    if not meant:
        member.outlet.notice(f"you are not ignoring {echo(args[0], 16)}")
        return
    for person in meant:
        member.prefs.unignore(person)
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

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, "the message of the day")
            return
        core.audit(member, "motd", "-", text or "(cleared)")
        member.outlet.notice("message of the day cleared" if text is None else "message of the day set")

    core.set_motd(text, saved)
