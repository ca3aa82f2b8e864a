"""What a command may ask of the chat: the whole of it, in one place.

Commands get a ``Core`` and the ``Member`` running them, and reach nothing
else: not the hub's dictionaries, the store or the moderation state. So a
reader sees here everything a command can change, and the parts behind it
(pipeline, rooms, presence, moderation) can change without touching a
command. ``sshchat.chat.operations.Operations`` is the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from sshchat.chat.member import Member
from sshchat.chat.message import Kind, Message
from sshchat.chat.moderation import Then
from sshchat.chat.room import Room
from sshchat.chat.settings import ChatSettings
from sshchat.chat.store import AuditEntry, Ban, Binding, Mute

if TYPE_CHECKING:
    from sshchat.chat.commands.table import CommandTable


class Core(Protocol):
    """The operations of the chat that commands use. ``member`` is always
    the person running the command, who is told of any refusal."""

    @property
    def settings(self) -> ChatSettings: ...

    @property
    def commands(self) -> CommandTable:
        """This chat's commands: the built-in ones and its plugins' (for /help)."""
        ...

    # ------------------------------------------------------------- lookups

    def now(self) -> float: ...

    def is_op(self, member: Member) -> bool: ...

    def is_admin(self, fingerprint: str | None) -> bool:
        """A key from the server's --admin-keys (out of reach of operators)."""
        ...

    def find(self, name: str) -> Member | None:
        """The person online with this name (ignoring case)."""
        ...

    def find_by_key(self, fingerprint: str) -> Member | None: ...

    def find_person(self, person: str) -> Member | None:
        """The person online who is ``person`` (Member.person: a key or a session)."""
        ...

    def binding(self, name: str) -> Binding | None:
        """The key that owns ``name``, if one does."""
        ...

    def last_address(self, identity: str) -> str | None:
        """Where the person with ``identity`` (Member.identity) came from when
        they last left, if recently (in memory only: not across a restart)."""
        ...

    def room(self, name: str) -> Room | None: ...

    def people_in(self, room: Room) -> list[Member]:
        """Everyone in ``room``, on every node of a cluster."""
        ...

    def room_counts(self) -> dict[str, int]:
        """Room key -> people in it, on every node."""
        ...

    def room_of(self, member: Member) -> Room:
        """The room ``member`` looks at."""
        ...

    def rooms(self) -> Iterable[Room]: ...

    def history(self, room: Room, count: int, show: Callable[[list[Message]], None]) -> None:
        """The last ``count`` messages of ``room``, from the store, to ``show``."""
        ...

    def audit_log(self, count: int, show: Callable[[list[AuditEntry]], None]) -> None: ...

    # ------------------------------------------------------------- talking

    def on_behalf(self, member: Member, text: str, doing: str) -> str | None:
        """``text`` (as typed) made fit to show others in ``member``'s name
        (an away note, a reason, the message of the day): cleaned, and
        refused (None, ``member`` told why) if too long or while they are
        muted; "" if nothing is left. ``doing``: "you cannot {doing} while muted"."""
        ...

    def say(self, member: Member, kind: Kind, text: str) -> None:
        """``text`` as typed, from ``member`` to their room, through the
        message pipeline (cleaning, length, mute, commit, delivery)."""
        ...

    def private(self, member: Member, target: Member, text: str) -> None:
        """A private message through the same pipeline."""
        ...

    # --------------------------------------------------------------- rooms

    def enter(self, member: Member, room_name: str) -> None: ...

    def part(self, member: Member, room_name: str | None) -> None: ...

    def set_topic(self, member: Member, text: str | None) -> None:
        """Set the topic of ``member``'s room to ``text`` as typed (checked
        like ``on_behalf``); None: show it."""
        ...

    def may_manage(self, member: Member, room: Room) -> bool:
        """Operators, and the keyed creator of ``room``."""
        ...

    def remove_from_room(self, member: Member, target: Member, reason: str) -> None:
        """A room creator's kick; ``reason`` as typed (checked like ``on_behalf``)."""
        ...

    def remove_room(self, room: Room, notice: str, then: Then | None = None) -> None:
        """An operator's /rmroom: the people in ``room`` moved to the lobby
        and told ``notice``; the room and its history gone for good."""
        ...

    # ------------------------------------------------------------- oneself

    def rename(self, member: Member, new_name: str) -> None: ...

    def save_prefs(self, member: Member) -> None:
        """Keep ``member``'s view settings (changed by the command) for next time."""
        ...

    # ---------------------------------------------------------- moderation

    def audit(self, member: Member, action: str, target: str, detail: str = "", **fields: Any) -> None:
        """Keep an operator's action in the audit log and the server log;
        ``fields`` (room, reason, until, duration) go to the log's JSON as they are."""
        ...

    def kick(self, member: Member, target: Member, reason: str) -> None:
        """Disconnect ``target``, telling them and the rooms who did it and
        why; ``reason`` as typed (checked like ``on_behalf``)."""
        ...

    def ban(self, member: Member, ban: Ban, then: Then | None = None) -> None:
        """Keep ``ban`` and, once durable, end every session it covers, bots'
        too. Every change below with ``then`` is applied only once the store
        has kept it; ``then`` hears whether it was (False: nothing changed)."""
        ...

    def unban(self, kind: str, value: str, then: Then | None = None) -> Ban | None: ...

    def bans(self) -> list[Ban]:
        """The bans in force, oldest first."""
        ...

    def mute(self, mute: Mute, then: Then | None = None, address: str | None = None) -> None:
        """Mute; ``address``: a keyless person's, held muted as long (see Moderation.mute)."""
        ...

    def mute_of(self, target: str) -> Mute | None:
        """The mute in force on an identity ("fingerprint:..." or "name:...")."""
        ...

    def unmute(self, target: str, then: Then | None = None, address: str | None = None) -> Mute | None:
        """Lift a mute (and, with a keyless person's ``address``, the one it holds)."""
        ...

    def grant_op(self, fingerprint: str, by: str, then: Then | None = None) -> bool:
        """Make a key an operator; False if it already is one."""
        ...

    def revoke_op(self, fingerprint: str, then: Then | None = None) -> bool:
        """False if the key was not an operator made at runtime."""
        ...

    def release_name(self, name: str, then: Then | None = None) -> Binding | None: ...

    def motd(self) -> str | None: ...

    def set_motd(self, text: str | None, then: Then | None = None) -> None: ...

    def allowlist(self) -> dict[str, str] | None:
        """Allowed keys and where each comes from ("file" or "added"); None
        when the server runs without an allowlist."""
        ...

    def allow(self, fingerprint: str, by: str, then: Then | None = None) -> None: ...

    def disallow(self, fingerprint: str, then: Then | None = None) -> bool:
        """False if the key was not added at runtime."""
        ...


Handler = Callable[[Core, Member, list[str], str], None]
"""A command's code: (core, member, arguments, the text after the name)."""
