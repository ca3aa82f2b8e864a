"""Operations: the Core that commands get (see commands/core.py), made of
the hub's parts.

Mostly one line each, on purpose: this is where a command's request meets
the part that owns the state, and nothing else reaches across.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sshchat.chat.commands.table import BUILT_IN, CommandTable
from sshchat.chat.member import Member
from sshchat.chat.message import Kind, Message
from sshchat.chat.moderation import Moderation, Then, until_text
from sshchat.chat.pipeline import Pipeline
from sshchat.chat.presence import Presence
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room
from sshchat.chat.rooms import Rooms
from sshchat.chat.roster import Mirror
from sshchat.chat.settings import ChatSettings
from sshchat.chat.store import AuditEntry, Ban, Binding, Mute, Store


class Operations:
    """What commands may do, and nothing more."""

    def __init__(
        self,
        settings: ChatSettings,
        clock: Callable[[], float],
        store: Store,
        pipeline: Pipeline,
        rooms: Rooms,
        presence: Presence,
        names: NameRegistry,
        moderation: Moderation,
        disconnect: Callable[[Member, str, str], None],
        remote: Mirror,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._store = store
        self._pipeline = pipeline
        self._rooms = rooms
        self._presence = presence
        self._names = names
        self._moderation = moderation
        self._disconnect = disconnect
        self._remote = remote  # people on the other nodes of a cluster
        self.commands: CommandTable = BUILT_IN  # the hub's, plugins' commands included

    @property
    def settings(self) -> ChatSettings:
        return self._settings

    # ------------------------------------------------------------- lookups

    def now(self) -> float:
        return self._clock()

    def is_op(self, member: Member) -> bool:
        return self._moderation.is_op(member.fingerprint)

    def is_admin(self, fingerprint: str | None) -> bool:
        return fingerprint in self._moderation.admins

    def find(self, name: str) -> Member | None:
        return self._presence.find(name) or self._remote.find(name)

    def find_by_key(self, fingerprint: str) -> Member | None:
        found = self._presence.find_by_key(fingerprint)
        if found is None and self._remote:
            found = next((m for m in self._remote if m.fingerprint == fingerprint), None)
        return found

    def people_in(self, room: Room) -> list[Member]:
        return [*room.members.values(), *self._remote.in_room(room.key)]

    def room_counts(self) -> dict[str, int]:
        counts = self._remote.room_counts()
        for room in self._rooms:
            counts[room.key] = counts.get(room.key, 0) + len(room.members)
        return counts

    def find_person(self, person: str) -> Member | None:
        return self._presence.find_person(person)

    def last_address(self, identity: str) -> str | None:
        return self._presence.last_address(identity)

    def binding(self, name: str) -> Binding | None:
        return self._names.binding(name)

    def room(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def room_of(self, member: Member) -> Room:
        return self._rooms.of(member)

    def rooms(self) -> Iterable[Room]:
        return self._rooms

    def history(self, room: Room, count: int, show: Callable[[list[Message]], None]) -> None:
        self._store.history(room.name, None, count, show)

    def audit_log(self, count: int, show: Callable[[list[AuditEntry]], None]) -> None:
        self._store.audit_log(count, show)

    # ------------------------------------------------------------- talking

    def on_behalf(self, member: Member, text: str, doing: str) -> str | None:
        return self._pipeline.on_behalf(member, text, doing)

    def say(self, member: Member, kind: Kind, text: str) -> None:
        self._pipeline.say(member, self._rooms.of(member), kind, text)

    def private(self, member: Member, target: Member, text: str) -> None:
        self._pipeline.private(member, target, text)

    # --------------------------------------------------------------- rooms

    def enter(self, member: Member, room_name: str) -> None:
        self._rooms.enter(member, room_name)

    def part(self, member: Member, room_name: str | None) -> None:
        self._rooms.part(member, room_name)

    def set_topic(self, member: Member, text: str | None) -> None:
        self._rooms.set_topic(member, text)

    def may_manage(self, member: Member, room: Room) -> bool:
        return self._rooms.may_manage(member, room)

    def remove_from_room(self, member: Member, target: Member, reason: str) -> None:
        self._rooms.remove_from_room(member, target, reason)

    def remove_room(self, room: Room, notice: str, then: Then | None = None) -> None:
        self._rooms.remove(room, notice, then)

    # ------------------------------------------------------------- oneself

    def rename(self, member: Member, new_name: str) -> None:
        self._presence.rename(member, new_name)

    def save_prefs(self, member: Member) -> None:
        self._presence.save_prefs(member)

    # ---------------------------------------------------------- moderation

    def audit(self, member: Member, action: str, target: str, detail: str = "", **fields: Any) -> None:
        self._moderation.audit(member.name, member.fingerprint, action, target, detail, **fields)

    def kick(self, member: Member, target: Member, reason: str) -> None:
        checked = self._pipeline.on_behalf(member, reason, "give a reason for a kick")
        if checked is None:
            return
        reason = checked
        self.audit(member, "kick", target.name, reason, reason=reason or None, target_fingerprint=target.fingerprint)
        because = f": {reason}" if reason else ""
        self._disconnect(target, f"kicked by {member.name}{because}", f"you were kicked by {member.name}{because}")

    def ban(self, member: Member, ban: Ban, then: Then | None = None) -> None:
        """Keep ``ban``; only once it is durable, end the sessions it covers."""

        def saved(ok: bool) -> None:
            if ok:
                self.enforce(ban, member.name, member)
            if then is not None:
                then(ok)

        self._moderation.ban(ban, saved)

    def enforce(self, ban: Ban, by: str, exempt: Member | None = None) -> None:
        """End the sessions the new ``ban`` covers (but ``exempt``'s, who made
        it): that ban alone is checked (against each person once for an
        address, by the key's index for a key), not every ban against everyone.
        Also for a ban another node made (chat/state.py): ``by`` names who."""
        moderation = self._moderation
        because = f": {ban.reason}" if ban.reason else ""
        if ban.kind == "fingerprint":
            people = self._presence.sessions_of(f"fingerprint:{ban.value}")
        else:
            people = list(self._presence.members.values())
        for victim in people:
            if victim is not exempt and moderation.covers(ban, victim.fingerprint, victim.address):
                self._disconnect(
                    victim, f"banned by {by}{because}",
                    f"you were banned by {by}{until_text(ban.until)}{because}",
                )
        for visitor in self._rooms.followers():  # bots following a room are turned away too
            if moderation.covers(ban, visitor.fingerprint, visitor.address):
                visitor.outlet.close(f"you were banned by {by}")

    def unban(self, kind: str, value: str, then: Then | None = None) -> Ban | None:
        return self._moderation.unban(kind, value, then)

    def bans(self) -> list[Ban]:
        return self._moderation.active_bans()

    def mute(self, mute: Mute, then: Then | None = None, address: str | None = None) -> None:
        self._moderation.mute(mute, then, address)

    def mute_of(self, target: str) -> Mute | None:
        return self._moderation.mute_of(target)

    def unmute(self, target: str, then: Then | None = None, address: str | None = None) -> Mute | None:
        return self._moderation.unmute(target, then, address)

    def grant_op(self, fingerprint: str, by: str, then: Then | None = None) -> bool:
        if self._moderation.is_op(fingerprint):
            return False
        self._moderation.grant(fingerprint, by, then)
        return True

    def revoke_op(self, fingerprint: str, then: Then | None = None) -> bool:
        return self._moderation.revoke(fingerprint, then)

    def release_name(self, name: str, then: Then | None = None) -> Binding | None:
        return self._names.release(name, then)

    def motd(self) -> str | None:
        return self._moderation.motd

    def set_motd(self, text: str | None, then: Then | None = None) -> None:
        self._moderation.set_motd(text, then)

    def allowlist(self) -> dict[str, str] | None:
        moderation = self._moderation
        if moderation.allowlist_file is None:
            return None
        allowed = dict.fromkeys(moderation.allowed, "added")
        allowed.update(dict.fromkeys(moderation.allowlist_file, "file"))
        return allowed

    def allow(self, fingerprint: str, by: str, then: Then | None = None) -> None:
        self._moderation.allow(fingerprint, by, then)

    def disallow(self, fingerprint: str, then: Then | None = None) -> bool:
        return self._moderation.disallow(fingerprint, then)
