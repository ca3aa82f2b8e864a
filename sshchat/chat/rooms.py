"""Which rooms exist, who belongs to which, and moving between them.

A server has at most ``max_rooms`` rooms; a person's rooms, and the one they
look at, are remembered by their identity across sessions and restarts.
Everyone belongs to at least the lobby.

A keyless person costs nothing to make anew, so rooms made without a key
must not be able to use up ``max_rooms`` for good: they are capped per
address (an IPv6 /64 counts as one, its /48 as ten), capped in all at a share
of ``max_rooms`` (the rest is kept for people with a key), and removed once
empty for ``keyless_room_ttl``. Rooms made with a key are kept until an
operator's /rmroom; a new key costs nothing either, so they are capped per
address too (``max_keyed_rooms_per_address``, larger), and the last
``room_reserve`` share of ``max_rooms`` goes one room per address, so a
person with a key from an address that has made none can still make one.
Where a room was made from is kept with it, so these caps hold across a
restart. Every count is kept up to date as rooms come and go: making a room
costs the same with ten rooms as with ten thousand.

Who belongs to which room is remembered with an index by room, so removing
a room costs what its own people cost, not what everyone ever remembered
does. A keyless person's rooms are remembered by a name anyone may use next,
and such names cost nothing to make: they are kept in memory only, for the
``KEYLESS_REMEMBERED`` keyless people seen last, never in the store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator

from sshchat.chat.addresses import NETWORK_SHARE, address_keys
from sshchat.chat.logged import event
from sshchat.chat.member import Member, identity
from sshchat.chat.message import Kind
from sshchat.chat.moderation import Moderation
from sshchat.chat.names import InvalidName, check_room, name_key
from sshchat.chat.pipeline import Pipeline
from sshchat.chat.room import Room, RoomInfo
from sshchat.chat.settings import ChatSettings
from sshchat.chat.store import DropRoom, SetMemberships, Snapshot, Store

LOBBY = "#lobby"
LOBBY_KEY = name_key(LOBBY)

Memberships = list[tuple[str, bool]]  # (room key, is the one looked at), in the order joined

# Keyless people ("name:..." identities) whose rooms are remembered for when
# they come back, the latest seen kept: enough to reconnect after a dropped
# line, bounded however many throwaway names come and go.
KEYLESS_REMEMBERED = 10_000


def _keyless(who: str) -> bool:
    """Is ``who`` (Member.identity) a keyless person's, remembered by name?"""
    return who.startswith("name:")


class Rooms:
    """Every room, by key; memberships; /join, /part, /topic and their rules."""

    def __init__(
        self,
        settings: ChatSettings,
        store: Store,
        clock: Callable[[], float],
        pipeline: Pipeline,
        moderation: Moderation,
        snapshot: Snapshot,
        elsewhere_in: Callable[[str], int] = lambda room_key: 0,
    ) -> None:
        """``elsewhere_in``: how many people of a room are on the other nodes
        of a cluster (a join says how many are in the room, on every node)."""
        self._settings = settings
        self._elsewhere_in = elsewhere_in
        self._store = store
        self._clock = clock
        self._pipeline = pipeline
        self._moderation = moderation
        self.by_key: dict[str, Room] = {}
        # Counts the limits on making rooms read (see _count):
        self._made_by: Counter[str] = Counter()  # creator's identity -> rooms
        self._made_at: Counter[str] = Counter()  # address key -> rooms made from it
        self._keyless_made_at: Counter[str] = Counter()  # address key -> rooms made there without a key
        self._keyless = 0  # rooms made without a key, in all
        for info in [RoomInfo(LOBBY), *snapshot.rooms]:
            self.by_key[info.key] = Room(info, settings.history_in_memory)
            self._count(info, 1)
        for room_name, messages in snapshot.recent.items():
            room = self.by_key.get(name_key(room_name))
            if room is not None:
                room.history.extend(messages)
        self._memberships: dict[str, Memberships] = {}  # identity -> their rooms
        self._remembered_in: dict[str, set[str]] = {}  # room key -> identities remembering it (not the lobby)
        self._keyless_seen: OrderedDict[str, None] = OrderedDict()  # keyless identities remembered, oldest first
        for who, rooms in snapshot.memberships.items():
            if not _keyless(who):  # kept by an older version: not worth keeping by name
                self._keep(who, [(k, cur) for k, cur in rooms if k in self.by_key])
        self._empty_since: dict[str, float] = {}  # keyless-made room key -> when last seen empty

    # ------------------------------------------------------------- lookups

    @property
    def lobby(self) -> Room:
        return self.by_key[LOBBY_KEY]

    def get(self, name: str) -> Room | None:
        """The room called ``name`` (ignoring case), if there is one."""
        return self.by_key.get(name_key(name))

    def of(self, member: Member) -> Room:
        """The room ``member`` is looking at (where what they type goes)."""
        return self.by_key[member.room]

    def __iter__(self) -> Iterator[Room]:
        return iter(self.by_key.values())

    # ------------------------------------------------- arriving and leaving

    def seat(self, member: Member) -> None:
        """Put a person who logs in back in the rooms they belonged to."""
        remembered = self._memberships.get(member.identity) or [(LOBBY_KEY, True)]
        member.rooms = [key for key, _ in remembered]
        member.room = next((key for key, current in remembered if current), member.rooms[0])
        for key in member.rooms:
            self.by_key[key].add(member)

    def unseat(self, member: Member) -> list[Room]:
        """Take a person who leaves out of their rooms (remembered for next time)."""
        rooms = [self.by_key[key] for key in member.rooms]
        for room in rooms:
            room.remove(member)
        return rooms

    def rekey(self, member: Member, old_key: str) -> None:
        """Keep a renamed member in place in each of their rooms."""
        for key in member.rooms:
            self.by_key[key].rekey(old_key, member)

    def follow(self, room: Room, visitor: Member) -> None:
        """A bot's ``tail --follow``: it hears the room without being in it."""
        room.listeners.append(visitor)

    def unfollow(self, room: Room, visitor: Member) -> None:
        if visitor in room.listeners:
            room.listeners.remove(visitor)

    def followers(self) -> list[Member]:
        """Every bot following a room."""
        return [visitor for room in self for visitor in room.listeners]

    def close_followers(self, reason: str) -> None:
        for room in self:
            for visitor in list(room.listeners):
                visitor.outlet.close(reason)
            room.listeners.clear()

    # ------------------------------------------------------ moving around

    def enter(self, member: Member, room_name: str) -> None:
        """/join: switch to a room, making it (and joining it) if needed."""
        try:
            check_room(room_name)
        except InvalidName as e:
            member.outlet.notice(str(e))
            return
        key = name_key(room_name)
        if key not in member.rooms and len(member.rooms) >= self._settings.max_rooms_joined:
            member.outlet.notice(
                f"you are in {len(member.rooms)} rooms, the most one person may be in; /part one of them first"
            )
            return
        room = self.by_key.get(key)
        if room is None:
            refusal = self._room_limit(member)
            if refusal:
                member.outlet.notice(refusal)
                return
            host, site = address_keys(member.address)
            info = RoomInfo(room_name, "", member.name, member.fingerprint, self._clock(), host, site)
            room = self.by_key[key] = Room(info, self._settings.history_in_memory)
            self._count(info, 1)
            self._store.save(info)
            event(logging.INFO, "room_created", f"{member.name} created {room_name}",
                  name=member.name, fingerprint=member.fingerprint, address=member.address or None, room=room_name)
        if self.closed_to(member, room):
            return
        if key == member.room:
            member.outlet.notice(f"you are already in {room.name}")
            return
        joined = key not in member.rooms
        if joined:
            member.rooms.append(key)
            room.add(member)
        self._look_at(member, room)
        if joined:
            self._pipeline.publish(
                member, room, Kind.JOIN, f"{member.name} joined {room.name} ({self.count_in(room)} here)"
            )

    def _count(self, info: RoomInfo, step: int) -> None:
        """Count a room made (``step`` 1) or gone (-1) in the limits' counters."""
        if info.key == LOBBY_KEY:
            return
        self._made_by[identity(info.creator_fp, name_key(info.creator))] += step
        keyless = info.creator_fp is None
        self._keyless += step if keyless else 0
        for where in (info.made_from, info.made_from_site):
            if where:
                self._made_at[where] += step
                if keyless:
                    self._keyless_made_at[where] += step

    def _room_limit(self, member: Member) -> str | None:
        """Why ``member`` may not create another room."""
        s = self._settings
        if len(self.by_key) >= s.max_rooms:
            return f"the server has its limit of {s.max_rooms} rooms; join one of them (/rooms)"
        refusal = self._keyless_limit(member) if member.fingerprint is None else self._keyed_limit(member)
        if refusal:
            return refusal
        made = self._made_by[member.identity]
        if made >= s.max_rooms_per_person:
            return f"you have created {made} rooms, the most one person may"
        return None

    def _keyed_limit(self, member: Member) -> str | None:
        """Why ``member``, with a key, may not create a room: their address
        has made its share (a fresh key per room gains nothing), or the
        server's last rooms are kept for addresses that have made none."""
        s = self._settings
        host, site = address_keys(member.address)
        here, on_site = self._made_at[host], self._made_at[site] if site else 0
        keyed = here - self._keyless_made_at[host]  # keyless rooms have their own cap
        keyed_on_site = on_site - (self._keyless_made_at[site] if site else 0)
        cap = s.max_keyed_rooms_per_address
        if keyed >= cap or keyed_on_site >= cap * NETWORK_SHARE:
            return (
                f"{keyed} rooms were created with keys from your address, the most one address may; "
                "join one of them (/rooms)"
            )
        reserve = int(s.max_rooms * s.room_reserve)
        if len(self.by_key) >= s.max_rooms - reserve and (here >= 1 or on_site >= NETWORK_SHARE):
            return (
                f"the server is near its limit of {s.max_rooms} rooms, and the last {reserve} are kept "
                "for people whose address has created none; join one of them (/rooms)"
            )
        return None

    def _keyless_limit(self, member: Member) -> str | None:
        """Why a keyless ``member`` may not create a room: their address has
        made its share, or keyless people have made theirs of the server's."""
        s = self._settings
        host, site = address_keys(member.address)  # an IPv6 /64, and the /48 around it
        here = self._keyless_made_at[host]
        on_site = self._keyless_made_at[site] if site else 0
        if here >= s.max_rooms_per_address or on_site >= s.max_rooms_per_address * NETWORK_SHARE:
            return (
                f"people without a key from your address have {here} rooms, the most one address may; "
                "connect with an SSH key to create more"
            )
        share = int(s.max_rooms * s.keyless_room_share)
        if self._keyless >= share:
            return (
                f"rooms made without a key are at their limit of {share}; "
                "join one of them (/rooms), or connect with an SSH key to create one"
            )
        return None

    # ----------------------------------------------- removing rooms

    def remove(self, room: Room, notice: str, then: Callable[[bool], None] | None = None) -> None:
        """Remove ``room`` for good: its people are moved to the lobby and told
        ``notice``; it is gone from everyone's remembered rooms, and its
        history is dropped from the store (a room made again starts empty).

        The store drops it first; only once that is durable does anyone see
        it go (``then`` hears True). If it could not, nothing changes (False).
        Meanwhile it is closing: nothing more is kept for it (see
        ``closed_to``), as what the store kept after the drop would outlive it.
        """

        def saved(error: Exception | None) -> None:
            ok = error is None and self.by_key.get(room.key) is room
            if ok:
                self._drop(room, notice)
            else:
                room.closing = False
            if then is not None:
                then(ok)

        room.closing = True
        self._store.save(DropRoom(room.key, room.name), saved)

    def _drop(self, room: Room, notice: str) -> None:
        key = room.key
        for member in list(room.members.values()):
            member.outlet.notice(notice)
            member.rooms.remove(key)
            member.unread.pop(key, None)
            if LOBBY_KEY not in member.rooms:
                member.rooms.insert(0, LOBBY_KEY)
                self.lobby.add(member)
            if member.room == key:
                self._look_at(member, self.lobby)
            else:
                self._remember(member)
        room.members.clear()
        for visitor in room.listeners:
            visitor.outlet.close(notice)
        room.listeners.clear()
        for who in self._remembered_in.pop(key, ()):  # only those who belonged to it
            kept = [(k, cur) for k, cur in self._memberships[who] if k != key]
            if not any(cur for _, cur in kept):
                kept = [(k, k == LOBBY_KEY) for k, _ in kept] or [(LOBBY_KEY, True)]
            self._memberships[who] = kept  # (the store's DropRoom drops its rows)
        del self.by_key[key]
        self._count(room.info, -1)
        self._empty_since.pop(key, None)

    def expire(self) -> list[Room]:
        """Remove rooms made without a key that have been empty (nobody in
        them online, no bot following, nothing said) for ``keyless_room_ttl``.
        Called from the hub's periodic tick; returns what was removed.

        Nothing said counts because in a cluster this node sees only its own
        people: a room whose people are all on another node is still heard
        here (and a node with people in it keeps a room another removed:
        ``drop_here``)."""
        now, ttl = self._clock(), self._settings.keyless_room_ttl
        gone = []
        for room in list(self):
            if room.info.creator_fp is not None or room.key == LOBBY_KEY:
                continue
            if room.members or room.listeners or (room.history and now - room.history[-1].time < ttl):
                # in use here, or said in lately (in a cluster, by people on another node)
                self._empty_since.pop(room.key, None)
                continue
            since = self._empty_since.setdefault(room.key, now)
            if now - since >= ttl:
                empty = f"{room.name} expired: made without a key, empty for {now - since:.0f} s"
                event(logging.INFO, "room_expired", empty, room=room.name)
                # Empty and nobody's doing: gone now, the store told behind.
                room.closing = True
                self._drop(room, f"{room.name} was removed")
                self._store.save(DropRoom(room.key, room.name, expired=True))
                gone.append(room)
        return gone

    # ------------------------------------------- another node's changes

    def adopt(self, info: RoomInfo) -> None:
        """A room another node made, or whose topic it set (chat/state.py):
        made here too, or its topic taken; in memory only."""
        room = self.by_key.get(info.key)
        if room is None:
            info = dataclasses.replace(info)  # (never the sender's own record)
            self.by_key[info.key] = Room(info, self._settings.history_in_memory)
            self._count(info, 1)
        else:
            room.info.topic = info.topic

    def drop_here(self, change: DropRoom) -> bool:
        """A room another node removed: removed here too, its people here
        moved to the lobby. An expired room (empty on that node) that has
        people or followers here is kept, and saved again: it is not empty.
        False if there was nothing to remove."""
        room = self.by_key.get(change.name_key)
        if room is None or room.key == LOBBY_KEY:
            return False
        if change.expired and (room.members or room.listeners):
            self._empty_since.pop(room.key, None)
            self._store.save(room.info)  # still in use here: kept (its history went with the drop)
            return False
        self._drop(room, f"{room.name} was removed; you are in {LOBBY}")
        return True

    def remember_elsewhere(self, who: str, rooms: tuple[tuple[str, bool], ...]) -> None:
        """Someone's rooms as another node saved them: where their next login
        here seats them (a session of theirs online here is not moved).
        Kept through ``_keep``, with the index by room, as this node's own
        are: a room removed later is then taken out of them too, where a
        login here would otherwise be seated in a room that is gone."""
        kept = [(k, cur) for k, cur in rooms if k in self.by_key]
        if kept:
            self._keep(who, kept)
        else:
            self._forget(who)

    def part(self, member: Member, room_name: str | None) -> None:
        """/part: leave a room (the current one by default)."""
        key = member.room if room_name is None else name_key(room_name)
        if key not in member.rooms:
            member.outlet.notice(f"you are not in {room_name}")
            return
        if member.rooms == [LOBBY_KEY]:
            member.outlet.notice(f"{LOBBY} is the last room you are in; /quit leaves the chat")
            return
        self._drop_from(member, self.by_key[key], f"{member.name} left {self.by_key[key].name}")

    def _drop_from(self, member: Member, room: Room, notice: str) -> None:
        """Take ``member`` out of ``room``; the last room returns them to the lobby."""
        member.rooms.remove(room.key)
        member.unread.pop(room.key, None)
        room.remove(member)
        self._pipeline.publish(member, room, Kind.LEAVE, notice)
        if not member.rooms:
            member.rooms.append(LOBBY_KEY)
            self.lobby.add(member)
        if member.room == room.key:
            self._look_at(member, self.by_key[member.rooms[-1]])
        else:
            self._remember(member)

    def count_in(self, room: Room) -> int:
        """How many people are in ``room``: here, and on the other nodes."""
        return len(room.members) + self._elsewhere_in(room.key)

    def _look_at(self, member: Member, room: Room) -> None:
        """Make ``room`` the one ``member`` sees and types into; catch them up."""
        member.room = room.key
        self._remember(member)
        member.outlet.prompt_changed()
        unread = member.unread.pop(room.key, 0)
        topic = f"; topic: {room.info.topic}" if room.info.topic else ""
        member.outlet.notice(f"now in {room.name} ({self.count_in(room)} here{topic})")
        if unread:
            member.outlet.notice(f"{unread} new messages since you last looked")
        count = min(max(self._settings.history_on_join, unread), self._settings.history_per_call)
        for msg in room.recent(count):
            member.outlet.deliver(msg)

    def _remember(self, member: Member) -> None:
        """Keep ``member``'s rooms (and which one they look at) for next time."""
        rooms = [(key, key == member.room) for key in member.rooms]
        self._keep(member.identity, rooms)
        if member.fingerprint is not None:  # a keyless person's: in memory only
            self._store.save(SetMemberships(member.identity, tuple(rooms)))

    def _keep(self, who: str, rooms: Memberships) -> None:
        """Remember ``rooms`` for ``who``, with the index by room; the
        oldest keyless person is forgotten past KEYLESS_REMEMBERED.

        Only the rooms joined or left since last time are indexed or
        unindexed (set differences, C loops): every /join and every switch
        between rooms comes here, and rebuilding the index of a person in
        1000 rooms cost ~2 ms each."""
        before = dict(self._memberships.get(who, ())).keys()
        now = dict(rooms).keys()
        self._memberships[who] = rooms
        self._unindex(who, before - now)
        for key in now - before:
            if key != LOBBY_KEY:
                self._remembered_in.setdefault(key, set()).add(who)
        if _keyless(who):
            self._keyless_seen.pop(who, None)
            self._keyless_seen[who] = None  # the latest seen
            if len(self._keyless_seen) > KEYLESS_REMEMBERED:
                self._forget(next(iter(self._keyless_seen)))

    def _forget(self, who: str) -> None:
        """Forget ``who``'s rooms (they come back to the lobby)."""
        self._unindex(who, [key for key, _ in self._memberships.pop(who, ())])
        self._keyless_seen.pop(who, None)

    def _unindex(self, who: str, keys: Iterable[str]) -> None:
        """Take ``who`` out of the index of the rooms ``keys``."""
        for key in keys:
            people = self._remembered_in.get(key)
            if people is not None:
                people.discard(who)
                if not people:
                    del self._remembered_in[key]

    # ------------------------------------------------------- room's rules

    @staticmethod
    def closed_to(member: Member, room: Room, what: str = "") -> bool:
        """True if ``room`` is being removed, and then ``member`` is told that
        ``what`` (e.g. "your message was not sent") came to nothing."""
        if not room.closing:
            return False
        member.outlet.notice(f"{room.name} is being removed; {what or 'join another room (/rooms)'}")
        return True

    def may_manage(self, member: Member, room: Room) -> bool:
        """Operators, and the keyed creator of ``room``."""
        creator = room.info.creator_fp
        return self._moderation.is_op(member.fingerprint) or (creator is not None and creator == member.fingerprint)

    def set_topic(self, member: Member, text: str | None) -> None:
        """/topic: show it (None), or set it to ``text`` (as typed): the
        room's creator (by key) or an operator, and not while muted."""
        room = self.of(member)
        if text is not None and self.closed_to(member, room, "the topic was not set"):
            return  # (kept after the drop, it would bring the room back at a restart)
        if text is not None and not self.may_manage(member, room):
            member.outlet.notice(f"only {room.name}'s creator or an operator can set its topic")
            return
        if text is not None:
            text = self._pipeline.on_behalf(member, text, "set the topic")
            if text is None:
                return
        if not text:  # nothing asked, or nothing left once cleaned: show it
            member.outlet.notice(f"{room.name}: {room.info.topic or 'no topic'}")
            return
        topic = text

        def saved(error: Exception | None) -> None:
            # Set, and announced, only once durable; the room may have been
            # removed meanwhile, and then there is nothing left to set.
            if error is not None:
                member.outlet.notice("the topic was not saved (storage error); nothing changed")
            elif self.by_key.get(room.key) is room:
                room.info.topic = topic
                # the room's management (an operator's, or its creator's), logged and kept as a kick from it is
                self._moderation.audit(member.name, member.fingerprint, "topic", room.name, topic, room=room.name)
                self._pipeline.publish(member, room, Kind.SYSTEM, f"{member.name} set the topic: {topic}")

        self._store.save(dataclasses.replace(room.info, topic=topic), saved)

    def remove_from_room(self, member: Member, target: Member, reason: str) -> None:
        """A room creator's /kick: out of the room ``member`` looks at, only.
        ``reason`` (as typed) is read by the room: not while muted."""
        room = self.of(member)
        if room.key not in target.rooms:
            member.outlet.notice(f"{target.name} is not in {room.name}")
            return
        checked = self._pipeline.on_behalf(member, reason, "give a reason for a kick")
        if checked is None:
            return
        reason = checked
        self._moderation.audit(
            member.name, member.fingerprint, "kick", f"{target.name} from {room.name}", reason,
            room=room.name, reason=reason or None, target_fingerprint=target.fingerprint,
        )
        suffix = f": {reason}" if reason else ""
        self._drop_from(target, room, f"{target.name} was removed from {room.name} by {member.name}{suffix}")
        target.outlet.notice(f"you were removed from {room.name} by {member.name}{suffix}")
