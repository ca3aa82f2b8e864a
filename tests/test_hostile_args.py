"""Arguments of commands are words others may read: nothing raw reaches a terminal.

Every command of the command table is run, as an operator and as a keyless
person, with arguments full of escape sequences, C1 controls, bidi overrides,
NULs and floods of combining marks; then another operator looks at what was
kept (/banned, /audit, /whois, /rooms, /names, /topic, /motd, /allow list).
No text the core hands any session may hold a control or format character
(the renderer adds its own colour codes, nothing else may), nor more than
``MAX_COMBINING`` combining marks on one character ("zalgo" text spills over
the lines above and below).
"""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sshchat.chat.commands.table import TABLE
from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.moderation import Moderation
from sshchat.chat.sanitize import MAX_COMBINING
from sshchat.chat.store import Ban, Snapshot
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder
from tests.support.settings import chat_settings

ADMIN = "SHA256:" + "AdminKey0" * 4 + "1234567"  # 43 base64 characters, like a real one
WATCHER = "SHA256:" + "WatchKey0" * 4 + "1234567"
BOB = "SHA256:" + "BobsKey00" * 4 + "1234567"
PAYLOAD = "\x1b]0;X\x07\x1b[2J"  # retitles the window, then clears the screen

_PIECES = st.sampled_from(
    [
        "\x1b", "\x1b[2J", "\x1b[31m", "\x1b]0;owned\x07", "\x1b]8;;http://x\x1b\\", "\x1bP1$r\x1b\\",
        "\x9b2J", "\x9d0;t\x9c", "\x85", "\x90", "\x9f", "\x07", "\x08", "\r", "\x00", "\x7f", "\t",
        "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028", "a" + "\u0301" * 300, "Z" * 3000,
        "SHA256:", "fingerprint:", "ip:", "#", "/", "bob", "1h", "::1", "203.0.113.7/24",
    ]
)
HOSTILE = st.lists(st.one_of(_PIECES, st.text(max_size=6)), min_size=1, max_size=8).map("".join)

# What goes before the hostile text, so that each command's parser gets past
# its first word: a target form, a room, a name, a duration, a sub-command.
_SHAPES = (
    "", "fingerprint:", "fingerprint:SHA256:", "fingerprint:SHA256:AAAA", "ip:", "#", "bob ", "bob 1h ",
    "add fingerprint:SHA256:", "remove fingerprint:SHA256:", "time ", "5 ",
)


def unsafe(text: str) -> list[str]:
    """The control, format and separator characters in ``text``."""
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


def piled_marks(text: str) -> int:
    """The most combining marks on any one character of ``text``."""
    most = run = 0
    for ch in text:
        run = run + 1 if unicodedata.category(ch) in ("Mn", "Me", "Mc") else 0
        most = max(most, run)
    return most


def everything_sent(out: Recorder) -> list[str]:
    texts = list(out.notices)
    for m in out.messages:
        texts += [m.text, m.sender, m.room, m.recipient or ""]
    return texts + ([out.closed] if out.closed else [])


class World:
    """An operator, a keyless person, a bystander and a second operator."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.hub = Hub(MemoryStore(), chat_settings(rate_burst=100000), clock=self.clock,
                       admins={ADMIN, WATCHER})
        self.outs: dict[str, Recorder] = {}
        self.op = self.join("mallory", ADMIN)
        self.pleb = self.join("pleb", None)
        self.join("bob", BOB)
        self.watcher = self.join("watcher", WATCHER)
        # The allowlist on (so /allow works), once the keyless person is in.
        self.hub.moderation.allowlist_file = frozenset()

    def join(self, name: str, fp: str | None):  # type: ignore[no-untyped-def]
        self.outs[name] = out = Recorder()
        return self.hub.join(name, fp, out, "192.0.2.1")

    def look(self) -> None:
        """What another operator sees of what was kept."""
        for line in ("/banned", "/audit 100", "/whois mallory", "/whois pleb", "/whois bob", "/rooms",
                     "/names", "/topic", "/motd", "/allow list", "/history 100", "/ignore"):
            self.hub.handle_line(self.watcher, line)

    def dirty(self) -> list[tuple[str, str]]:
        """What any session was sent that has a control character, or more
        combining marks on a character than the cap."""
        return [
            (name, text) for name, out in self.outs.items() for text in everything_sent(out)
            if unsafe(text) or piled_marks(text) > MAX_COMBINING
        ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_every_command_with_hostile_arguments_sends_only_clean_text(hostile: str) -> None:
    world = World()
    for command in TABLE:
        if command.name == "quit":
            continue
        for shape in _SHAPES:
            line = f"/{command.name} {shape}{hostile}"
            for who, out in ((world.op, world.outs["mallory"]), (world.pleb, world.outs["pleb"])):
                if out.closed is None:  # not kicked or banned by a line before (names change: /nick)
                    world.hub.handle_line(who, line)
    world.look()
    assert world.dirty() == []


def test_the_issues_fingerprint_ban_is_refused_and_nothing_raw_is_kept() -> None:
    world = World()
    world.hub.handle_line(world.op, f"/ban fingerprint:SHA256:AAAA{PAYLOAD}")
    refusal = world.outs["mallory"].notices[-1]
    assert "fingerprint" in refusal and not unsafe(refusal)
    world.look()
    assert world.dirty() == []
    assert world.hub.moderation.active_bans() == []


def test_a_fingerprint_must_be_sha256_and_43_base64_characters() -> None:
    world = World()
    for bad in ("SHA256:short", "SHA256:" + "A" * 42, "SHA256:" + "A" * 44, "SHA256:" + "A" * 42 + "-",
                "MD5:" + "A" * 43, "SHA256:" + "A" * 42 + "\u0301"):
        world.hub.handle_line(world.op, f"/ban fingerprint:{bad}")
        assert world.outs["mallory"].notices[-1].startswith("not a fingerprint"), bad
    assert world.hub.moderation.active_bans() == []
    world.hub.handle_line(world.op, f"/ban fingerprint:{BOB} 1h spam")
    assert [b.value for b in world.hub.moderation.active_bans()] == [BOB]


def test_malformed_fingerprints_are_refused_by_op_allow_mute_and_unban_too() -> None:
    world = World()
    mallory = world.outs["mallory"]
    for line in ("/op", "/deop", "/mute", "/unmute", "/unban", "/allow add", "/allow remove"):
        world.hub.handle_line(world.op, f"{line} fingerprint:SHA256:AAAA{PAYLOAD}")
        assert mallory.notices[-1].startswith("not a fingerprint"), line
    assert world.dirty() == []


def test_a_bad_address_is_refused_cleanly() -> None:
    world = World()
    for line in (f"/ban ip:203.0.113.7{PAYLOAD}", f"/unban ip:{PAYLOAD}"):
        world.hub.handle_line(world.op, line)
    assert world.hub.moderation.active_bans() == []
    assert world.dirty() == []


def test_records_kept_raw_before_this_check_are_shown_cleaned() -> None:
    """A store written by an older version may hold raw text: the lists clean what they print."""
    world = World()
    moderation: Moderation = world.hub.moderation
    now = world.clock()
    moderation.ban(Ban("fingerprint", f"SHA256:AAAA{PAYLOAD}", None, f"why{PAYLOAD}", f"old{PAYLOAD}", now))
    moderation.allow(f"SHA256:BBBB{PAYLOAD}", "old")
    world.hub.moderation.audit(f"old{PAYLOAD}", None, "ban", f"fingerprint:SHA256:AAAA{PAYLOAD}", PAYLOAD)
    world.look()
    assert world.dirty() == []
    shown = world.outs["watcher"].notices
    assert any(n.startswith("  fingerprint:SHA256:AAAA by old on ") for n in shown)
    world.hub.handle_line(world.watcher, "/unban fingerprint:SHA256:AAAA")  # lifted by what is shown
    assert world.outs["watcher"].notices[-1] == "lifted the ban on SHA256:AAAA"
    assert world.hub.moderation.active_bans() == []


def test_part_of_a_room_one_is_not_in_is_refused_cleanly() -> None:
    world = World()
    world.hub.handle_line(world.pleb, f"/part #x{PAYLOAD}")
    assert world.outs["pleb"].notices[-1].startswith("you are not in")
    assert world.dirty() == []


def test_a_time_zone_that_is_a_folder_or_too_long_is_refused() -> None:
    world = World()
    for zone in ("America", "Z" * 3000):
        world.hub.handle_line(world.pleb, f"/timestamp time {zone}")
        assert world.outs["pleb"].notices[-1].startswith("unknown time zone")


def test_counts_that_are_digits_but_not_numbers_are_refused() -> None:
    world = World()
    for arg in ("\u00b2", "9" * 5000):
        for command in ("/history", "/audit"):
            world.hub.handle_line(world.op, f"{command} {arg}")
            assert world.outs["mallory"].notices[-1].startswith("usage:"), command


def test_the_message_of_the_day_from_a_file_or_an_old_store_is_shown_cleaned() -> None:
    hub = Hub(MemoryStore(), chat_settings(), motd=f"  Welcome{PAYLOAD}\n\x07\x9b31mrules: be\u202e kind\u0000")
    out = Recorder()
    member = hub.join("newcomer", None, out, "192.0.2.1")
    hub.handle_line(member, "/motd")
    shown = [n for n in out.notices if n.strip() in ("Welcome", "rules: be kind")]
    assert shown == ["  Welcome", "rules: be kind"] * 2  # on joining, then on /motd


def test_a_rooms_filter_is_shown_cleaned_and_still_finds_the_room() -> None:
    world = World()
    world.hub.handle_line(world.pleb, "/join #rust")
    world.hub.handle_line(world.op, f"/rooms ru{PAYLOAD}st")
    notices = world.outs["mallory"].notices
    assert notices[-2] == "1 room with 'rust' in the name (* you are here, + you are a member):"
    assert world.dirty() == []


class _OlderStore(MemoryStore):
    """A store as an older version left it: a ban and a MOTD kept as typed."""

    def load(self, recent_per_room: int) -> Snapshot:
        raw = Ban("fingerprint", BOB, None, f"spam{PAYLOAD}", f"old{PAYLOAD}", 1.0)
        return Snapshot(bans=[raw], motd=f"hi{PAYLOAD}")


def test_what_an_older_store_kept_raw_is_cleaned_as_it_is_loaded() -> None:
    hub = Hub(_OlderStore(), chat_settings())
    refused = ""
    try:
        hub.join("bob", BOB, Recorder(), "192.0.2.1")
    except JoinRefused as e:
        refused = str(e)
    assert refused == "you are banned: spam"
    assert hub.moderation.motd == "hi"


def test_piled_combining_marks_reach_others_capped() -> None:
    """Words others read (a message, a topic, an away note, a reason) keep at
    most MAX_COMBINING marks on a character, however many were typed."""
    world = World()
    zalgo = "a" + "\u0301\u0489" * 150 + "b" + "\u0300" * 40
    for line in (zalgo, f"/me {zalgo}", f"/topic {zalgo}", f"/away {zalgo}", f"/msg bob {zalgo}"):
        world.hub.handle_line(world.op, line)
    world.hub.handle_line(world.watcher, "/whois mallory")
    world.hub.handle_line(world.op, f"/kick pleb {zalgo}")
    seen = [t for name in ("bob", "watcher", "pleb") for t in everything_sent(world.outs[name])]
    assert any(("a" + "\u0301\u0489\u0301b") in t for t in seen)  # the marks kept, up to the cap
    assert max(piled_marks(t) for t in seen) == MAX_COMBINING
    assert world.dirty() == []

