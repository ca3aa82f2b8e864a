"""Bounds asyncssh leaves to the application, set once at start.

asyncssh keeps every environment variable a client sends on a session
channel, with no limit on how many or how large: one connection could grow
the server's memory without end. We keep at most a few short ones (the chat
reads only NO_COLOR); the rest are refused, as OpenSSH refuses variables its
AcceptEnv does not list.
"""

from __future__ import annotations

from typing import Any

from asyncssh.channel import SSHServerChannel

MAX_ENV_VARS = 16
MAX_ENV_NAME = 64
MAX_ENV_VALUE = 256

_original = SSHServerChannel._process_env_request


def _process_env_request(self: Any, packet: Any) -> bool:
    key = packet.get_string()
    value = packet.get_string()
    packet.check_end()
    if len(key) > MAX_ENV_NAME or len(value) > MAX_ENV_VALUE:
        return False
    if key not in self._env and len(self._env) >= MAX_ENV_VARS:
        return False
    self._env[key] = value
    return True


def install() -> None:
    """Apply the bounds (idempotent)."""
    SSHServerChannel._process_env_request = _process_env_request  # type: ignore[method-assign]
