"""The chat core's settings for tests that build a hub without a server.

They come from Config like a server's do (Config holds the only defaults),
with the changes a test asks for: ``chat_settings(rate_burst=1000)``.
"""

from __future__ import annotations

from typing import Any

from sshchat.chat.settings import ChatSettings
from sshchat.config import Config
from sshchat.config import chat_settings as from_config


def chat_settings(**changes: Any) -> ChatSettings:
    """ChatSettings from the default Config with ``changes`` (Config field names)."""
    return from_config(Config(**changes))
