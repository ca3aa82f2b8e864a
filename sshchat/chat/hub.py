"""The hub: who is online, and where each line a person types goes.

It is the whole chat as seen from a transport: ``join`` a person with an
outlet, feed their lines to ``handle_line``, ``leave`` when they go. No I/O
happens here: outlets only queue, and the store commits on its own thread
and calls back, so every call returns at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sshchat.chat.commands import COMMANDS, dispatch
from sshchat.chat.member import Member, Outlet
from sshchat.chat.message import Kind, Message
from sshchat.chat.moderation import Moderation, mute_target
from sshchat.chat.names import InvalidName, check_name, name_key
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room
from sshchat.chat.store import AuditEntry, Change, Draft, Store
from sshchat.term.sanitize import clean

log = logging.getLogger("sshchat")

LOBBY = "#lobby"

# Only what people said is worth replaying to someone who joins later.
_KEPT_IN_HISTORY = frozenset({Kind.CHAT, Kind.EMOTE})
_MUTED_REMINDER_EVERY = 60.0


class JoinRefused(Exception):
    """A login that may not join; ``str()`` is the reason to show the client."""


@dataclass(frozen=True)
class ChatSettings:
    """The part of the configuration the chat core needs."""

    max_message_chars: int = 1024
    history_on_join: int = 20
    history_per_call: int = 200  # most messages one /history shows
    history_in_memory: int = 200  # per room, for joins without a disk read
    server_name: str = "sshchat"


def until_text(until: float | None) -> str:
    """" until 2026-11-25 14:00 UTC", or "" for no end."""
    if until is None:
        return ""
    return " until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))


class Hub:
    """Online members, the room, the rules, and the routing of input."""

    def __init__(
        self,
        store: Store,
        settings: ChatSettings | None = None,
        clock: Callable[[], float] = time.time,
        *,
        admins: Iterable[str] = (),
        allowlist: Iterable[str] | None = None,
        motd: str | None = None,
    ) -> None:
        self.settings = settings or ChatSettings()
        self.clock = clock
        self.store = store
        snapshot = store.load(self.settings.history_in_memory)
        self.names = NameRegistry(snapshot.bindings, store, clock)
        self.moderation = Moderation(snapshot, store, clock, admins, allowlist, motd)
        self.members: dict[str, Member] = {}
        self.lobby = Room(LOBBY, self.settings.history_in_memory)
        self.lobby.history.extend(snapshot.recent.get(LOBBY, []))
        self.commands = COMMANDS
        self.closing = False

    # ------------------------------------------------------------- presence

    def find(self, name: str) -> Member | None:
        """The online member called ``name`` (ignoring case), if any."""
        return self.members.get(name_key(name))

    def is_op(self, member: Member) -> bool:
        return self.moderation.is_op(member.fingerprint)

    def join(
        self, name: str, fingerprint: str | None, outlet: Outlet, address: str = ""
    ) -> Member:
        """Admit a person, or raise JoinRefused with the reason to show them.

        The same name with the same key replaces the old session (a dropped
        connection must never leave a ghost that holds the name).
        """
        if self.closing:
            raise JoinRefused("the server is shutting down; try again shortly")
        try:
            check_name(name)
        except InvalidName as e:
            raise JoinRefused(str(e)) from None
        ban = self.moderation.ban_for(fingerprint, address)
        if ban is not None:
            raise JoinRefused(f"you are banned{until_text(ban.until)}: {ban.reason or 'no reason given'}")
        if not self.moderation.admits(fingerprint):
            yours = f"your key is {fingerprint}" if fingerprint else "you connected without a key"
            raise JoinRefused(f"this server admits only keys on its allowlist; {yours}")
        refusal = self.names.refusal(name, fingerprint)
        if refusal:
            raise JoinRefused(refusal)
        old = self.find(name)
        if old is not None:
            if fingerprint is None or old.fingerprint != fingerprint:
                raise JoinRefused(
                    f'the name "{old.name}" is already in use; '
                    f"connect with another name: ssh OTHERNAME@host"
                )
            self._remove(old)
            old.outlet.close("you logged in from elsewhere")
        now = self.clock()
        member = Member(name, fingerprint, outlet, address, connected_at=now, last_active=now)
        self.members[member.key] = member
        self.lobby.add(member)
        self.names.claim(name, fingerprint)
        outlet.notice(
            f"Welcome to {self.settings.server_name}, {name}! "
            f"{len(self.members)} online. Type /help for commands."
        )
        for line in (self.moderation.motd or "").splitlines():
            outlet.notice(line)
        for msg in self.lobby.recent(self.settings.history_on_join):
            outlet.deliver(msg)
        if old is None:
            self._publish(member, Kind.JOIN, f"{name} joined ({len(self.members)} online)")
        return member

    def leave(self, member: Member, reason: str | None = None) -> None:
        """Remove a member (safe to call twice, or for a replaced session)."""
        if not self._remove(member) or self.closing:
            return
        text = f"{member.name} left" + (f" ({reason})" if reason else "")
        self._publish(member, Kind.LEAVE, text)

    def _remove(self, member: Member) -> bool:
        if self.members.get(member.key) is not member:
            return False
        del self.members[member.key]
        self.lobby.remove(member)
        return True

    def rename(self, member: Member, new_name: str) -> None:
        """Change a member's name under the same rules as logging in."""
        try:
            check_name(new_name)
        except InvalidName as e:
            member.outlet.notice(str(e))
            return
        if new_name == member.name:
            member.outlet.notice(f"you are already {new_name}")
            return
        other = self.find(new_name)
        if other is not None and other is not member:
            member.outlet.notice(f'the name "{other.name}" is already in use')
            return
        refusal = self.names.refusal(new_name, member.fingerprint)
        if refusal:
            member.outlet.notice(refusal)
            return
        old_name, old_key = member.name, member.key
        del self.members[old_key]
        member.name = new_name
        self.members[member.key] = member
        self.lobby.rekey(old_key, member)
        self.names.claim(new_name, member.fingerprint)
        member.outlet.renamed(new_name)
        self._publish(member, Kind.SYSTEM, f"{old_name} is now known as {new_name}")

    def shutdown(self, reason: str) -> None:
        """Tell everyone ``reason`` and end every session, without leave noise."""
        self.closing = True
        for member in list(self.members.values()):
            member.outlet.close(reason)
        self.members.clear()

    # ---------------------------------------------------------------- input

    def handle_line(self, member: Member, line: str) -> None:
        """Route one line a person typed: a command, or a message to the room."""
        if self.members.get(member.key) is not member:
            return  # a replaced or departed session still draining input
        member.last_active = self.clock()
        if line.startswith("/") and not line.startswith("//"):
            dispatch(self, member, line)
            return
        if line.startswith("//"):
            line = line[1:]  # "//etc" says "/etc"
        text = self.accept_text(member, line)
        if text:
            self.say(member, Kind.CHAT, text)

    def accept_text(self, member: Member, text: str) -> str | None:
        """Clean ``text`` and check its length; tell the member if refused."""
        text = clean(text)
        limit = self.settings.max_message_chars
        if len(text) > limit:
            member.outlet.notice(
                f"message too long ({len(text)} characters, at most {limit}); not sent"
            )
            return None
        return text or None

    def say(self, member: Member, kind: Kind, text: str) -> None:
        """Publish ``text`` (already cleaned) from ``member`` in the room."""
        if self._muted(member, Message(0, LOBBY, kind, member.name, text, self.clock())):
            return
        self._publish(member, kind, text)

    def private(self, member: Member, target: Member, text: str) -> None:
        """A message only ``member`` and ``target`` see (stored for them only)."""
        draft = Draft(
            LOBBY, Kind.PRIVATE, member.name, text, self.clock(), target.name, member.fingerprint
        )
        if self._muted(member, Message(0, LOBBY, Kind.PRIVATE, member.name, text, draft.time, target.name)):
            return

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                member.outlet.notice(_NOT_SAVED)
                return
            target.outlet.deliver(result[0])
            if target is not member:
                member.outlet.deliver(result[0])

        self.store.append([draft], committed)

    def _muted(self, member: Member, echo: Message) -> bool:
        """If ``member`` is muted, show them their own line only and say so."""
        mute = self.moderation.mute_of(mute_target(member.fingerprint, member.key))
        if mute is None:
            return False
        member.outlet.deliver(echo)
        now = self.clock()
        if now - member.muted_reminded >= _MUTED_REMINDER_EVERY:
            member.muted_reminded = now
            member.outlet.notice(f"you are muted{until_text(mute.until)}: nobody else sees your messages")
        return True

    def audit(self, member: Member, action: str, target: str, detail: str = "") -> None:
        """Keep a moderation action in the audit log (and the server log)."""
        entry = AuditEntry(self.clock(), member.name, member.fingerprint, action, target, detail)
        log.info("audit: %s %s %s %s", member.name, action, target, detail)
        self.store.save(Change("audit", entry))

    def _publish(self, member: Member, kind: Kind, text: str) -> None:
        keep = kind in _KEPT_IN_HISTORY
        draft = Draft(LOBBY, kind, member.name, text, self.clock(), None, member.fingerprint, keep)

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                member.outlet.notice(_NOT_SAVED)
                return
            for msg in result:
                self.lobby.publish(msg, keep=keep)

        self.store.append([draft], committed)


_NOT_SAVED = "your message could not be saved (storage error), so nobody got it; please try again"
