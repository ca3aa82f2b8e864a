"""Commands about one's own view: /quiet, /timestamp, /theme, /bell.

They change the person's Prefs (kept for their key) and, where the screen
must be drawn anew, ask their outlet to redraw the prompt.
"""

from __future__ import annotations

from sshchat.chat.commands.common import echo
from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.prefs import BELLS, THEMES, TIMESTAMPS, parse_zone


def quiet(core: Core, member: Member, args: list[str], rest: str) -> None:
    member.prefs.quiet = not member.prefs.quiet
    core.save_prefs(member)
    if member.prefs.quiet:
        member.outlet.notice("join and leave notices hidden; /quiet again shows them")
    else:
        member.outlet.notice("join and leave notices shown")


def _choice(member: Member, args: list[str], options: tuple[str, ...], what: str) -> str | None:
    if not args or args[0].lower() not in options:
        member.outlet.notice(f"usage: /{what} {'|'.join(options)}")
        return None
    return args[0].lower()


def timestamp(core: Core, member: Member, args: list[str], rest: str) -> None:
    mode = _choice(member, args[:1], TIMESTAMPS, "timestamp")
    if mode is None:
        return
    zone = args[1] if len(args) > 1 else member.prefs.zone
    if parse_zone(zone) is None:
        member.outlet.notice(
            f"unknown time zone {echo(zone, 40)}: "
            "use UTC, an offset like +05:30, or a name like Europe/Paris"
        )
        return
    member.prefs.timestamps, member.prefs.zone = mode, zone
    core.save_prefs(member)
    member.outlet.prompt_changed()  # the view changed: redraw with the new settings
    member.outlet.notice("timestamps off" if mode == "off" else f"timestamps: {mode}, {zone}")


def theme(core: Core, member: Member, args: list[str], rest: str) -> None:
    chosen = _choice(member, args, THEMES, "theme")
    if chosen is None:
        return
    member.prefs.theme = chosen
    core.save_prefs(member)
    member.outlet.prompt_changed()
    member.outlet.notice(f"theme: {chosen}")


def bell(core: Core, member: Member, args: list[str], rest: str) -> None:
    chosen = _choice(member, args, BELLS, "bell")
    if chosen is None:
        return
    member.prefs.bell = chosen
    core.save_prefs(member)
    member.outlet.notice(f"bell: {chosen}")
