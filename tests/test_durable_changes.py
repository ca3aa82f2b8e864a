"""A moderation or room change the store could not keep did not happen.

Each is saved first and applied, confirmed, announced and audited only once
the store says it is durable. Here the store refuses every change but the
audit log (so a test sees that nothing was audited either); the operator
is told it was not saved, and nobody else hears of it.
"""

from __future__ import annotations

from sshchat.chat.hub import Hub
from sshchat.chat.member import Member
from sshchat.chat.store import AuditEntry, Change, Saved
from sshchat.store.memory import MemoryStore
from tests.support.chat import Recorder, person
from tests.support.settings import chat_settings

ADMIN = "SHA256:admin-key-fingerprint-0000000000000000000"
CAROL = "SHA256:carol-key-fingerprint-000000000000000000000"
BOB = "SHA256:bob-key-fingerprint-00000000000000000000000"
ERIN = "SHA256:" + "E" * 43
NOT_SAVED = "was not saved (storage error); nothing changed"


class RefusingStore(MemoryStore):
    """Refuses state changes while ``failing``, as a full disk would; keeps
    audit entries so a test can see none was written for what failed."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def save(self, change: Change, done: Saved | None = None) -> None:
        self.fail_saves = self.failing and not isinstance(change, AuditEntry)
        super().save(change, done)

    def audited(self) -> list[str]:
        return [c.action for c in self.changes if isinstance(c, AuditEntry)]


class Chat:
    def __init__(self, allowlist: list[str] | None = None) -> None:
        self.store = RefusingStore()
        self.hub = Hub(self.store, chat_settings(), admins={ADMIN}, allowlist=allowlist)
        self.admin, self.admin_out = person(self.hub, "dana", ADMIN, "192.0.2.1")
        self.bob, self.bob_out = person(self.hub, "bob", BOB if allowlist is not None else None, "192.0.2.2")
        self.carol, self.carol_out = person(self.hub, "carol", CAROL, "192.0.2.3")

    def refused(self, member: Member, out: Recorder, line: str) -> None:
        """``line`` while the store refuses: told not saved, nobody else hears of it."""
        self.store.failing = True
        seen = {o: (len(o.messages), len(o.notices)) for o in (self.bob_out, self.carol_out, self.admin_out)}
        audited = self.store.audited()
        self.hub.handle_line(member, line)
        self.store.failing = False
        assert NOT_SAVED in out.notices[-1], out.notices
        for o, (messages, notices) in seen.items():
            assert o.messages[messages:] == [], (line, o.messages[messages:])
            if o is not out:
                assert o.notices[notices:] == [], (line, o.notices[notices:])
        assert self.store.audited() == audited
        assert self.carol_out.closed is None


def test_ban_and_unban_not_saved_change_nothing() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/ban carol spam")
    assert chat.hub.moderation.bans == {}
    chat.hub.handle_line(chat.admin, "/ban carol spam")
    assert chat.carol_out.closed is not None and chat.admin_out.notices[-1].startswith("banned carol")
    bans = dict(chat.hub.moderation.bans)
    chat.carol_out.closed = None  # (the check in refused: nobody else disconnected)
    chat.refused(chat.admin, chat.admin_out, "/unban carol")
    assert chat.hub.moderation.bans == bans


def test_mute_and_unmute_not_saved_change_nothing() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/mute carol noise")
    assert chat.hub.moderation.mutes == {}
    chat.hub.handle_line(chat.admin, "/mute carol noise")
    assert chat.admin_out.notices[-1].startswith("muted carol")
    chat.refused(chat.admin, chat.admin_out, "/unmute carol")
    assert len(chat.hub.moderation.mutes) == 1


def test_op_and_deop_not_saved_change_nothing() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/op carol")
    assert not chat.hub.moderation.is_op(CAROL)
    chat.hub.handle_line(chat.admin, "/op carol")
    assert chat.hub.moderation.is_op(CAROL)
    chat.refused(chat.admin, chat.admin_out, "/deop carol")
    assert chat.hub.moderation.is_op(CAROL)


def test_allowlist_not_saved_changes_nothing() -> None:
    chat = Chat(allowlist=[BOB, CAROL])
    chat.refused(chat.admin, chat.admin_out, f"/allow add fingerprint:{ERIN}")
    assert ERIN not in chat.hub.moderation.allowed
    chat.hub.handle_line(chat.admin, f"/allow add fingerprint:{ERIN}")
    assert ERIN in chat.hub.moderation.allowed
    chat.refused(chat.admin, chat.admin_out, f"/allow remove fingerprint:{ERIN}")
    assert ERIN in chat.hub.moderation.allowed


def test_motd_not_saved_changes_nothing() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/motd welcome all")
    assert chat.hub.moderation.motd is None
    chat.hub.handle_line(chat.admin, "/motd welcome all")
    assert chat.hub.moderation.motd == "welcome all"


def test_topic_not_saved_changes_nothing() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/topic lost")
    assert chat.hub.rooms["#lobby"].info.topic == ""
    chat.hub.handle_line(chat.admin, "/topic kept")
    assert chat.hub.rooms["#lobby"].info.topic == "kept"
    assert any("set the topic: kept" in t for t in chat.bob_out.texts())


def test_rmroom_not_saved_changes_nothing() -> None:
    chat = Chat()
    chat.hub.handle_line(chat.carol, "/join #den")
    room = chat.hub.rooms["#den"]
    chat.refused(chat.admin, chat.admin_out, "/rmroom #den")
    assert chat.hub.rooms.get("#den") is room and chat.carol.key in room.members
    chat.hub.handle_line(chat.admin, "/rmroom #den")
    assert "#den" not in chat.hub.rooms


def test_nick_to_a_name_not_saved_keeps_the_old_name() -> None:
    chat = Chat()
    chat.refused(chat.carol, chat.carol_out, "/nick caroline")
    assert chat.carol.name == "carol" and chat.hub.names.binding("caroline") is None
    assert chat.hub.find("caroline") is None
    chat.hub.handle_line(chat.carol, "/nick caroline")
    assert chat.carol.name == "caroline" and chat.hub.names.binding("caroline") is not None
    assert any("carol is now known as caroline" in t for t in chat.bob_out.texts())


def test_a_login_whose_name_could_not_be_registered_keeps_it_for_the_session() -> None:
    chat = Chat()
    chat.store.failing = True
    erin, erin_out = person(chat.hub, "erin", "SHA256:erin-key-fingerprint-0000000000000000000000", "192.0.2.4")
    chat.store.failing = False
    assert any("not registered" in n for n in erin_out.notices), erin_out.notices
    assert chat.hub.find("erin") is erin and chat.hub.names.binding("erin") is None


def test_unregister_not_saved_keeps_the_name_registered() -> None:
    chat = Chat()
    chat.refused(chat.admin, chat.admin_out, "/unregister carol")
    assert chat.hub.names.binding("carol") is not None
    chat.hub.handle_line(chat.admin, "/unregister carol")
    assert chat.hub.names.binding("carol") is None


class DeferringStore(RefusingStore):
    """Saves a change only when the test says so, as a busy disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[tuple[Change, Saved | None]] = []

    def save(self, change: Change, done: Saved | None = None) -> None:
        self.waiting.append((change, done))

    def settle(self) -> None:
        waiting, self.waiting = self.waiting, []
        for change, done in waiting:
            super().save(change, done)


def test_lines_typed_while_a_nick_is_saved_wait_for_it_and_are_bounded() -> None:
    store = DeferringStore()
    hub = Hub(store, chat_settings(rate_burst=1000), admins=set())
    carol, carol_out = person(hub, "carol", CAROL, "192.0.2.3")
    store.settle()
    _, bob_out = person(hub, "bob", None, "192.0.2.2")
    hub.handle_line(carol, "/nick caroline")
    for n in range(101):
        hub.handle_line(carol, f"line {n}")
    assert [t for t in bob_out.texts() if t.startswith("line ")] == []
    assert carol_out.notices[-1] == "your /nick is still being saved: this line was not sent; send it again"
    store.settle()
    said = [(m.sender, m.text) for m in bob_out.messages if m.text.startswith("line ")]
    assert said == [("caroline", f"line {n}") for n in range(100)]


def test_lines_typed_while_a_nick_fails_to_save_go_out_under_the_old_name() -> None:
    store = DeferringStore()
    hub = Hub(store, chat_settings(), admins=set())
    carol, carol_out = person(hub, "carol", CAROL, "192.0.2.3")
    store.settle()
    _, bob_out = person(hub, "bob", None, "192.0.2.2")
    hub.handle_line(carol, "/nick caroline")
    hub.handle_line(carol, "still carol")
    store.failing = True
    store.settle()
    assert NOT_SAVED in carol_out.notices[-1]
    assert [(m.sender, m.text) for m in bob_out.messages if m.text == "still carol"] == [("carol", "still carol")]
