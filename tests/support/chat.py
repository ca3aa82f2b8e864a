"""Stand-ins for the chat core's surroundings: an outlet that records what
a person was sent, and a clock a test moves by hand.

Shared by every test that calls the core directly (no sockets), so that a
test of rooms or moderation reads what each person got the same way.
"""

from __future__ import annotations

from sshchat.chat.hub import Hub
from sshchat.chat.member import Member
from sshchat.chat.message import Kind, Message


class Recorder:
    """An outlet that records what the core queued for one person."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.notices: list[str] = []
        self.closed: str | None = None
        self.elsewhere: list[Message] = []
        self.prompts = 0

    def deliver(self, msg: Message, elsewhere: bool = False) -> None:
        self.messages.append(msg)
        if elsewhere:
            self.elsewhere.append(msg)

    def notice(self, text: str) -> None:
        self.notices.append(text)

    def prompt_changed(self) -> None:
        self.prompts += 1

    def close(self, reason: str) -> None:
        self.closed = reason

    def texts(self, kind: Kind | None = None, sender: str | None = None) -> list[str]:
        return [m.text for m in self.messages if (kind is None or m.kind is kind) and sender in (None, m.sender)]


def person(hub: Hub, name: str, fp: str | None = None, address: str = "") -> tuple[Member, Recorder]:
    """Join ``name`` with a recording outlet; the test reads what they were sent."""
    out = Recorder()
    return hub.join(name, fp, out, address), out


class Clock:
    """Time as the test sets it: the core reads ``now`` and a test moves it."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now
