"""Who is online: people by name, their look-alike shapes, renames, idleness,
and the join and leave notices (summed up in a storm).

A join or leave notice costs a write to every member of the room, so while
many people come and go at once (a restart, a login storm) they are summed
up in one line a second instead of one line per person.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable

from sshchat.chat.logged import event
from sshchat.chat.member import Member
from sshchat.chat.message import Kind
from sshchat.chat.moderation import Moderation
from sshchat.chat.names import InvalidName, check_name, name_key, skeleton
from sshchat.chat.pipeline import Pipeline
from sshchat.chat.prefs import Prefs
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room
from sshchat.chat.rooms import Rooms
from sshchat.chat.roster import Claim, Mirror, Roster
from sshchat.chat.settings import ChatSettings
from sshchat.chat.store import SetPrefs, Store

SUMMARY_NAMES = 5  # names a storm's summary lists before "and N others"

# Where people who left came from, for /ban NAME of someone just gone (their
# address is banned with their key): this many people, for this long, in
# memory only (never stored).
LAST_ADDRESSES = 10_000
LAST_ADDRESS_FOR = 86_400.0


def summed_up(names: list[str]) -> str:
    """The first SUMMARY_NAMES of ``names``, "and N others" for the rest:
    how a storm's summary names people (here, and the hub's for another
    node's people gone), written once so both read alike."""
    shown = ", ".join(names[:SUMMARY_NAMES])
    return f"{shown} and {len(names) - SUMMARY_NAMES} others" if len(names) > SUMMARY_NAMES else shown


class Presence:
    """The people online, by name key, and what follows from their coming and going."""

    def __init__(
        self,
        settings: ChatSettings,
        clock: Callable[[], float],
        store: Store,
        rooms: Rooms,
        pipeline: Pipeline,
        names: NameRegistry,
        moderation: Moderation,
        prefs: dict[str, str],
        roster: Roster,
        remote: Mirror,
        renamed: Callable[[Member], None],
        settled: Callable[[Member], None],
    ) -> None:
        """``roster``: claims names across a cluster's nodes; ``remote``: the
        people on the other nodes (they count as online); ``renamed``: told of
        every rename done; ``settled``: told when a /nick is done or refused
        (the lines ``member.held`` meanwhile are handled then)."""
        self._settings = settings
        self._clock = clock
        self._store = store
        self._rooms = rooms
        self._pipeline = pipeline
        self._names = names
        self._moderation = moderation
        self._prefs = dict(prefs)  # fingerprint -> view settings as JSON
        self._roster = roster
        self._remote = remote
        self._renamed = renamed
        self._settled = settled
        self.members: dict[str, Member] = {}
        self._shapes: dict[str, Member] = {}  # skeleton -> online member
        self.bots: dict[str, str] = {}  # skeleton -> name of a plugin's bot (chat/plugin_host.py)
        # Member.person -> their sessions online, by session number, in the
        # order they came: /ban, /mute, /ignore and /reply look people up by
        # key or session, and must not scan everyone online to do it.
        self._people: dict[str, dict[int, Member]] = {}
        self._last_address: OrderedDict[str, tuple[str, float]] = OrderedDict()  # identity -> (address, left at)

    # ------------------------------------------------------------- lookups

    def find(self, name: str) -> Member | None:
        """The online member called ``name`` (ignoring case), if any."""
        return self.members.get(name_key(name))

    def find_by_key(self, fingerprint: str) -> Member | None:
        """The online member with this key (the first to come, if several), if any."""
        return self.find_person(f"fingerprint:{fingerprint}")

    def find_person(self, person: str) -> Member | None:
        """The online member who is ``person`` (Member.person), if any."""
        sessions = self._people.get(person)
        return next(iter(sessions.values())) if sessions else None

    def sessions_of(self, person: str) -> list[Member]:
        """Every session online of ``person`` (a key may be online under several names)."""
        return list(self._people.get(person, {}).values())

    def last_address(self, identity: str) -> str | None:
        """The address the person with ``identity`` (Member.identity) came
        from when they last left, if they left recently (see LAST_ADDRESSES)."""
        found = self._last_address.get(identity)
        if found is None or self._clock() - found[1] > LAST_ADDRESS_FOR:
            return None
        return found[0]

    def is_here(self, member: Member) -> bool:
        """Is this session the one online under its name (not replaced, not gone)?"""
        return self.members.get(member.key) is member

    def lookalike(self, name: str, me: Member | None = None) -> str | None:
        """Refusal for a name that looks like someone else's online name."""
        shape = skeleton(name)
        bot = self.bots.get(shape)
        if bot is not None:  # a plugin's bot: nobody may speak under its name, or one like it
            return f'the name "{name}" is taken by the bot "{bot}" (a plugin); please pick another'
        # Here, or on another node (the mirror's index by skeleton: one
        # lookup, whatever the number online). Two nodes admitting two
        # look-alikes at the same instant both pass: the claim in Redis is
        # per name, not per shape.
        other = self._shapes.get(shape) or self._remote.shapes.get(shape)
        if other is None or other is me or other.key == name_key(name):
            return None
        return f'the name "{name}" looks too much like "{other.name}"; please pick another'

    # ------------------------------------------------- arriving and leaving

    def arrive(self, member: Member) -> None:
        """Make an admitted person present: online, in their rooms, their settings back."""
        if member.fingerprint and member.fingerprint in self._prefs:
            member.prefs = Prefs.from_json(self._prefs[member.fingerprint])
            member.prefs.set_ignores(self._by_person(member.prefs.ignores))
        self._rooms.seat(member)
        self.members[member.key] = member
        self._shapes[skeleton(member.name)] = member
        self._people.setdefault(member.person, {})[member.session] = member
        self.claim_name(member)

    def claim_name(self, member: Member, visitor: bool = False) -> None:
        """Register the name a person (or a bot ``visitor``) came with to
        their key, if it is to be.

        Refusing the login instead would shut everyone out while the disk is
        full, and everyone behind a busy address once it has registered its
        names for the hour: they keep the name for this session only, and
        are told why.
        """
        name = member.name

        def saved(ok: bool) -> None:
            if not ok and (visitor or self.members.get(member.key) is member):
                member.outlet.notice(
                    f'your name "{name}" was not registered to your key (storage error); '
                    "it is yours for this session only"
                )

        if self._names.would_register(name, member.fingerprint):
            refusal = self._names.address_refusal(member.address)
            if refusal is not None:
                member.outlet.notice(
                    f'your name "{name}" was not registered to your key, so it is yours for this session only: '
                    + refusal
                )
                return
        self._names.claim(name, member.fingerprint, saved, member.address)

    def _by_person(self, ignores: Iterable[str]) -> list[str]:
        """Ignores kept by an older version name a name: the key that owns
        it now is who was meant; a name no key owns meant nobody lasting."""
        people: dict[str, None] = {}
        for entry in ignores:
            if ":" not in entry:
                binding = self._names.binding(entry)
                if binding is None:
                    continue
                entry = f"fingerprint:{binding.fingerprint}"
            people[entry] = None
        return list(people)

    def announce_arrival(self, member: Member) -> None:
        for key in member.rooms:
            text = f"{member.name} joined ({len(self.members) + len(self._remote)} online)"
            self._announce(member, self._rooms.by_key[key], Kind.JOIN, text)

    def depart(self, member: Member, reason: str | None, quietly: bool = False) -> bool:
        """Take ``member`` offline; False if they were not (safe to call twice,
        or for a replaced session). The rooms hear it unless ``quietly``."""
        if not self.is_here(member):
            return False
        del self.members[member.key]
        if self._shapes.get(skeleton(member.name)) is member:
            del self._shapes[skeleton(member.name)]
        sessions = self._people.get(member.person)
        if sessions is not None:
            sessions.pop(member.session, None)
            if not sessions:
                del self._people[member.person]
        if member.address:
            self._last_address.pop(member.identity, None)
            self._last_address[member.identity] = (member.address, self._clock())
            if len(self._last_address) > LAST_ADDRESSES:
                self._last_address.popitem(last=False)
        rooms = self._rooms.unseat(member)
        if not quietly:
            text = f"{member.name} left" + (f" ({reason})" if reason else "")
            for room in rooms:
                self._announce(member, room, Kind.LEAVE, text)
        return True

    def clear(self) -> list[Member]:
        """Everyone offline at once, without a word (the server stops): out
        of the online list and out of every room, as ``depart`` does one by
        one (their rooms are remembered for next time)."""
        gone = list(self.members.values())
        for member in gone:
            self._rooms.unseat(member)
        self.members.clear()
        self._shapes.clear()
        self._people.clear()
        return gone

    def idle(self) -> list[Member]:
        """Mark idle people away; return those idle long enough to be sent away."""
        now = self._clock()
        away, kick = self._settings.idle_away, self._settings.idle_kick
        overdue = []
        for member in self.members.values():
            idle = now - member.last_active
            if kick and idle >= kick:
                overdue.append(member)
            elif away and idle >= away and member.away is None:
                member.away = "idle"
        return overdue

    # -------------------------------------------------------------- names

    def rename(self, member: Member, new_name: str) -> None:
        """/nick: a new name under the same rules as logging in."""
        try:
            check_name(new_name)
        except InvalidName as e:
            member.outlet.notice(str(e))
            return
        if new_name == member.name:
            member.outlet.notice(f"you are already {new_name}")
            return
        if self._pipeline.refused_while_muted(member, "change your name"):
            return
        other = self.find(new_name) or self._remote.find(new_name)
        if other is not None and other is not member:
            member.outlet.notice(f'the name "{other.name}" is already in use')
            return
        refusal = self._names.refusal(new_name, member.fingerprint) or self.lookalike(new_name, member)
        if refusal:
            member.outlet.notice(refusal)
            return
        if self._names.would_register(new_name, member.fingerprint):
            refusal = self._names.address_refusal(member.address)
            if refusal is not None:
                member.outlet.notice(f'the name "{new_name}" cannot be registered to your key: {refusal}')
                return
        old_name = member.name
        member.held = []  # what they type next waits until the new name is theirs, or refused

        def claimed(claim: Claim) -> None:
            # Across a cluster the name is claimed first (in one process, at once).
            if self.members.get(member.key) is not member or member.name != old_name:
                if not claim.refused:
                    self.let_go(new_name, member.fingerprint)
                self._settled(member)
                return
            # Redis says yes to a name this node holds already (its people's
            # names are this node's to keep apart): someone here may have
            # taken it while the claim was on its way (a login as that name).
            taken = self.find(new_name)
            if claim.error is not None:
                member.outlet.notice(f'the name "{new_name}" cannot be checked right now ({claim.error})')
            elif claim.refused or (taken is not None and taken is not member):
                member.outlet.notice(f'the name "{new_name}" is already in use')
            else:
                self._register(member, old_name, new_name)
                return
            self._settled(member)

        self._roster.claim(new_name, member.fingerprint, False, claimed)

    def let_go(self, name: str, fingerprint: str | None) -> None:
        """A claim of ``name`` that is not used (a /nick refused, a login
        refused or gone): released, unless someone here holds ``name`` (a
        claim is the node's: two keyless people's are one value in Redis, so
        a refused login's release would free the name of the one online)."""
        if self.find(name) is None:
            self._roster.release(name, fingerprint)

    def _register(self, member: Member, old_name: str, new_name: str) -> None:
        """The rest of /nick once the name is claimed: registered to the key
        if it is to be, then taken; either way ``settled`` is told."""

        def saved(ok: bool) -> None:
            try:
                self._saved(member, old_name, new_name, ok)
            finally:
                self._settled(member)

        if not self._names.claim(new_name, member.fingerprint, saved, member.address):
            self._take_name(member, new_name)  # nothing to register: at once
            self._settled(member)

    def _saved(self, member: Member, old_name: str, new_name: str, ok: bool) -> None:
        """A name the key registers is taken (held tentatively by the registry
        meanwhile) only once durable; gone or renamed meanwhile, there is
        nothing left to do."""
        if self.members.get(member.key) is not member or member.name != old_name:
            self.let_go(new_name, member.fingerprint)
            return
        if not ok:
            self.let_go(new_name, member.fingerprint)
            member.outlet.notice(
                f'the name "{new_name}" was not saved (storage error); nothing changed, you are still {old_name}'
            )
            return
        other = self.find(new_name)
        if other is not None and other is not member:  # the same key, logged in meanwhile
            member.outlet.notice(f'the name "{other.name}" is already in use')
            return
        self._take_name(member, new_name)

    def _take_name(self, member: Member, new_name: str) -> None:
        old_name, old_key = member.name, member.key
        del self.members[old_key]
        self._shapes.pop(skeleton(old_name), None)
        member.rename(new_name)
        self.members[member.key] = member
        self._shapes[skeleton(new_name)] = member
        self._rooms.rekey(member, old_key)
        if old_key != member.key:  # (a change of case keeps the same claim)
            self._roster.release(old_name, member.fingerprint)
        self._renamed(member)
        event(  # the log follows a person from login to logout under both names
            logging.INFO, "rename", f"{old_name} is now {new_name} ({member.address or '-'})",
            name=new_name, old_name=old_name, fingerprint=member.fingerprint, address=member.address or None,
        )
        member.outlet.prompt_changed()
        for key in member.rooms:
            self._pipeline.publish(
                member, self._rooms.by_key[key], Kind.SYSTEM, f"{old_name} is now known as {new_name}"
            )

    def save_prefs(self, member: Member) -> None:
        """Keep ``member``'s view settings, if they have a key to keep them under."""
        if member.fingerprint:
            data = member.prefs.to_json()
            self._prefs[member.fingerprint] = data
            self._store.save(SetPrefs(member.fingerprint, data))

    def adopt_prefs(self, fingerprint: str, data: str) -> None:
        """View settings another node saved (chat/state.py): this key's next
        login here starts with them."""
        self._prefs[fingerprint] = data

    # ------------------------------------------------ comings and goings

    def _announce(self, member: Member, room: Room, kind: Kind, text: str) -> None:
        """A join or leave notice: at once while they are few, summed up in a storm.

        Each notice at once is a write to every member, so rooms above 100
        members get fewer of them (notice_burst per 100 members, at least
        one per window); the rest wait for the summary line.
        """
        now = self._clock()
        recent = room.recent_notices
        while recent and recent[0] <= now - self._settings.notice_window:
            recent.popleft()
        burst = self._settings.notice_burst
        if len(room.members) > 100:
            burst = max(1, burst * 100 // len(room.members))
        if len(recent) < burst:
            recent.append(now)
            self._pipeline.publish(member, room, kind, text)
            return
        room.pending_notices.setdefault(kind, []).append(member.name)

    def tick(self) -> None:
        """Publish the summed-up comings and goings (called every second or so).

        A summary costs a write to every member of the room, so big rooms get
        them less often: every second up to 1000 members, then one second
        more per 1000. Rooms made without a key that have stayed empty long
        enough are removed here too.
        """
        self._rooms.expire()
        now = self._clock()
        for room in self._rooms:
            if not room.pending_notices:
                continue
            if now - room.last_summary < max(1.0, len(room.members) / 1000):
                continue
            room.last_summary = now
            pending, room.pending_notices = room.pending_notices, {}
            for kind, names in pending.items():
                verb = "joined" if kind is Kind.JOIN else "left"
                online = len(self.members) + len(self._remote)
                self._pipeline.announce(room, kind, f"{summed_up(names)} {verb} ({online} online)")
