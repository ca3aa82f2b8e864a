"""``dice``: ``/roll 2d6`` throws two six-sided dice; everyone in the room
sees the throw and the sum, said by ``dice-bot``.

Hostile input is bounded before any work: at most MAX_DICE dice of at most
MAX_SIDES sides, digits counted before they are turned into numbers (so
``/roll 1000000d1000000`` costs nothing but a usage line).
"""

from __future__ import annotations

import re
import secrets

from sshchat.chat.plugins import CommandCall, CommandSpec, Plugin

MAX_DICE = 100
MAX_SIDES = 1000
SHOWN_DICE = 20  # more throws than this are summed up, not listed
USAGE = f"usage: /roll [N]dM, e.g. /roll 2d6: 1 to {MAX_DICE} dice of 2 to {MAX_SIDES} sides"
_SPEC_RE = re.compile(r"(\d{1,6})?[dD](\d{1,7})")


def parse(spec: str) -> tuple[int, int] | None:
    """(dice, sides) for "NdM" (N defaults to 1) within the bounds, else None."""
    m = _SPEC_RE.fullmatch(spec)
    if m is None:
        return None
    count, sides = int(m.group(1) or "1"), int(m.group(2))
    if not (1 <= count <= MAX_DICE and 2 <= sides <= MAX_SIDES):
        return None
    return count, sides


def describe(name: str, count: int, sides: int, throws: list[int]) -> str:
    """'alice rolls 2d6: 3 + 5 = 8'."""
    shown = " + ".join(map(str, throws)) if count <= SHOWN_DICE else f"{count} dice"
    total = sum(throws)
    return f"{name} rolls {count}d{sides}: {shown} = {total}" if count > 1 else f"{name} rolls 1d{sides}: {total}"


class Dice(Plugin):
    """/roll NdM, said to the room by the bot."""

    def commands(self) -> list[CommandSpec]:
        return [CommandSpec("roll", "[N]dM", "roll dice; everyone here sees the throw and the sum", self.roll,
                            example="/roll 2d6")]

    async def roll(self, call: CommandCall) -> None:
        parsed = parse(call.args[0]) if len(call.args) == 1 else (1, 6) if not call.args else None
        if parsed is None:
            call.reply(USAGE)
            return
        count, sides = parsed
        throws = [secrets.randbelow(sides) + 1 for _ in range(count)]
        call.chat.say(call.room, describe(call.sender, count, sides, throws))
