"""Commands about rooms: /join, /part, /rooms, /topic, /names, /rmroom."""

from __future__ import annotations

from sshchat.chat.commands.common import echo, not_saved
from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.names import name_key
from sshchat.chat.room import Room

ROOMS_SHOWN = 30  # lines one /rooms prints at most: a server may have a thousand rooms


def join(core: Core, member: Member, args: list[str], rest: str) -> None:
    core.enter(member, rest)  # "#sp ace" is refused, not cut to "#sp"


def part(core: Core, member: Member, args: list[str], rest: str) -> None:
    if args and name_key(args[0]) not in member.rooms:  # said here: the name is shown cleaned
        member.outlet.notice(f"you are not in {echo(args[0])}")
        return
    core.part(member, args[0] if args else None)


def rooms(core: Core, member: Member, args: list[str], rest: str) -> None:
    """Your rooms first, then the busiest; a filter finds the rest."""
    # Cleaned as a message is (it is shown back), then a name key as room keys are:
    # case and compatibility forms alike.
    needle = name_key(echo(rest, 40, empty=""))
    found = [room for room in core.rooms() if needle in room.key]
    counts = core.room_counts()

    def order(room: Room) -> tuple[int, int, str]:
        mine = 0 if room.key == member.room else 1 if room.key in member.rooms else 2
        return (mine, -counts.get(room.key, 0) if mine == 2 else 0, room.key)

    found.sort(key=order)
    plural = "" if len(found) == 1 else "s"
    what = f"{len(found)} room{plural}" + (f" with '{echo(needle, 40)}' in the name" if needle else "")
    member.outlet.notice(f"{what} (* you are here, + you are a member):")
    for room in found[:ROOMS_SHOWN]:
        mark = "*" if room.key == member.room else "+" if room.key in member.rooms else " "
        unread = member.unread.get(room.key, 0)
        details = [f"{counts.get(room.key, 0)} online"]
        if unread:
            details.append(f"{unread} unread")
        topic = f" - {room.info.topic}" if room.info.topic else ""
        member.outlet.notice(f" {mark}{room.name} ({', '.join(details)}){topic}")
    if len(found) > ROOMS_SHOWN:
        member.outlet.notice(
            f"... and {len(found) - ROOMS_SHOWN} more; /rooms TEXT lists the rooms with TEXT in their name"
        )


def topic(core: Core, member: Member, args: list[str], rest: str) -> None:
    core.set_topic(member, rest or None)


def names(core: Core, member: Member, args: list[str], rest: str) -> None:
    if args:
        room = core.room(args[0])
        if room is None:
            member.outlet.notice(f"no room called {echo(args[0])}; see /rooms")
            return
    else:
        room = core.room_of(member)
    people = sorted(core.people_in(room), key=lambda m: m.key)
    listed = [m.name + (" (away)" if m.away else "") for m in people]
    member.outlet.notice(f"{len(listed)} in {room.name}: {', '.join(listed) or 'nobody'}")


def rmroom(core: Core, member: Member, args: list[str], rest: str) -> None:
    """An operator removes a room: its people go to the lobby, its history
    is dropped, and the audit log keeps who did it and why."""
    room = core.room(args[0])
    if room is None:
        member.outlet.notice(f"no room called {echo(args[0])}; see /rooms")
        return
    if room is core.room("#lobby"):
        member.outlet.notice(f"{room.name} cannot be removed: everyone belongs to it")
        return
    if room.closing:
        member.outlet.notice(f"{room.name} is being removed already")
        return
    reason = core.on_behalf(member, " ".join(args[1:]), "give a reason for removing a room")
    if reason is None:
        return
    name, people = room.name, len(room.members)
    suffix = f": {reason}" if reason else ""

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"removing {name}")
            return
        core.audit(member, "rmroom", name, reason, room=name, reason=reason or None)
        member.outlet.notice(f"removed {name} and its history; {people} people moved to #lobby")

    core.remove_room(room, f"{name} was removed by {member.name}{suffix}; you are in #lobby", saved)
