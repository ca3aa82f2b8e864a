"""What every connection and session of one server shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sshchat.chat.hub import Hub
from sshchat.config import Config


@dataclass
class ServerContext:
    """The hub and the settings; one per listening server."""

    hub: Hub
    config: Config
    # Open connections (asyncssh connection objects), for shutdown to wait on.
    connections: set[Any] = field(default_factory=set)
