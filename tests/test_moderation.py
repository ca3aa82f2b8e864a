"""Names bound to keys, operators and every moderation command, in the core.

A fake clock makes expiry testable without sleeping; the in-memory store
commits at once, so each line's effect is visible when handle_line returns.
"""

from __future__ import annotations

import pytest

from sshchat.chat.hub import Hub, JoinRefused
from sshchat.chat.message import Kind
from sshchat.chat.store import AuditEntry
from sshchat.store.memory import MemoryStore
from tests.support.chat import Clock, Recorder
from tests.support.settings import chat_settings

# Shaped like real ones (43 base64 characters): /ban fingerprint:... refuses anything else.
ADMIN = "SHA256:adminKeyFingerprint".ljust(50, "0")
BOB = "SHA256:bobKeyFingerprint".ljust(50, "0")
CAROL = "SHA256:carolKeyFingerprint".ljust(50, "0")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def hub(store: MemoryStore, clock: Clock) -> Hub:
    return Hub(store, chat_settings(), clock=clock, admins={ADMIN})


def join(hub: Hub, name: str, fp: str | None, address: str = "192.0.2.1"):
    out = Recorder()
    return hub.join(name, fp, out, address), out


def audit_actions(store: MemoryStore) -> list[str]:
    return [c.action for c in store.changes if isinstance(c, AuditEntry)]


# ------------------------------------------------------------------ names


def test_first_key_owns_a_name(hub: Hub) -> None:
    bob, _out = join(hub, "bob", BOB)
    hub.leave(bob)
    with pytest.raises(JoinRefused, match='"bob" is registered to another key'):
        join(hub, "BOB", CAROL)
    with pytest.raises(JoinRefused, match='"bob" is registered to a key'):
        join(hub, "bob", None)
    join(hub, "Bob", BOB)  # the owner, in another case, is fine


def test_keyless_people_own_nothing(hub: Hub) -> None:
    anon, _ = join(hub, "anon", None)
    hub.leave(anon)
    join(hub, "anon", CAROL)  # free for the first key that comes


def test_nick_obeys_registration(hub: Hub) -> None:
    bob, _ = join(hub, "bob", BOB)
    hub.leave(bob)
    carol, out = join(hub, "carol", CAROL)
    hub.handle_line(carol, "/nick bob")
    assert 'the name "bob" is registered to another key' in out.notices[-1]
    hub.handle_line(carol, "/nick caz")
    hub.leave(carol)
    with pytest.raises(JoinRefused, match="registered"):
        join(hub, "caz", BOB)  # /nick claimed it for carol's key too


def test_whois_tells_registration(hub: Hub) -> None:
    bob, _ = join(hub, "bob", BOB)
    hub.leave(bob)
    _, out = join(hub, "watcher", None)
    hub.handle_line(hub.find("watcher"), "/whois bob")
    assert out.notices[-1] == f"bob is offline; the name is registered to {BOB}"


def test_unregister_releases_a_name(hub: Hub, store: MemoryStore) -> None:
    bob, _ = join(hub, "bob", BOB)
    hub.leave(bob)
    admin, out = join(hub, "boss", ADMIN)
    hub.handle_line(admin, "/unregister bob")
    assert out.notices[-1] == f"released the name bob (was {BOB})"
    join(hub, "bob", CAROL)
    assert "unregister" in audit_actions(store)


# -------------------------------------------------------------- operators


def test_operator_commands_are_hidden_and_refused_for_others(hub: Hub) -> None:
    user, out = join(hub, "user", CAROL)
    hub.handle_line(user, "/help")
    assert not any("/ban" in n or "/mute" in n or "/audit" in n for n in out.notices)
    for line in ("/ban boss", "/mute boss", "/op user", "/banned", "/audit"):
        hub.handle_line(user, line)
        assert out.notices[-1].endswith("is for operators only"), line
    admin, admin_out = join(hub, "boss", ADMIN)
    hub.handle_line(admin, "/help")
    assert any(n.startswith("operators:") and "/ban" in n for n in admin_out.notices)


def test_op_and_deop(hub: Hub, store: MemoryStore) -> None:
    admin, out = join(hub, "boss", ADMIN)
    bob, bob_out = join(hub, "bob", BOB)
    _anon, _ = join(hub, "anon", None)
    hub.handle_line(admin, "/op anon")
    assert out.notices[-1] == "anon has no key; only people with a key can be operators"
    hub.handle_line(admin, "/op bob")
    assert "made you an operator" in bob_out.notices[-1]
    hub.handle_line(bob, "/kick anon")  # bob can act now
    assert hub.find("anon") is None
    hub.handle_line(bob, "/deop boss")
    assert "admin from the server's --admin-keys file" in bob_out.notices[-1]
    hub.handle_line(admin, "/deop bob")
    hub.handle_line(bob, "/kick boss")
    assert bob_out.notices[-1] == "only operators, and the creator of a room (in that room), can /kick"
    assert audit_actions(store) == ["op", "kick", "deop"]


# ------------------------------------------------------------ kick, ban


def test_kick_with_reason(hub: Hub, store: MemoryStore) -> None:
    admin, out = join(hub, "boss", ADMIN)
    _bob, bob_out = join(hub, "bob", BOB)
    hub.handle_line(admin, "/kick bob flooding the room")
    assert bob_out.closed == "you were kicked by boss: flooding the room"
    assert "bob left (kicked by boss: flooding the room)" in out.texts(Kind.LEAVE)
    assert hub.find("bob") is None
    join(hub, "bob", BOB)  # a kick is not a ban


def test_ban_by_name_until_it_expires(hub: Hub, clock: Clock) -> None:
    admin, out = join(hub, "boss", ADMIN)
    _bob, bob_out = join(hub, "bob", BOB, "198.51.100.30")
    hub.handle_line(admin, "/ban bob 10m spam")
    assert bob_out.closed is not None and bob_out.closed.startswith("you were banned by boss until ")
    assert "bob left (banned by boss: spam)" in out.texts(Kind.LEAVE)
    with pytest.raises(JoinRefused, match=r"you are banned until .*: spam"):
        join(hub, "bob", BOB)
    with pytest.raises(JoinRefused, match="banned"):
        join(hub, "other", BOB, "198.51.100.9")  # the key, under any name, anywhere
    hub.handle_line(admin, "/banned")
    assert out.notices[-3] == "2 bans:"  # their key and their address
    assert out.notices[-2].startswith(f"  fingerprint:{BOB} by boss on ")
    assert out.notices[-1].startswith("  ip:198.51.100.30/32 by boss on ")
    clock.now += 601
    join(hub, "bob", BOB)
    hub.handle_line(admin, "/banned")
    assert out.notices[-1] == "no bans"


def test_ban_address_ranges(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    hub.handle_line(admin, "/ban ip:203.0.113.0/24 botnet")
    assert out.notices[-1] == "banned 203.0.113.0/24"
    for address in ("203.0.113.77", "::ffff:203.0.113.5"):
        with pytest.raises(JoinRefused, match="you are banned: botnet"):
            join(hub, "x", None, address)
    join(hub, "y", None, "203.0.114.1")
    hub.handle_line(admin, "/ban ip:not-an-address")
    assert out.notices[-1].startswith("an address looks like")
    hub.handle_line(admin, "/unban ip:203.0.113.0/24")
    join(hub, "x", None, "203.0.113.77")


def test_ban_keyless_person_bans_their_address(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    _anon, anon_out = join(hub, "anon", None, "198.51.100.20")
    hub.handle_line(admin, "/ban anon")
    assert out.notices[-1] == "banned anon (no key, so their address 198.51.100.20/32)"
    assert anon_out.closed is not None
    with pytest.raises(JoinRefused, match="banned"):
        join(hub, "newname", None, "198.51.100.20")


def test_ban_by_fingerprint_and_unban(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    hub.handle_line(admin, f"/ban fingerprint:{CAROL} 1h")
    with pytest.raises(JoinRefused, match="banned"):
        join(hub, "carol", CAROL)
    hub.handle_line(admin, f"/unban fingerprint:{CAROL}")
    assert out.notices[-1] == f"lifted the ban on {CAROL}"
    join(hub, "carol", CAROL)
    hub.handle_line(admin, "/unban nobody")
    assert out.notices[-1] == "no ban on nobody; see /banned"


# ------------------------------------------------------------------- mute


def test_muted_messages_reach_only_the_muted(hub: Hub, clock: Clock) -> None:
    admin, out = join(hub, "boss", ADMIN)
    bob, bob_out = join(hub, "bob", BOB)
    hub.handle_line(admin, "/mute bob 5m")
    assert "you were muted by boss until" in bob_out.notices[-1]
    hub.handle_line(bob, "can anyone hear me")
    hub.handle_line(bob, "/me shouts")
    hub.handle_line(bob, "/msg boss psst")
    assert "can anyone hear me" in bob_out.texts()  # they see their own line
    assert "can anyone hear me" not in out.texts()
    assert "shouts" not in out.texts() and "psst" not in out.texts()
    assert sum("nobody else sees your messages" in n for n in bob_out.notices) == 1  # told once, not per line
    clock.now += 301
    hub.handle_line(bob, "back")
    assert "back" in out.texts()


def test_mute_survives_reconnect_and_unmute(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    bob, _ = join(hub, "bob", BOB)
    hub.handle_line(admin, "/mute bob")
    hub.leave(bob)
    bob, bob_out = join(hub, "bob", BOB)
    hub.handle_line(bob, "still muted?")
    assert "still muted?" not in out.texts()
    hub.handle_line(admin, "/unmute bob")
    assert bob_out.notices[-1] == "you were unmuted by boss"
    hub.handle_line(bob, "free")
    assert "free" in out.texts()
    hub.handle_line(admin, "/unmute bob")
    assert out.notices[-1] == "bob is not muted"


# ------------------------------------------------------- allowlist, motd


def test_allowlist(store: MemoryStore, clock: Clock) -> None:
    hub = Hub(store, chat_settings(), clock=clock, admins={ADMIN}, allowlist={CAROL})
    with pytest.raises(JoinRefused, match=f"admits only keys on its allowlist; your key is {BOB}"):
        join(hub, "bob", BOB)
    with pytest.raises(JoinRefused, match="you connected without a key"):
        join(hub, "anon", None)
    join(hub, "carol", CAROL)
    admin, out = join(hub, "boss", ADMIN)  # admins always get in
    hub.handle_line(admin, f"/allow add fingerprint:{BOB}")
    join(hub, "bob", BOB)
    hub.handle_line(admin, "/allow list")
    assert f"  {BOB} (added)" in out.notices and f"  {CAROL} (file)" in out.notices
    hub.handle_line(admin, "/allow remove bob")
    assert out.notices[-1] == "removed bob from the allowlist"
    hub.handle_line(admin, "/allow remove carol")
    assert "it is in the file" in out.notices[-1]


def test_allow_without_allowlist_explains(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    hub.handle_line(admin, "/allow list")
    assert "the allowlist is off" in out.notices[-1]


def test_motd(store: MemoryStore, clock: Clock) -> None:
    hub = Hub(store, chat_settings(), clock=clock, admins={ADMIN}, motd="be kind\nno spam")
    user, out = join(hub, "user", None)
    assert out.notices[1:3] == ["be kind", "no spam"]
    hub.handle_line(user, "/motd new text")
    assert out.notices[-1] == "only operators can set the message of the day"
    admin, _ = join(hub, "boss", ADMIN)
    hub.handle_line(admin, "/motd welcome, all")
    hub.handle_line(user, "/motd")
    assert out.notices[-1] == "welcome, all"
    hub.handle_line(admin, "/motd " + "x" * 2000)  # refused (too long): the old one stays
    hub.handle_line(admin, "/motd \x1b[2J")  # nothing left once cleaned: the old one stays
    hub.handle_line(user, "/motd")
    assert out.notices[-1] == "welcome, all"
    hub.handle_line(admin, "/motd -")
    hub.handle_line(user, "/motd")
    assert out.notices[-1] == "there is no message of the day"


def test_a_muted_operator_acts_but_is_not_heard(hub: Hub, store: MemoryStore) -> None:
    """Reasons and the message of the day are words others read in the
    operator's name: refused while muted, with a notice. Without words,
    the action itself still happens."""
    admin, _ = join(hub, "boss", ADMIN)
    op, op_out = join(hub, "deputy", BOB)
    _bob, bob_out = join(hub, "bob", CAROL)
    hub.handle_line(admin, "/op deputy")
    hub.handle_line(admin, "/mute deputy")
    refusals = {
        "/kick bob spam here": "you cannot give a reason for a kick while muted",
        "/ban bob 1h spam here": "you cannot give a reason for a ban while muted",
        "/mute bob spam here": "you cannot give a reason for a mute while muted",
        "/motd spam here": "you cannot set the message of the day while muted",
    }
    for line, refusal in refusals.items():
        hub.handle_line(op, line)
        assert op_out.notices[-1] == refusal, line
    assert hub.find("bob") is not None and bob_out.closed is None
    assert audit_actions(store) == ["op", "mute"]  # the admin's, nothing of deputy's
    assert hub.moderation.motd is None
    hub.handle_line(op, "/kick bob")
    assert bob_out.closed == "you were kicked by deputy"


def test_audit_log_lists_actions(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    join(hub, "bob", BOB)
    hub.handle_line(admin, "/mute bob 1h rude")
    hub.handle_line(admin, "/kick bob")
    hub.handle_line(admin, "/audit")
    assert out.notices[-3] == "the last 2 moderation actions:"
    assert out.notices[-2].endswith(f"boss mute fingerprint:{BOB}: rude for 1h")
    assert out.notices[-1].endswith("boss kick bob")


# ------------------------------------------------------- history, storage


def test_history_command_and_private_messages_stay_private(hub: Hub) -> None:
    alice, _out = join(hub, "alice", None)
    bob, _ = join(hub, "bob", None)
    for n in range(5):
        hub.handle_line(alice, f"m{n}")
    hub.handle_line(alice, "/msg bob secret")
    hub.handle_line(bob, "/history 3")
    _, late = join(hub, "late", None)
    hub.handle_line(hub.find("late"), "/history")
    assert "secret" not in late.texts()
    assert late.notices[-1] == "the last 5 messages of #lobby:"
    hub.handle_line(hub.find("late"), "/history lots")
    assert late.notices[-1] == "usage: /history [N] (N from 1 to 200)"


def test_storage_failure_tells_the_sender_and_shows_nothing(hub: Hub, store: MemoryStore) -> None:
    alice, out = join(hub, "alice", None)
    _bob, bob_out = join(hub, "bob", None)
    store.fail_next = True
    hub.handle_line(alice, "lost words")
    assert "could not be saved" in out.notices[-1]
    assert "lost words" not in bob_out.texts() and "lost words" not in out.texts()
    hub.handle_line(alice, "next one")
    assert "next one" in bob_out.texts()


def test_runtime_operators_cannot_act_on_admins(hub: Hub) -> None:
    admin, admin_out = join(hub, "boss", ADMIN)
    op, out = join(hub, "deputy", BOB)
    hub.handle_line(admin, "/op deputy")
    for line in ("/ban boss", "/kick boss", "/mute boss", f"/ban fingerprint:{ADMIN}"):
        hub.handle_line(op, line)
        assert out.notices[-1].endswith("operators cannot act on admins"), line
    assert hub.find("boss") is admin and admin_out.closed is None
    hub.handle_line(admin, "/ban ip:192.0.2.0/24")  # even an address ban that covers an admin
    hub.leave(admin)
    join(hub, "boss", ADMIN)  # admins pass bans


def test_muted_people_cannot_rename_and_keyless_mutes_can_be_lifted(hub: Hub) -> None:
    admin, out = join(hub, "boss", ADMIN)
    troll, troll_out = join(hub, "troll", None)
    hub.handle_line(admin, "/mute troll")
    hub.handle_line(troll, "/nick troll2")
    assert troll_out.notices[-1] == "you cannot change your name while muted"
    hub.handle_line(admin, "/unmute troll")
    assert out.notices[-1] == "unmuted troll"


def test_a_keyless_mute_kept_by_an_older_version_under_a_name_can_be_lifted(hub: Hub) -> None:
    from sshchat.chat.store import Mute

    admin, out = join(hub, "boss", ADMIN)
    hub.moderation.mute(Mute("name:troll", None, "", "boss", 0.0))
    hub.handle_line(admin, "/unmute troll")
    assert out.notices[-1] == "unmuted troll"


def test_ignore_takes_names_only(hub: Hub) -> None:
    alice, out = join(hub, "alice", None)
    hub.handle_line(alice, "/ignore " + "x" * 100)
    assert out.notices[-1].startswith("/ignore takes a name")
    assert alice.prefs.ignores == ()
