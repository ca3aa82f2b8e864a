"""Small pieces several commands share: argument parsing and wording."""

from __future__ import annotations

import re
from collections.abc import Callable

from sshchat.chat.commands.core import Core
from sshchat.chat.member import Member
from sshchat.chat.moderation import Then, parse_duration
from sshchat.chat.sanitize import clean

FINGERPRINT_PREFIX = "fingerprint:"
IP_PREFIX = "ip:"

# What asyncssh's get_fingerprint("sha256") gives, the only kind the server
# makes: SHA256 and 32 bytes in base64 without padding. Anything else cannot
# be anyone's key, so it is refused, not kept (and later shown) as typed.
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
FINGERPRINT_FORM = "fingerprint:SHA256: then 43 letters, digits, + or /"


def echo(text: str, most: int = 32, empty: str = "?") -> str:
    """What someone typed, made safe to repeat to them in a reply, and cut
    to ``most`` characters: a name or a word they got wrong, of any length.

    Not a message, so no message limit applies: a word longer than that
    is cut short and named, never refused as "too long". It is cut before
    cleaning too (cleaning looks at every character), with room to spare
    for what cleaning removes; a sequence cut in two is removed whole.
    """
    return (clean(text[: most * 4]) or empty)[:most]


def parse_fingerprint(text: str) -> str | None:
    """``text`` if it is a SHA256 key fingerprint as the server writes them, else None."""
    return text if FINGERPRINT_RE.fullmatch(text) else None


def not_a_fingerprint(member: Member, typed: str) -> None:
    """Tell ``member`` that ``typed`` (after "fingerprint:") is not one, safely."""
    member.outlet.notice(f"not a fingerprint: {echo(typed, 60)}; a fingerprint looks like {FINGERPRINT_FORM}")


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


def count_arg(args: list[str], default: int, most: int) -> int | None:
    """A positive count from the first argument, capped at ``most``; None if it is not one."""
    if not args:
        return default
    typed = args[0]
    # ASCII digits only ("²" is a digit int() refuses), and few of them (int()
    # refuses more than 4300, and works hard before that).
    if not (typed.isascii() and typed.isdigit() and len(typed) <= 9) or int(typed) == 0:
        return None
    return min(int(typed), most)


def duration_and_reason(args: list[str]) -> tuple[float | None, str]:
    """Split "[DURATION] [REASON...]"; the first word is a duration if it parses."""
    if args and parse_duration(args[0]) is not None:
        return parse_duration(args[0]), " ".join(args[1:])
    return None, " ".join(args)


def resolve_key(core: Core, member: Member, target: str) -> tuple[str | None, Member | None, str]:
    """A target as (fingerprint or None, online member or None, label).

    Accepts "fingerprint:SHA256:...", an online name, or a registered name.
    Tells ``member`` and returns (None, None, "") when nothing matches.
    """
    if target.startswith(FINGERPRINT_PREFIX):
        typed = target[len(FINGERPRINT_PREFIX) :]
        fp = parse_fingerprint(typed)
        if fp is None:
            not_a_fingerprint(member, typed)
            return None, None, ""
        return fp, core.find_by_key(fp), fp
    online = core.find(target)
    if online is not None:
        return online.fingerprint, online, online.name
    binding = core.binding(target)
    if binding is not None:
        return binding.fingerprint, None, binding.name
    member.outlet.notice(f"no one called {echo(target)} is online or registered")
    return None, None, ""


def protected(core: Core, actor: Member, fingerprint: str | None, label: str) -> bool:
    """Admins from --admin-keys are out of reach of operators made at runtime
    (the actor is told so)."""
    if fingerprint is None or not core.is_admin(fingerprint) or core.is_admin(actor.fingerprint):
        return False
    actor.outlet.notice(f"{label} is an admin (--admin-keys); operators cannot act on admins")
    return True


def not_saved(member: Member, what: str) -> None:
    """Tell ``member`` a change of theirs could not be kept: it did not happen."""
    member.outlet.notice(f"{what} was not saved (storage error); nothing changed")


def gather(count: int, done: Callable[[list[bool]], None]) -> Callable[[int], Then]:
    """``count`` changes saved at once: ``done`` hears, in order, which were
    kept, once the store has answered for all of them."""
    results: dict[int, bool] = {}

    def one(index: int) -> Then:
        def then(ok: bool) -> None:
            results[index] = ok
            if len(results) == count:
                done([results[i] for i in range(count)])

        return then

    return one
