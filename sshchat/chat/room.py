"""Room: members, recent history, and delivery in the order accepted.

Delivery is a plain loop over members' outlets, each of which only queues:
no member can slow the loop down, and every member sees the room's messages
in exactly the order the room accepted them.
"""

from __future__ import annotations

from collections import deque

from sshchat.chat.member import Member
from sshchat.chat.message import Message


class Room:
    """A named conversation with the people in it and what was said recently."""

    def __init__(self, name: str, history_size: int = 200) -> None:
        self.name = name
        self.members: dict[str, Member] = {}  # by name key, in join order
        self.history: deque[Message] = deque(maxlen=history_size)

    def add(self, member: Member) -> None:
        self.members[member.key] = member

    def remove(self, member: Member) -> None:
        if self.members.get(member.key) is member:
            del self.members[member.key]

    def rekey(self, old_key: str, member: Member) -> None:
        """Keep a renamed member in place under their new name."""
        self.members = {(member.key if k == old_key else k): m for k, m in self.members.items()}

    def publish(self, msg: Message, keep: bool = True) -> None:
        """Queue ``msg`` for every member, in order; ``keep`` it in history."""
        if keep:
            self.history.append(msg)
        for member in self.members.values():
            member.outlet.deliver(msg)

    def recent(self, count: int) -> list[Message]:
        """The last ``count`` messages, oldest first."""
        if count <= 0:
            return []
        return list(self.history)[-count:]
