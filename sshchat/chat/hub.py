"""The hub: who is online, and where each line a person types goes.

It is the whole chat as seen from a transport: ``join`` a person with an
outlet, feed their lines to ``handle_line``, ``leave`` when they go. No I/O
happens here; outlets only queue, so every call returns at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sshchat.chat.commands import COMMANDS, dispatch
from sshchat.chat.member import Member, Outlet
from sshchat.chat.message import Kind, Message
from sshchat.chat.names import InvalidName, check_name, name_key
from sshchat.chat.room import Room
from sshchat.term.sanitize import clean

LOBBY = "#lobby"

# Only what people said is worth replaying to someone who joins later.
_KEPT_IN_HISTORY = frozenset({Kind.CHAT, Kind.EMOTE})


class JoinRefused(Exception):
    """A login that may not join; ``str()`` is the reason to show the client."""


@dataclass(frozen=True)
class ChatSettings:
    """The part of the configuration the chat core needs."""

    max_message_chars: int = 1024
    history_on_join: int = 20
    server_name: str = "sshchat"


class Hub:
    """Online members, the room, and the routing of input."""

    def __init__(
        self, settings: ChatSettings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings or ChatSettings()
        self.clock = clock
        self.members: dict[str, Member] = {}
        self.lobby = Room(LOBBY)
        self.commands = COMMANDS
        self.closing = False
        self._next_id = 1

    # ------------------------------------------------------------- presence

    def find(self, name: str) -> Member | None:
        """The online member called ``name`` (ignoring case), if any."""
        return self.members.get(name_key(name))

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
        outlet.notice(
            f"Welcome to {self.settings.server_name}, {name}! "
            f"{len(self.members)} online. Type /help for commands."
        )
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
        old_name, old_key = member.name, member.key
        del self.members[old_key]
        member.name = new_name
        self.members[member.key] = member
        self.lobby.rekey(old_key, member)
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
            self._publish(member, Kind.CHAT, text)

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

    def say(self, member: Member, kind: Kind, text: str) -> Message:
        """Publish ``text`` from ``member`` in the room (already cleaned)."""
        return self._publish(member, kind, text)

    def private(self, member: Member, target: Member, text: str) -> None:
        """A message only ``member`` and ``target`` see."""
        msg = self._message(member, Kind.PRIVATE, text, recipient=target.name)
        target.outlet.deliver(msg)
        if target is not member:
            member.outlet.deliver(msg)

    def _message(
        self, member: Member, kind: Kind, text: str, recipient: str | None = None
    ) -> Message:
        msg = Message(
            self._next_id, LOBBY, kind, member.name, text, self.clock(), recipient
        )
        self._next_id += 1
        return msg

    def _publish(self, member: Member, kind: Kind, text: str) -> Message:
        msg = self._message(member, kind, text)
        self.lobby.publish(msg, keep=kind in _KEPT_IN_HISTORY)
        return msg
