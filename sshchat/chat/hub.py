"""The hub: the chat as a transport sees it, wiring the parts that do the work.

``join`` a person with an outlet, feed their lines to ``handle_line``,
``leave`` when they go; a bot is a ``visitor`` that may ``post``. No I/O
happens here: outlets only queue, and the store commits on its own thread
and calls back, so every call returns at once.

The parts, each in its module:

    admission   who may enter (checks, refusals, address blocks)
    presence    who is online; renames, idleness, join and leave notices
    rooms       which rooms exist, who is in which, /join, /part, /topic
    pipeline    the one path of every message: rate limit, cleaning,
                length, mute, commit, publish on the bus
    bus         (chat/bus.py) carries what was committed to ``receive``,
                here and, in a cluster, on every node; ``receive`` delivers
    operations  what commands may do (commands/ reach nothing else)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sshchat.chat.admission import Admission, JoinRefused
from sshchat.chat.bus import (
    Arrived,
    Blocked,
    Bus,
    Charged,
    Departed,
    Event,
    Hello,
    Kick,
    Offended,
    Private,
    Registered,
    RoomLine,
    StateChanged,
)
from sshchat.chat.commands import BUILT_IN, CommandTable, dispatch
from sshchat.chat.logged import event as log_event
from sshchat.chat.member import Member, Outlet, identity
from sshchat.chat.message import Kind, Message
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.names import name_key
from sshchat.chat.operations import Operations
from sshchat.chat.outside import OutsideChanges
from sshchat.chat.pipeline import Pipeline, Then
from sshchat.chat.plugin_host import PluginHost
from sshchat.chat.presence import Presence, summed_up
from sshchat.chat.ratelimit import Offences
from sshchat.chat.refusals import Reason, Refusal
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room
from sshchat.chat.rooms import LOBBY, LOBBY_KEY, Rooms
from sshchat.chat.roster import IDLE_STEP, Claim, LocalRoster, Mirror, Roster
from sshchat.chat.settings import ChatSettings
from sshchat.chat.state import SharingStore, StateApplier
from sshchat.chat.store import Store
from sshchat.chat.telemetry import ChatCounts

__all__ = ["LOBBY", "LOBBY_KEY", "Hub", "JoinRefused"]

log = logging.getLogger("sshchat")

# Lines kept while a person's /nick is being saved (a paste); more are refused
# with a notice, so a client cannot grow the list without bound.
HELD_LINES = 100

# The logout reason of a session replaced by a new login of the same name and key.
REPLACED = "logged in from elsewhere"
# ...and of everyone online when the server stops.
SHUT_DOWN = "server shutting down"

# A person another node tells of, connected less than this many seconds ago,
# has just arrived (an arrival of their address); one connected earlier is an
# old arrival retold (to a node that said Hello), not counted again.
ARRIVAL_FRESH = 10.0


class Hub:
    """Online members, the rooms, the rules, and the routing of input."""

    def __init__(
        self,
        store: Store,
        settings: ChatSettings,
        clock: Callable[[], float] = time.time,
        *,
        admins: Iterable[str] = (),
        allowlist: Iterable[str] | None = None,
        motd: str | None = None,
        bus: Bus | None = None,
        roster: Roster | None = None,
        plugins: PluginHost | None = None,
    ) -> None:
        """``bus``: how committed messages reach ``receive`` (None: directly,
        as the in-process bus does). On a bus to other processes, every
        change saved is published once durable (chat/state.py). ``roster``:
        names and people across the nodes of a cluster (None: this process
        is the whole chat). ``plugins``: the enabled plugins (None: none; then
        nothing of the plugin host is on any path)."""
        self.settings = s = settings
        self.clock = clock
        if bus is not None and bus.crosses_processes:
            store = SharingStore(store, bus.publish)
        self._store = store
        snapshot = store.load(s.history_in_memory)
        if bus is not None:  # before anything is saved: a change is published once durable
            bus.attach(self.receive, snapshot.last_ids, self.elsewhere)
        self.names = NameRegistry(snapshot.bindings, store, clock, s.names_per_key, s.names_per_address_per_hour)
        self.moderation = Moderation(snapshot, store, clock, admins, allowlist, motd)
        self.offences = Offences(s.offence_threshold, s.offence_window, s.offence_block, clock)
        # On a bus to other processes, what every node must count is told to
        # the others (``elsewhere`` counts theirs here): blocks, offences,
        # names registered per address, keyless mutes, commands' rate.
        self._sharing = sharing = bus is not None and bus.crosses_processes
        if sharing:
            assert bus is not None
            tell = bus.publish
            self.offences.on_block = lambda key, until: tell(Blocked(key, until))
            self.offences.on_offence = lambda address: tell(Offended(address))
            self.names.on_register = lambda address: tell(Registered(address))
            self.moderation.share = lambda change: tell(StateChanged(change))
        publish = self.receive if bus is None else bus.publish  # read after attach: the local bus's is receive
        self._publish = publish
        self.roster = roster = roster or LocalRoster()
        self.node = roster.node
        self._cluster = roster.cluster
        self.remote = Mirror()  # people on the other nodes
        # Hears the address of each person who just logged in on another node
        # (the transport spends one of that address's arrivals here too).
        self.on_arrival_elsewhere: Callable[[str], None] | None = None
        # session -> (state published, last_active published): tick() tells
        # the other nodes what changed since
        self._shown: dict[int, tuple[tuple[str, str, tuple[str, ...], str | None], float]] = {}
        self._seq = 0  # this node's presence changes published (Arrived and Departed carry it)
        self._quiet: set[str] = set()  # name keys whose login replaces a session on another node
        # what --metrics reads: messages accepted, logins refused (plain ints, see telemetry.py)
        self.counts = ChatCounts()
        self._pipeline = Pipeline(
            s, store, self.moderation, self.offences, clock, self.disconnect, publish, counts=self.counts
        )
        self._rooms = Rooms(s, store, clock, self._pipeline, self.moderation, snapshot, self.remote.count_in)
        self._presence = Presence(
            s, clock, store, self._rooms, self._pipeline, self.names, self.moderation, snapshot.prefs,
            roster, self.remote, self._changed, self._settled,
        )
        self._admission = Admission(self.moderation, self.names, self._presence, self.offences, self.counts)
        self._operations = Operations(
            s, clock, store, self._pipeline, self._rooms, self._presence, self.names, self.moderation, self.disconnect,
            self.remote,
        )
        self.plugins = plugins
        self.commands: CommandTable = BUILT_IN if plugins is None else plugins.commands
        self._operations.commands = self.commands
        if plugins is not None:
            plugins.attach(self._pipeline, self.find, self.room, self._presence.bots, settings)
            for bot in plugins.bot_names.values():  # a person's registered name is now a bot's: say so once
                owned = self.names.binding(bot) or self.names.lookalike(bot)
                if owned is not None:
                    log.warning('the name "%s" (registered to a key) is taken by a plugin\'s bot: '
                                "its owner can no longer log in under it", owned.name)
        self._state = StateApplier(clock, self.moderation, self.names, self._rooms, self._presence, self._operations)
        # what sshchat admin changed in the store beside this server, polled on the clockwork
        self._outside = OutsideChanges(store, self.moderation, self._state.apply, clock, snapshot.outside_serial)
        self.closing = False
        self._room_keys: dict[str, str] = {}  # room name -> its key: NFKC once per name, not per message
        self._by_key = self._rooms.by_key  # (the one dict, changed in place: an attribute less per message)
        roster.attach(self)

    # ------------------------------------------------------------- lookups

    @property
    def members(self) -> dict[str, Member]:
        """Everyone online, by name key (read it; the hub changes it)."""
        return self._presence.members

    @property
    def rooms(self) -> dict[str, Room]:
        """Every room, by key (read it; the hub changes it)."""
        return self._rooms.by_key

    @property
    def lobby(self) -> Room:
        return self._rooms.lobby

    def find(self, name: str) -> Member | None:
        """The online member called ``name`` (ignoring case), if any: here,
        or on another node of a cluster (``Member.node`` set)."""
        return self._presence.find(name) or self.remote.find(name)

    def people_in(self, room: Room) -> list[Member]:
        """Everyone in ``room``: here, and on the other nodes of a cluster."""
        return [*room.members.values(), *self.remote.in_room(room.key)] if self.remote else list(room.members.values())

    def people_elsewhere(self, address_key: str) -> int:
        """How many people from ``address_key`` (chat/addresses.py: an address,
        an IPv6 /64 or /48) are online on the other nodes: a dict lookup, what
        lets the transport count connections per address across the cluster."""
        return self.remote.by_address.get(address_key, 0)

    def online(self) -> int:
        """How many people are online, on every node."""
        return len(self._presence.members) + len(self.remote)

    def room(self, name: str) -> Room | None:
        """The room called ``name`` (ignoring case), if any."""
        return self._rooms.get(name)

    def room_of(self, member: Member) -> Room:
        """The room ``member`` is looking at (where what they type goes)."""
        return self._rooms.of(member)

    def is_op(self, member: Member) -> bool:
        return self.moderation.is_op(member.fingerprint)

    def history(self, room: Room, count: int, show: Callable[[list[Message]], None]) -> None:
        """The last ``count`` messages of ``room`` from the store, to ``show``."""
        self._store.history(room.name, None, count, show)

    # ------------------------------------------------- arriving and leaving

    def screen_address(self, address: str) -> str | None:
        """Why a connection from ``address`` is turned away at once, if it is.

        Lets the transport refuse blocked addresses before the costly part
        of the SSH handshake.
        """
        return self._admission.screen_address(address)

    def claim(self, name: str, fingerprint: str | None, then: Callable[[str | None], None]) -> None:
        """Claim ``name`` across the cluster before ``join``: ``then`` hears
        None (claimed) or the refusal to show. In one process it answers at
        once, on this stack (the hub's own checks in ``join`` are the claim).

        A claim held on another node by the same key is taken over, and that
        node is told to end the old session, as one node does in ``join``.
        """
        if not self._cluster:
            then(None)
            return

        def claimed(claim: Claim) -> None:
            refusal: Reason | None = None
            if claim.error is not None:
                refusal = Reason(
                    Refusal.UNAVAILABLE, f"your name cannot be checked right now ({claim.error}); try again shortly"
                )
            elif claim.taken:
                refusal = Reason(
                    Refusal.NAME_TAKEN,
                    f'the name "{name}" is already in use; connect with another name: ssh OTHERNAME@host',
                )
            if refusal is not None:
                self.counts.refuse(refusal)
                then(refusal)
                return
            if claim.displaced is not None:
                key = name_key(name)
                self._quiet.add(key)
                self._publish(Kick(claim.displaced, key, f"fingerprint:{fingerprint}", None,
                                   "you logged in from elsewhere"))
                old = self.remote.by_key.get(key)
                if old is not None and old.node == claim.displaced:
                    self.remote.remove(old.node, old.session)
            then(None)

        self.roster.claim(name, fingerprint, True, claimed)

    def unclaim(self, name: str, fingerprint: str | None) -> None:
        """A claimed name that ``join`` refused after all, or that nobody came for."""
        self._quiet.discard(name_key(name))
        self._presence.let_go(name, fingerprint)

    def join(self, name: str, fingerprint: str | None, outlet: Outlet, address: str = "") -> Member:
        """Admit a person, or raise JoinRefused with the reason to show them.

        The same name with the same key replaces the old session (a dropped
        connection must never leave a ghost that holds the name). Refusals
        count as offences of the address: many in a row earn it a block.
        """
        if self.closing:
            refusal = Reason(Refusal.SHUTTING_DOWN, "the server is shutting down; try again shortly")
            self.counts.refuse(refusal)
            raise JoinRefused(refusal)
        old = self._admission.person(name, fingerprint, address)
        if old is not None:
            self._presence.depart(old, None, quietly=True)
            self._logged_out(old, REPLACED)
            old.outlet.close("you logged in from elsewhere")
            self._departed(old, release=False)
        member = self._new_member(name, fingerprint, outlet, address)
        self._presence.arrive(member)
        self._welcome(member)
        replaced_elsewhere = self._cluster and member.key in self._quiet
        if replaced_elsewhere:
            self._quiet.discard(member.key)
        if old is None and not replaced_elsewhere:
            self._presence.announce_arrival(member)
        if self._cluster:
            self._tell(member)
        if self.plugins is not None:
            self.plugins.joined(member, self.room_of(member).name)
        return member

    def _new_member(self, name: str, fingerprint: str | None, outlet: Outlet, address: str) -> Member:
        now = self.clock()
        bucket = self._pipeline.bucket(identity(fingerprint, name_key(name)))
        return Member(name, fingerprint, outlet, bucket, address, connected_at=now, last_active=now)

    def _welcome(self, member: Member) -> None:
        """The welcome, the MOTD, the room's topic and recent history, and
        a mute still in force."""
        outlet, room = member.outlet, self.room_of(member)
        outlet.notice(
            f"Welcome to {self.settings.server_name}, {member.name}! "
            f"{self.online()} online. Type /help for commands."
        )
        for line in (self.moderation.motd or "").splitlines():
            outlet.notice(line)
        if room.info.topic:
            outlet.notice(f"{room.name}: {room.info.topic}")
        for msg in room.recent(self.settings.history_on_join):
            outlet.deliver(msg)
        mute = self.moderation.mute_for(member.person, member.address)
        if mute is not None:  # a mute outlives a reconnection (keyless: by address): say so at once
            member.muted_reminded = self.clock()
            outlet.notice(f"you are muted{until_text(mute.until)}: nobody else sees your messages")

    def visitor(self, name: str, fingerprint: str | None, outlet: Outlet, address: str = "") -> Member:
        """Admit a one-command bot session (say, tail, who) without joining it.

        The same rules as for people apply, and the same rate limit (it is
        kept per identity, so a new connection per message gains nothing).
        A name in use online may be used only with the same key. Its name
        is registered to its key as a person's is; if it could not be, the
        bot is told (on stderr) and goes on.
        """
        self._admission.visitor(name, fingerprint, address)
        elsewhere = self.remote.find(name)
        if elsewhere is not None and (fingerprint is None or elsewhere.fingerprint != fingerprint):
            self.offences.record(address)
            refusal = Reason(Refusal.NAME_TAKEN, f'the name "{elsewhere.name}" is in use by someone online')
            self.counts.refuse(refusal)
            raise JoinRefused(refusal)
        visitor = self._new_member(name, fingerprint, outlet, address)
        self._presence.claim_name(visitor, visitor=True)  # a name not kept is told, as to people
        return visitor

    def leave(self, member: Member, reason: str | None = None) -> None:
        """Remove a member (safe to call twice, or for a replaced session)."""
        room = self._by_key.get(member.room) if self.plugins is not None else None
        if self._presence.depart(member, reason, quietly=self.closing):
            self._logged_out(member, reason)
            self._departed(member)
            if self.plugins is not None and not self.closing:
                self.plugins.left(member, room.name if room is not None else "")

    def _logged_out(self, member: Member, reason: str | None) -> None:
        """The server log's line for a person gone (event ``logout``)."""
        why = reason or "quit"
        log_event(
            logging.INFO, "logout", f"{member.name} left from {member.address or '-'} ({why})",
            name=member.name, fingerprint=member.fingerprint, address=member.address or None, reason=why,
            seconds=round(self.clock() - member.connected_at, 3),
        )

    def disconnect(self, member: Member, reason: str, goodbye: str) -> None:
        """Send someone away: the room hears ``reason``, they read ``goodbye``.
        Someone on another node: their node is asked to (a Kick on the bus)."""
        if member.node:
            self._publish(Kick(member.node, member.key, member.person, reason, goodbye))
            return
        if self.plugins is not None:  # what they typed before being sent away goes nowhere
            self.plugins.drop(member)
        self.leave(member, reason)
        member.outlet.close(goodbye)

    def follow(self, room: Room, visitor: Member) -> None:
        """A bot's ``tail --follow``: it hears ``room`` without being in it."""
        self._rooms.follow(room, visitor)

    def unfollow(self, room: Room, visitor: Member) -> None:
        self._rooms.unfollow(room, visitor)

    # ---------------------------------------------------------------- input

    def handle_line(self, member: Member, line: str) -> None:
        """Route one line a person typed: a command, or a message to their room.

        Either way it first pays the rate limit; a message then takes the
        same path as a bot's post (``Pipeline.send``).
        """
        if not self._presence.is_here(member):
            return  # a replaced or departed session still draining input
        if member.held is not None:  # their /nick is not settled yet: this line waits for it
            if len(member.held) < HELD_LINES:
                member.held.append(line)
            else:
                member.outlet.notice("your /nick is still being saved: this line was not sent; send it again")
            return
        if self.plugins is not None and self.plugins.defer(member, line, self._waited):
            return  # an earlier line of theirs is with the plugins: this one waits its turn
        member.last_active = self.clock()
        if member.away == "idle":
            member.away = None
        if line.startswith("/") and not line.startswith("//"):
            if self._pipeline.within_rate(member):
                if self._sharing:  # its token, spent on the other nodes too (no text: it is this node's business)
                    self._publish(Charged(member.identity))
                dispatch(self._operations, member, line, self.commands)
            return
        if line.startswith("//"):
            line = line[1:]  # "//etc" says "/etc"
        self._pipeline.send(member, self.room_of(member), Kind.CHAT, line)

    def _waited(self, member: Member, line: str) -> None:
        """A line typed while an earlier one was with the plugins, in its
        turn. If the session ended meanwhile (a script's input ran out, the
        connection dropped), a message typed before the end is still said,
        as it would have been without plugins; a command cannot act for
        someone gone and is dropped (someone sent away has nothing left
        waiting: ``disconnect`` dropped it)."""
        if self._presence.is_here(member) or (line.startswith("/") and not line.startswith("//")):
            self.handle_line(member, line)
            return
        room = self._by_key.get(member.room)
        if room is not None:
            self._pipeline.send(member, room, Kind.CHAT, line[1:] if line.startswith("//") else line)

    def _settled(self, member: Member) -> None:
        """``member``'s /nick is done or refused: handle the lines they typed
        meanwhile, in order (one of them may be another /nick: the rest then
        waits for that one)."""
        held, member.held = member.held or [], None
        for index, line in enumerate(held):
            if member.held is not None:
                member.held.extend(held[index:])
                return
            self.handle_line(member, line)

    def post(self, member: Member, room_name: str, text: str, done: Then) -> None:
        """A bot's message to a room it is not in; ``done(refusal or None)``
        once refused or delivered. The same path as a person's line."""
        room = self._rooms.get(room_name)
        if room is None:
            done(f"no room called {room_name[:32]}")
            return
        self._pipeline.send(member, room, Kind.CHAT, text, done)

    # ------------------------------------------------------------ delivery

    def receive(self, event: Event) -> None:
        """Deliver what the bus brings, from this node or another: a room's
        line to the room (looked up by its name's key), a private message to
        its recipient if online here and to its sender's own session."""
        if type(event) is RoomLine:
            msg = event.msg
            key = self._room_keys.get(msg.room)
            if key is None:
                if len(self._room_keys) > 4096:  # names of rooms long gone
                    self._room_keys.clear()
                key = self._room_keys[msg.room] = name_key(msg.room)
            room = self._by_key.get(key)
            if room is not None:  # removed meanwhile: nobody left to tell
                room.publish(msg, event.keep, event.sender)
        elif type(event) is Private:
            self._private(event)
        elif type(event) is StateChanged:  # another node's (a bus never brings back this node's own)
            self._state.apply(event.change)
        elif type(event) is Blocked:
            self.offences.adopt(event.key, event.until)
        elif isinstance(event, (Arrived, Departed, Kick, Hello)):
            self._presence_event(event)

    def elsewhere(self, event: Event) -> None:
        """An event another node published, as it arrives: a line said or a
        command given there costs its sender here too (one rate limit across
        nodes), and an offence or a name registered there counts against its
        address here (one count across nodes).

        Each token is charged once: a typed line (kind CHAT, a person's or a
        bot's) by its RoomLine; a command by its ``Charged``, which covers
        what the command says as well (/me's EMOTE line, /msg's Private).
        """
        if type(event) is RoomLine:
            if event.keep and event.sender is not None and event.msg.kind is Kind.CHAT:
                self._pipeline.charge_elsewhere(event.sender, event.msg.sender)
        elif type(event) is Charged:
            self._pipeline.charge(event.who)
        elif type(event) is Offended:
            self.offences.record_elsewhere(event.address)
        elif type(event) is Registered:
            self.names.count_elsewhere(event.address)

    def _private(self, event: Private) -> None:
        msg = event.msg
        sender = self._session_here(msg.sender, event.sender)
        target = self._session_here(msg.recipient, event.recipient) if msg.recipient is not None else None
        if target is not None and (event.sender is None or not target.prefs.ignoring(event.sender)):
            # ignored: silently not delivered
            if sender is not None:
                target.last_pm_from = sender
            else:  # from another node: /reply reaches them there
                remote = self.remote.by_key.get(name_key(msg.sender))
                if remote is not None and (event.sender is None or remote.person == event.sender):
                    target.last_pm_from = remote
            target.outlet.deliver(msg)
        if sender is not None and sender is not target:
            sender.outlet.deliver(msg)

    def _session_here(self, name: str, person: str | None) -> Member | None:
        """The session here that a private message's ``name`` meant: by that
        name if it is still ``person``'s; if it changed hands or they renamed
        before the commit, ``person``'s session (a keyless /nick must not lose
        a stored message). Two lookups in dicts, whatever the number online."""
        member = self._presence.members.get(name_key(name))
        if person is None or (member is not None and member.person == person):
            return member
        return self._presence.find_person(person)

    # ------------------------------------------------------------ the cluster

    def greet(self) -> None:
        """This node is up: the others tell it who they have (once the bus runs)."""
        if self._cluster:
            self._publish(Hello(self.node))

    def _presence_event(self, event: Arrived | Departed | Kick | Hello) -> None:
        """Another node's people came, changed or went; or this node is asked
        to end a session (Kick) or to say who it has (Hello)."""
        mine = event.node == self.node
        if type(event) is Kick:
            if mine:
                self._kicked(event)
        elif mine:
            return  # this node's own word about itself
        elif type(event) is Arrived:
            if not self.remote.stale(event.node, event.seq):
                known = len(self.remote)
                self.remote.update(event)
                if (
                    len(self.remote) > known and self.on_arrival_elsewhere is not None
                    and self.clock() - event.connected_at < ARRIVAL_FRESH
                ):
                    self.on_arrival_elsewhere(event.address)
        elif type(event) is Departed:
            if event.session is None:
                self.remote.drop_node(event.node)
            elif not self.remote.stale(event.node, event.seq):
                self.remote.remove(event.node, event.session)
        else:  # Hello
            self.node_forgotten()
            for mute in self.moderation.in_memory_mutes():  # no store has them to give it
                self._publish(StateChanged(mute))

    def node_forgotten(self) -> None:
        """Tell the other nodes about everyone here (a node came, or may have
        taken this one for gone)."""
        for member in list(self._presence.members.values()):
            self._tell(member)

    def _person_state(self, member: Member) -> tuple[str, str, tuple[str, ...], str | None]:
        return (member.name, member.room, tuple(member.rooms), member.away)

    def _arrived(self, member: Member) -> Arrived:
        return Arrived(
            self.node, member.session, member.name, member.fingerprint, member.address, member.room,
            list(member.rooms), member.away, member.connected_at, member.last_active, self._seq,
        )

    def _tell(self, member: Member) -> None:
        """Tell the other nodes ``member`` is here, as they are now (and
        keep it where they can check their mirrors against it)."""
        self._shown[member.session] = (self._person_state(member), member.last_active)
        self._seq += 1
        event = self._arrived(member)
        self.roster.record(event)
        self._publish(event)

    def _changed(self, member: Member) -> None:
        """Presence's word: ``member`` was renamed (the other nodes hear it at once)."""
        if self._cluster:
            self._tell(member)

    def _departed(self, member: Member, release: bool = True) -> None:
        """``member`` went offline here: their name is free, the other nodes hear it."""
        if not self._cluster:
            return
        self._shown.pop(member.session, None)
        if release:
            self.roster.release(member.name, member.fingerprint)
        self._seq += 1
        event = Departed(self.node, member.session, self._seq)
        self.roster.record(event)
        self._publish(event)

    def _kicked(self, event: Kick) -> None:
        """Another node's /kick of someone here, or a login of their key there."""
        target = self._presence.members.get(event.key)
        if target is None or target.person != event.person:
            return  # gone, or the name changed hands meanwhile
        if event.reason is None:  # replaced: the name is the other node's now
            self._presence.depart(target, None, quietly=True)
            self._logged_out(target, REPLACED)
            self._departed(target, release=False)
            target.outlet.close(event.goodbye)
        else:
            self.disconnect(target, event.reason, event.goodbye)

    def mirrored_nodes(self) -> set[str]:
        """The other nodes whose people are mirrored here (the roster watches them)."""
        return self.remote.nodes()

    def name_lost(self, name: str, fingerprint: str | None) -> None:
        """This node was cut off longer than a claim lasts, and another node's
        person took ``name`` meanwhile: one name, one person, so ours goes."""
        member = self._presence.members.get(name_key(name))
        if member is not None and member.fingerprint == fingerprint:
            self.disconnect(
                member, "their name went to someone else while their server was cut off",
                "this server lost touch with the rest of the chat and your name went to someone else "
                "meanwhile; please log in again",
            )

    def held_names(self) -> list[tuple[str, str | None]]:
        """The names this node's people hold (the roster keeps them claimed)."""
        return [(m.name, m.fingerprint) for m in self._presence.members.values()]

    def node_gone(self, node: str) -> None:
        """``node`` stopped answering (killed, or cut off): its people leave
        every list here, and the rooms here hear it."""
        self._gone_elsewhere(self.remote.drop_node(node), " (their server stopped answering)")

    def _gone_elsewhere(self, people: list[Member], why: str) -> None:
        """The rooms here hear that these people of another node left: one
        line a person while they are few in a room (``notice_burst``), else
        one line that sums them up, as a storm of leaves is. Each node tells
        only its own rooms (each sees it for itself): nothing goes on the bus."""
        now = self.clock()
        gone: dict[str, list[str]] = {}
        for person in people:
            for key in person.rooms:
                gone.setdefault(key, []).append(person.name)
        for key, names in gone.items():
            room = self._by_key.get(key)
            if room is None:
                continue
            if len(names) <= self.settings.notice_burst:
                lines = [(name, f"{name} left{why}") for name in names]
            else:
                lines = [("", f"{summed_up(names)} left{why}")]
            for sender, text in lines:
                room.publish(Message(0, room.name, Kind.LEAVE, sender, text, now), False)

    def people(self) -> tuple[int, list[Arrived]]:
        """This node's presence count and its people (the roster writes them
        to Redis again when Redis lost them)."""
        return self._seq, [self._arrived(m) for m in self._presence.members.values()]

    def mirror_seq(self, node: str) -> int:
        """How far the mirror of ``node`` is whole (see Mirror.behind)."""
        return self.remote.behind(node)

    def reconcile(self, node: str, people: list[Arrived], seq: int) -> None:
        """The mirror of ``node`` was behind its people in Redis (an event
        missed): it becomes them; a ghost it held leaves every list, and the
        rooms here hear it, late as it is."""
        self._gone_elsewhere(self.remote.replace(node, people, seq), "")

    # ------------------------------------------------------------ clockwork

    def tick(self) -> None:
        """Publish the summed-up comings and goings (called every second or so);
        in a cluster, tell the other nodes whose rooms or away note changed;
        ask the store whether ``sshchat admin`` changed the bans (chat/outside.py)."""
        self._presence.tick()
        self._outside.tick()
        if self._cluster:
            shown = self._shown
            for member in list(self._presence.members.values()):
                told = shown.get(member.session)
                if (told is None or told[0] != self._person_state(member)
                        or member.last_active - told[1] >= IDLE_STEP):
                    self._tell(member)

    def sweep_idle(self) -> None:
        """Mark idle people away, and disconnect them if so configured.

        Called every few seconds by the application, not per message.
        """
        kick = self.settings.idle_kick
        for member in self._presence.idle():
            self.disconnect(member, "idle", f"disconnected after {int(kick // 60)} minutes idle")

    def shutdown(self, reason: str) -> None:
        """Tell everyone ``reason`` and end every session, without leave noise."""
        self.closing = True
        if self._cluster:
            self._publish(Departed(self.node, None))
            for member in self._presence.members.values():
                self.roster.release(member.name, member.fingerprint)
        for member in self._presence.clear():
            self._logged_out(member, SHUT_DOWN)  # their sessions' own ends find them gone: one line each
            member.outlet.close(reason)
        self._rooms.close_followers(reason)
