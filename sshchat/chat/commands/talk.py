"""Commands for talking: /me, /msg, /reply, /history, /quit."""

from __future__ import annotations

from sshchat.chat.commands.common import count_arg, echo
from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.message import Kind, Message


def me(core: Core, member: Member, args: list[str], rest: str) -> None:
    core.say(member, Kind.EMOTE, rest)


def msg(core: Core, member: Member, args: list[str], rest: str) -> None:
    target = core.find(args[0])
    if target is None:
        member.outlet.notice(f"no one called {echo(args[0])} is online")
        return
    core.private(member, target, rest[len(args[0]) :])


def reply(core: Core, member: Member, args: list[str], rest: str) -> None:
    """To the person who last wrote: that session, or (with a key) that key
    online again; never whoever holds their old name now."""
    sender = member.last_pm_from
    target = None
    if sender is not None:
        target = sender if core.find(sender.name) is sender else None
        if target is None and sender.fingerprint:
            target = core.find_by_key(sender.fingerprint)
    if target is None:
        who = f"{sender.name}, who wrote to you, has left" if sender is not None else "nobody has written to you yet"
        member.outlet.notice(f"{who}; use /msg NAME TEXT")
        return
    core.private(member, target, rest)


def history(core: Core, member: Member, args: list[str], rest: str) -> None:
    most = core.settings.history_per_call
    count = count_arg(args, 50, most)
    if count is None:
        member.outlet.notice(f"usage: /history [N] (N from 1 to {most})")
        return
    room = core.room_of(member)

    def show(messages: list[Message]) -> None:
        member.outlet.notice(f"the last {len(messages)} messages of {room.name}:")
        for message in messages:
            member.outlet.deliver(message)

    core.history(room, count, show)


def quit_(core: Core, member: Member, args: list[str], rest: str) -> None:
    member.outlet.close("bye")
