"""The hub: who is online, which rooms there are, where each line goes.

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

from sshchat.chat.commands import dispatch
from sshchat.chat.member import Member, Outlet
from sshchat.chat.message import SPOKEN, Kind, Message
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.names import InvalidName, check_name, check_room, name_key, skeleton
from sshchat.chat.prefs import Prefs
from sshchat.chat.ratelimit import BucketsByKey, Offences, TokenBucket
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room, RoomInfo
from sshchat.chat.store import AuditEntry, Change, Draft, Store
from sshchat.term.sanitize import clean

log = logging.getLogger("sshchat")

LOBBY = "#lobby"
LOBBY_KEY = name_key(LOBBY)

# Only what people said is worth replaying to someone who joins later.
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
    rate_burst: int = 10
    rate_per_second: float = 1.0
    offence_threshold: int = 10
    offence_window: float = 60.0
    offence_block: float = 600.0
    idle_away: float = 600.0  # 0: never
    idle_kick: float = 0.0  # 0: never
    max_rooms: int = 1000
    max_rooms_per_person: int = 20
    # Comings and goings beyond this many per room within notice_window
    # seconds are summed up in one line at the next tick(): a login storm
    # must not cost a write to every member per login.
    notice_burst: int = 5
    notice_window: float = 2.0


class Hub:
    """Online members, the rooms, the rules, and the routing of input."""

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
        s = self.settings
        self.offences = Offences(s.offence_threshold, s.offence_window, s.offence_block, clock)
        self._buckets = BucketsByKey(s.rate_burst, s.rate_per_second, clock)  # identity -> rate limit
        self.members: dict[str, Member] = {}
        self._shapes: dict[str, Member] = {}  # skeleton -> online member
        self.rooms: dict[str, Room] = {}
        for info in [RoomInfo(LOBBY), *snapshot.rooms]:
            self.rooms[info.key] = Room(info, self.settings.history_in_memory)
        for room_name, messages in snapshot.recent.items():
            room = self.rooms.get(name_key(room_name))
            if room is not None:
                room.history.extend(messages)
        self._prefs = dict(snapshot.prefs)
        self._memberships = {
            who: [(k, cur) for k, cur in rooms if k in self.rooms]
            for who, rooms in snapshot.memberships.items()
        }
        self.closing = False

    @property
    def lobby(self) -> Room:
        return self.rooms[LOBBY_KEY]

    # ------------------------------------------------------------- presence

    def find(self, name: str) -> Member | None:
        """The online member called ``name`` (ignoring case), if any."""
        return self.members.get(name_key(name))

    def is_op(self, member: Member) -> bool:
        return self.moderation.is_op(member.fingerprint)

    def room_of(self, member: Member) -> Room:
        """The room ``member`` is looking at (where what they type goes)."""
        return self.rooms[member.room]

    def visitor(self, name: str, fingerprint: str | None, outlet: Outlet, address: str = "") -> Member:
        """Admit a one-command bot session (say, tail, who) without joining it.

        The same rules as for people apply, and the same rate limit (it is
        kept per identity, so a new connection per message gains nothing).
        A name in use online may be used only with the same key.
        """
        try:
            self._check(name, fingerprint, address)
            online = self.find(name)
            if online is not None and (fingerprint is None or online.fingerprint != fingerprint):
                raise JoinRefused(f'the name "{online.name}" is in use by someone online')
        except JoinRefused:
            self.offences.record(address)
            raise
        now = self.clock()
        visitor = Member(name, fingerprint, outlet, address, connected_at=now, last_active=now)
        visitor.bucket = self._bucket(visitor.identity)
        self.names.claim(name, fingerprint)
        return visitor

    def _bucket(self, identity: str) -> TokenBucket:
        """The rate limit of one identity, shared by all its connections."""
        return self._buckets.get(identity)

    def post(self, member: Member, room_name: str, text: str, done: Callable[[str | None], None]) -> None:
        """A bot's message to a room it is not in; ``done(error or None)`` once stored."""
        room = self.rooms.get(name_key(room_name))
        if room is None:
            done(f"no room called {room_name[:32]}")
            return
        if member.bucket is not None and not member.bucket.take():
            self.offences.record(member.address)
            done(f"rate limited: at most {self.settings.rate_burst} messages at once, "
                 f"then {self.settings.rate_per_second:g} a second")
            return
        cleaned, error = self._clean(text)
        if error or not cleaned:
            done(error or "nothing to say")
            return
        mute = self.moderation.mute_of(member.identity)
        if mute is not None:
            done(f"you are muted{until_text(mute.until)}")
            return
        self._publish(member, room, Kind.CHAT, cleaned, done)

    def screen_address(self, address: str) -> str | None:
        """Why a connection from ``address`` is turned away at once, if it is.

        Lets the transport refuse blocked addresses before the costly part
        of the SSH handshake.
        """
        until = self.offences.blocked_until(address)
        if until is not None:
            return f"too many refused logins or floods from your address; try again{until_text(until)}"
        return None  # address bans wait for the key: admins pass them

    def join(
        self, name: str, fingerprint: str | None, outlet: Outlet, address: str = ""
    ) -> Member:
        """Admit a person, or raise JoinRefused with the reason to show them.

        The same name with the same key replaces the old session (a dropped
        connection must never leave a ghost that holds the name). Refusals
        count as offences of the address: many in a row earn it a block.
        """
        if self.closing:
            raise JoinRefused("the server is shutting down; try again shortly")
        try:
            return self._admit(name, fingerprint, outlet, address)
        except JoinRefused:
            self.offences.record(address)
            raise

    def _check(self, name: str, fingerprint: str | None, address: str) -> None:
        """The admission rules every login goes through, people and bots alike."""
        refusal = self.screen_address(address)
        if refusal:
            raise JoinRefused(refusal)
        try:
            check_name(name)
        except InvalidName as e:
            raise JoinRefused(str(e)) from None
        ban = self.moderation.ban_for(fingerprint, address)
        if ban is not None and fingerprint not in self.moderation.admins:
            raise JoinRefused(f"you are banned{until_text(ban.until)}: {ban.reason or 'no reason given'}")
        if not self.moderation.admits(fingerprint):
            yours = f"your key is {fingerprint}" if fingerprint else "you connected without a key"
            raise JoinRefused(f"this server admits only keys on its allowlist; {yours}")
        refusal = self.names.refusal(name, fingerprint) or self._lookalike_online(name)
        if refusal:
            raise JoinRefused(refusal)

    def _admit(self, name: str, fingerprint: str | None, outlet: Outlet, address: str) -> Member:
        self._check(name, fingerprint, address)
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
        member.bucket = self._bucket(member.identity)
        if fingerprint and fingerprint in self._prefs:
            member.prefs = Prefs.from_json(self._prefs[fingerprint])
        remembered = self._memberships.get(member.identity) or [(LOBBY_KEY, True)]
        member.rooms = [key for key, _ in remembered]
        member.room = next((key for key, current in remembered if current), member.rooms[0])
        self.members[member.key] = member
        self._shapes[skeleton(name)] = member
        for key in member.rooms:
            self.rooms[key].add(member)
        self.names.claim(name, fingerprint)
        room = self.room_of(member)
        outlet.notice(
            f"Welcome to {self.settings.server_name}, {name}! "
            f"{len(self.members)} online. Type /help for commands."
        )
        for line in (self.moderation.motd or "").splitlines():
            outlet.notice(line)
        if room.info.topic:
            outlet.notice(f"{room.name}: {room.info.topic}")
        for msg in room.recent(self.settings.history_on_join):
            outlet.deliver(msg)
        if old is None:
            for key in member.rooms:
                self._announce(member, self.rooms[key], Kind.JOIN, f"{name} joined ({len(self.members)} online)")
        return member

    def disconnect(self, member: Member, reason: str, goodbye: str) -> None:
        """Send someone away: the room hears ``reason``, they read ``goodbye``."""
        self.leave(member, reason)
        member.outlet.close(goodbye)

    def leave(self, member: Member, reason: str | None = None) -> None:
        """Remove a member (safe to call twice, or for a replaced session)."""
        if not self._remove(member) or self.closing:
            return
        text = f"{member.name} left" + (f" ({reason})" if reason else "")
        for key in member.rooms:
            self._announce(member, self.rooms[key], Kind.LEAVE, text)

    def _announce(self, member: Member, room: Room, kind: Kind, text: str) -> None:
        """A join or leave notice: at once while they are few, summed up in a storm.

        Each notice at once is a write to every member, so rooms above 100
        members get fewer of them (notice_burst per 100 members, at least
        one per window); the rest wait for the summary line.
        """
        now = self.clock()
        recent = room.recent_notices
        while recent and recent[0] <= now - self.settings.notice_window:
            recent.popleft()
        burst = self.settings.notice_burst
        if len(room.members) > 100:
            burst = max(1, burst * 100 // len(room.members))
        if len(recent) < burst:
            recent.append(now)
            self._publish(member, room, kind, text)
            return
        room.pending_notices.setdefault(kind, []).append(member.name)

    def tick(self) -> None:
        """Publish the summed-up comings and goings (called every second or so).

        A summary costs a write to every member of the room, so big rooms get
        them less often: every second up to 1000 members, then one second
        more per 1000.
        """
        now = self.clock()
        for room in self.rooms.values():
            if not room.pending_notices:
                continue
            if now - room.last_summary < max(1.0, len(room.members) / 1000):
                continue
            room.last_summary = now
            pending, room.pending_notices = room.pending_notices, {}
            for kind, names in pending.items():
                verb = "joined" if kind is Kind.JOIN else "left"
                shown = ", ".join(names[:5])
                more = f" and {len(names) - 5} others" if len(names) > 5 else ""
                text = f"{shown}{more} {verb} ({len(self.members)} online)"
                draft = Draft(room.name, kind, "", text, self.clock(), keep=False)
                self.store.append([draft], lambda result, room=room: self._deliver_notice(room, result))

    @staticmethod
    def _deliver_notice(room: Room, result: list[Message] | Exception) -> None:
        if not isinstance(result, Exception):  # a lost summary is not worth an error
            for msg in result:
                room.publish(msg, keep=False)

    def _remove(self, member: Member) -> bool:
        if self.members.get(member.key) is not member:
            return False
        del self.members[member.key]
        if self._shapes.get(skeleton(member.name)) is member:
            del self._shapes[skeleton(member.name)]
        for key in member.rooms:
            self.rooms[key].remove(member)
        return True

    def _lookalike_online(self, name: str, me: Member | None = None) -> str | None:
        """Refusal for a name that looks like someone else's online name."""
        other = self._shapes.get(skeleton(name))
        if other is None or other is me or other.key == name_key(name):
            return None
        return f'the name "{name}" looks too much like "{other.name}"; please pick another'

    def sweep_idle(self) -> None:
        """Mark idle people away, and disconnect them if so configured.

        Called every few seconds by the application, not per message.
        """
        now = self.clock()
        away, kick = self.settings.idle_away, self.settings.idle_kick
        for member in list(self.members.values()):
            idle = now - member.last_active
            if kick and idle >= kick:
                self.disconnect(member, "idle", f"disconnected after {int(kick // 60)} minutes idle")
            elif away and idle >= away and member.away is None:
                member.away = "idle"

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
        if self.moderation.mute_of(member.identity) is not None:
            member.outlet.notice("you cannot change your name while muted")
            return
        other = self.find(new_name)
        if other is not None and other is not member:
            member.outlet.notice(f'the name "{other.name}" is already in use')
            return
        refusal = self.names.refusal(new_name, member.fingerprint) or self._lookalike_online(new_name, member)
        if refusal:
            member.outlet.notice(refusal)
            return
        old_name, old_key = member.name, member.key
        del self.members[old_key]
        self._shapes.pop(skeleton(old_name), None)
        member.rename(new_name)
        self.members[member.key] = member
        self._shapes[skeleton(new_name)] = member
        for key in member.rooms:
            self.rooms[key].rekey(old_key, member)
        self.names.claim(new_name, member.fingerprint)
        member.outlet.prompt_changed()
        for key in member.rooms:
            self._publish(member, self.rooms[key], Kind.SYSTEM, f"{old_name} is now known as {new_name}")

    def shutdown(self, reason: str) -> None:
        """Tell everyone ``reason`` and end every session, without leave noise."""
        self.closing = True
        for member in list(self.members.values()):
            member.outlet.close(reason)
        self.members.clear()
        for room in self.rooms.values():
            for listener in list(room.listeners):  # bots following a room
                listener.outlet.close(reason)
            room.listeners.clear()

    # ---------------------------------------------------------------- rooms

    def enter(self, member: Member, room_name: str) -> None:
        """/join: switch to a room, making it (and joining it) if needed."""
        try:
            check_room(room_name)
        except InvalidName as e:
            member.outlet.notice(str(e))
            return
        key = name_key(room_name)
        room = self.rooms.get(key)
        if room is None:
            refusal = self._room_limit(member)
            if refusal:
                member.outlet.notice(refusal)
                return
            info = RoomInfo(room_name, "", member.name, member.fingerprint, self.clock())
            room = self.rooms[key] = Room(info, self.settings.history_in_memory)
            self.store.save(Change("room", info))
            log.info("%s created %s", member.name, room_name)
        if key == member.room:
            member.outlet.notice(f"you are already in {room.name}")
            return
        joined = key not in member.rooms
        if joined:
            member.rooms.append(key)
            room.add(member)
        self._look_at(member, room)
        if joined:
            self._publish(member, room, Kind.JOIN, f"{member.name} joined {room.name} ({len(room.members)} here)")

    def _room_limit(self, member: Member) -> str | None:
        """Why ``member`` may not create another room (rooms are kept for good)."""
        s = self.settings
        if len(self.rooms) >= s.max_rooms:
            return f"the server has its limit of {s.max_rooms} rooms; join one of them (/rooms)"
        made = sum(
            1 for r in self.rooms.values()
            if (r.info.creator_fp == member.fingerprint if member.fingerprint
                else r.info.creator_fp is None and name_key(r.info.creator) == member.key)
        )
        if made >= s.max_rooms_per_person:
            return f"you have created {made} rooms, the most one person may"
        return None

    def part(self, member: Member, room_name: str | None) -> None:
        """/part: leave a room (the current one by default)."""
        key = member.room if room_name is None else name_key(room_name)
        if key not in member.rooms:
            member.outlet.notice(f"you are not in {room_name}")
            return
        if member.rooms == [LOBBY_KEY]:
            member.outlet.notice(f"{LOBBY} is the last room you are in; /quit leaves the chat")
            return
        self._drop_from(member, self.rooms[key], f"{member.name} left {self.rooms[key].name}")

    def _drop_from(self, member: Member, room: Room, notice: str) -> None:
        """Take ``member`` out of ``room``; the last room returns them to the lobby."""
        member.rooms.remove(room.key)
        member.unread.pop(room.key, None)
        room.remove(member)
        self._publish(member, room, Kind.LEAVE, notice)
        if not member.rooms:
            member.rooms.append(LOBBY_KEY)
            self.lobby.add(member)
        if member.room == room.key:
            self._look_at(member, self.rooms[member.rooms[-1]])
        else:
            self._remember(member)

    def _look_at(self, member: Member, room: Room) -> None:
        """Make ``room`` the one ``member`` sees and types into; catch them up."""
        member.room = room.key
        self._remember(member)
        member.outlet.prompt_changed()
        unread = member.unread.pop(room.key, 0)
        topic = f"; topic: {room.info.topic}" if room.info.topic else ""
        member.outlet.notice(f"now in {room.name} ({len(room.members)} here{topic})")
        if unread:
            member.outlet.notice(f"{unread} new messages since you last looked")
        count = min(max(self.settings.history_on_join, unread), self.settings.history_per_call)
        for msg in room.recent(count):
            member.outlet.deliver(msg)

    def save_prefs(self, member: Member) -> None:
        """Keep ``member``'s view settings, if they have a key to keep them under."""
        if member.fingerprint:
            data = member.prefs.to_json()
            self._prefs[member.fingerprint] = data
            self.store.save(Change("prefs", (member.fingerprint, data)))

    def _remember(self, member: Member) -> None:
        """Keep ``member``'s rooms (and which one they look at) for next time."""
        rooms = [(key, key == member.room) for key in member.rooms]
        self._memberships[member.identity] = rooms
        self.store.save(Change("memberships", (member.identity, rooms)))

    def set_topic(self, member: Member, text: str | None) -> None:
        """/topic: the room's creator (by key) or an operator may set it."""
        room = self.room_of(member)
        if text is None:
            member.outlet.notice(f"{room.name}: {room.info.topic or 'no topic'}")
            return
        if not self.may_manage(member, room):
            member.outlet.notice(f"only {room.name}'s creator or an operator can set its topic")
            return
        room.info.topic = text
        self.store.save(Change("room", room.info))
        self._publish(member, room, Kind.SYSTEM, f"{member.name} set the topic: {text}")

    def may_manage(self, member: Member, room: Room) -> bool:
        """Operators, and the keyed creator of ``room``."""
        creator = room.info.creator_fp
        return self.is_op(member) or (creator is not None and creator == member.fingerprint)

    def remove_from_room(self, member: Member, target: Member, reason: str) -> None:
        """A room creator's /kick: out of this room only."""
        room = self.room_of(member)
        if room.key not in target.rooms:
            member.outlet.notice(f"{target.name} is not in {room.name}")
            return
        self.audit(member, "kick", f"{target.name} from {room.name}", reason)
        suffix = f": {reason}" if reason else ""
        self._drop_from(target, room, f"{target.name} was removed from {room.name} by {member.name}{suffix}")
        target.outlet.notice(f"you were removed from {room.name} by {member.name}{suffix}")

    # ---------------------------------------------------------------- input

    def handle_line(self, member: Member, line: str) -> None:
        """Route one line a person typed: a command, or a message to their room."""
        if self.members.get(member.key) is not member:
            return  # a replaced or departed session still draining input
        member.last_active = self.clock()
        if member.away == "idle":
            member.away = None
        if member.bucket is not None and not member.bucket.take():
            self._throttle(member)
            return
        member.throttled = False
        if line.startswith("/") and not line.startswith("//"):
            dispatch(self, member, line)
            return
        if line.startswith("//"):
            line = line[1:]  # "//etc" says "/etc"
        text = self.accept_text(member, line)
        if text:
            self.say(member, Kind.CHAT, text)

    def _throttle(self, member: Member) -> None:
        """Over the rate limit: say so once per burst; repeat floods earn a block."""
        if member.throttled:
            return
        member.throttled = True
        s = self.settings
        if self.offences.record(member.address):
            until = until_text(self.offences.blocked_until(member.address))
            self.disconnect(member, "flooding", f"disconnected for flooding; your address may reconnect{until}")
            return
        member.outlet.notice(
            f"slow down: {s.rate_burst} messages at once, then {s.rate_per_second:g} a second; "
            "what you send now reaches nobody"
        )

    def accept_text(self, member: Member, text: str) -> str | None:
        """Clean ``text`` and check its length; tell the member if refused."""
        text, error = self._clean(text)
        if error:
            member.outlet.notice(f"{error}; not sent")
            return None
        return text or None

    def _clean(self, text: str) -> tuple[str, str | None]:
        """The one check of what people and bots send: cleaned text, or why not."""
        text = clean(text)
        limit = self.settings.max_message_chars
        if len(text) > limit:
            return text, f"message too long ({len(text)} characters, at most {limit})"
        return text, None

    def say(self, member: Member, kind: Kind, text: str) -> None:
        """Publish ``text`` (already cleaned) from ``member`` in their room."""
        room = self.room_of(member)
        if self._muted(member, room.name, kind, text):
            return
        self._publish(member, room, kind, text)

    def private(self, member: Member, target: Member, text: str) -> None:
        """A message only ``member`` and ``target`` see, wherever they are."""
        if self._muted(member, "", Kind.PRIVATE, text, target.name):
            return
        draft = Draft("", Kind.PRIVATE, member.name, text, self.clock(), target.name, member.fingerprint)

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                member.outlet.notice(_NOT_SAVED)
                return
            if member.key not in target.prefs.ignores:  # ignored: silently not delivered
                target.last_pm_from = member.name
                target.outlet.deliver(result[0])
            if target is not member:
                member.outlet.deliver(result[0])
                if target.away:
                    member.outlet.notice(f"{target.name} is away: {target.away}")

        self.store.append([draft], committed)

    def _muted(self, member: Member, room: str, kind: Kind, text: str, recipient: str | None = None) -> bool:
        """If ``member`` is muted, show them their own line only and say so
        (the echo is made only then, not for every message)."""
        mute = self.moderation.mute_of(member.identity)
        if mute is None:
            return False
        now = self.clock()
        member.outlet.deliver(Message(0, room, kind, member.name, text, now, recipient))
        if now - member.muted_reminded >= _MUTED_REMINDER_EVERY:
            member.muted_reminded = now
            member.outlet.notice(f"you are muted{until_text(mute.until)}: nobody else sees your messages")
        return True

    def audit(self, member: Member, action: str, target: str, detail: str = "") -> None:
        """Keep a moderation action in the audit log (and the server log)."""
        entry = AuditEntry(self.clock(), member.name, member.fingerprint, action, target, detail)
        log.info("audit: %s %s %s %s", member.name, action, target, detail)
        self.store.save(Change("audit", entry))

    def _publish(
        self, member: Member, room: Room, kind: Kind, text: str,
        then: Callable[[str | None], None] | None = None,
    ) -> None:
        """Commit, then deliver: nobody sees what the store has not kept.

        ``then`` hears the outcome: None once delivered, or the error.
        """
        keep = kind in SPOKEN
        draft = Draft(room.name, kind, member.name, text, self.clock(), None, member.fingerprint, keep)

        def committed(result: list[Message] | Exception) -> None:
            if isinstance(result, Exception):
                member.outlet.notice(_NOT_SAVED)
                if then is not None:
                    then(_NOT_SAVED)
                return
            for msg in result:
                room.publish(msg, keep=keep)
            if then is not None:
                then(None)

        self.store.append([draft], committed)


_NOT_SAVED = "your message could not be saved (storage error), so nobody got it; please try again"
