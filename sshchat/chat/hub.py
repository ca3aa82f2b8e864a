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

import time
from collections.abc import Callable, Iterable

from sshchat.chat.admission import Admission, JoinRefused
from sshchat.chat.bus import Blocked, Bus, Event, Private, RoomLine, StateChanged
from sshchat.chat.commands import dispatch
from sshchat.chat.member import Member, Outlet, identity
from sshchat.chat.message import Kind, Message
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.names import name_key
from sshchat.chat.operations import Operations
from sshchat.chat.pipeline import Pipeline, Then
from sshchat.chat.presence import Presence
from sshchat.chat.ratelimit import Offences
from sshchat.chat.registry import NameRegistry
from sshchat.chat.room import Room
from sshchat.chat.rooms import LOBBY, LOBBY_KEY, Rooms
from sshchat.chat.settings import ChatSettings
from sshchat.chat.state import SharingStore, StateApplier
from sshchat.chat.store import Store

__all__ = ["LOBBY", "LOBBY_KEY", "Hub", "JoinRefused"]


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
    ) -> None:
        """``bus``: how committed messages reach ``receive`` (None: directly,
        as the in-process bus does). On a bus to other processes, every
        change saved is published once durable (chat/state.py)."""
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
        if bus is not None and bus.crosses_processes:
            publish_block = bus.publish
            self.offences.on_block = lambda key, until: publish_block(Blocked(key, until))
        publish = self.receive if bus is None else bus.publish  # read after attach: the local bus's is receive
        self._pipeline = Pipeline(s, store, self.moderation, self.offences, clock, self.disconnect, publish)
        self._rooms = Rooms(s, store, clock, self._pipeline, self.moderation, snapshot)
        self._presence = Presence(
            s, clock, store, self._rooms, self._pipeline, self.names, self.moderation, snapshot.prefs
        )
        self._admission = Admission(self.moderation, self.names, self._presence, self.offences)
        self._operations = Operations(
            s, clock, store, self._pipeline, self._rooms, self._presence, self.names, self.moderation, self.disconnect
        )
        self._state = StateApplier(clock, self.moderation, self.names, self._rooms, self._presence, self._operations)
        self.closing = False
        self._room_keys: dict[str, str] = {}  # room name -> its key: NFKC once per name, not per message
        self._by_key = self._rooms.by_key  # (the one dict, changed in place: an attribute less per message)

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
        """The online member called ``name`` (ignoring case), if any."""
        return self._presence.find(name)

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

    def join(self, name: str, fingerprint: str | None, outlet: Outlet, address: str = "") -> Member:
        """Admit a person, or raise JoinRefused with the reason to show them.

        The same name with the same key replaces the old session (a dropped
        connection must never leave a ghost that holds the name). Refusals
        count as offences of the address: many in a row earn it a block.
        """
        if self.closing:
            raise JoinRefused("the server is shutting down; try again shortly")
        old = self._admission.person(name, fingerprint, address)
        if old is not None:
            self._presence.depart(old, None, quietly=True)
            old.outlet.close("you logged in from elsewhere")
        member = self._new_member(name, fingerprint, outlet, address)
        self._presence.arrive(member)
        self._welcome(member)
        if old is None:
            self._presence.announce_arrival(member)
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
            f"{len(self.members)} online. Type /help for commands."
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
        visitor = self._new_member(name, fingerprint, outlet, address)
        self._presence.claim_name(visitor, visitor=True)  # a name not kept is told, as to people
        return visitor

    def leave(self, member: Member, reason: str | None = None) -> None:
        """Remove a member (safe to call twice, or for a replaced session)."""
        self._presence.depart(member, reason, quietly=self.closing)

    def disconnect(self, member: Member, reason: str, goodbye: str) -> None:
        """Send someone away: the room hears ``reason``, they read ``goodbye``."""
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
        member.last_active = self.clock()
        if member.away == "idle":
            member.away = None
        if line.startswith("/") and not line.startswith("//"):
            if self._pipeline.within_rate(member):
                dispatch(self._operations, member, line)
            return
        if line.startswith("//"):
            line = line[1:]  # "//etc" says "/etc"
        self._pipeline.send(member, self.room_of(member), Kind.CHAT, line)

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

    def elsewhere(self, event: Event) -> None:
        """An event another node published, as it arrives: a line said there
        costs its sender here too (one rate limit across nodes)."""
        if type(event) is RoomLine:
            if event.keep and event.sender is not None:
                self._pipeline.charge_elsewhere(event.sender, event.msg.sender)
        elif type(event) is Private:
            self._pipeline.charge_elsewhere(event.sender, event.msg.sender)

    def _private(self, event: Private) -> None:
        msg = event.msg
        members = self._presence.members
        sender = members.get(name_key(msg.sender))
        if sender is not None and event.sender is not None and sender.person != event.sender:
            sender = None  # the name changed hands meanwhile
        target = members.get(name_key(msg.recipient)) if msg.recipient is not None else None
        if target is not None and event.recipient is not None and target.person != event.recipient:
            target = None
        if target is not None and (event.sender is None or not target.prefs.ignoring(event.sender)):
            # ignored: silently not delivered
            if sender is not None:
                target.last_pm_from = sender
            target.outlet.deliver(msg)
        if sender is not None and sender is not target:
            sender.outlet.deliver(msg)

    # ------------------------------------------------------------ clockwork

    def tick(self) -> None:
        """Publish the summed-up comings and goings (called every second or so)."""
        self._presence.tick()

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
        for member in self._presence.clear():
            member.outlet.close(reason)
        self._rooms.close_followers(reason)
