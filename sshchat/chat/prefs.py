"""Per-person view settings: theme, timestamps, bell, quiet, ignores.

They belong to the core (who sees what: ignores, quiet) and to the terminal
(how it looks: theme, timestamps); they persist for people with a key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

THEMES = ("256", "16", "mono")
TIMESTAMPS = ("off", "time", "datetime")
BELLS = ("off", "mention", "all")
MAX_IGNORES = 100  # people one person may ignore (each is a lookup per delivery, not a scan)

_OFFSET_RE = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")


def parse_zone(text: str) -> tzinfo | None:
    """A zone from "UTC", "+05:30", "UTC-8" or an IANA name; None if unknown."""
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    m = _OFFSET_RE.fullmatch(text.upper())
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        return timezone(-delta if m.group(1) == "-" else delta)
    if not re.fullmatch(r"[A-Za-z_]+(?:/[A-Za-z0-9_+-]+){0,2}", text):
        return None  # never hand odd paths to the zone database
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder, a long name too long
        return None


@dataclass
class Prefs:
    """How one person wants the chat shown to them."""

    theme: str | None = None  # None: chosen from the terminal type
    timestamps: str = "off"
    zone: str = "UTC"
    bell: str = "mention"  # private messages ring too, unless "off"
    quiet: bool = False  # hide join and leave notices
    # Who is ignored (Member.person), in the order ignored: a dict used as an
    # ordered set, since every delivery in every room asks ``ignoring`` of
    # every reader. Change it through the methods below.
    ignored: dict[str, None] = field(default_factory=dict)

    @property
    def ignores(self) -> tuple[str, ...]:
        """The people ignored, in the order they were (for /ignore's list).

        A tuple: a snapshot to read, which ``append`` cannot be called on, so
        code that means to change the list fails loudly instead of changing
        a copy nobody reads (use ``ignore``, ``unignore``, ``set_ignores``)."""
        return tuple(self.ignored)

    def ignoring(self, person: str) -> bool:
        """Is ``person`` (Member.person) ignored? Constant time."""
        return person in self.ignored

    def ignore(self, person: str) -> None:
        self.ignored[person] = None

    def unignore(self, person: str) -> None:
        self.ignored.pop(person, None)

    def set_ignores(self, people: Iterable[str]) -> None:
        """Replace the whole list (order kept, each person once)."""
        self.ignored = dict.fromkeys(people)

    def to_json(self) -> str:
        data = asdict(self)
        data["ignores"] = list(data.pop("ignored"))  # kept as a list, as ever
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Prefs:
        """Settings as saved; anything unknown or malformed falls back to defaults."""
        try:
            data = json.loads(text)
        except ValueError:
            return cls()
        prefs = cls()
        if data.get("theme") in THEMES:
            prefs.theme = data["theme"]
        if data.get("timestamps") in TIMESTAMPS:
            prefs.timestamps = data["timestamps"]
        if isinstance(data.get("zone"), str) and parse_zone(data["zone"]) is not None:
            prefs.zone = data["zone"]
        if data.get("bell") in BELLS:
            prefs.bell = data["bell"]
        prefs.quiet = bool(data.get("quiet", False))
        if isinstance(data.get("ignores"), list):
            prefs.set_ignores([k for k in data["ignores"] if isinstance(k, str)][:MAX_IGNORES])
        return prefs
