"""A bound on the environment variables a client may set on a session.

What asyncssh does (2.24, ``SSHServerChannel._process_env_request``): it
keeps every environment variable a client sends on a session channel,
with no limit on how many or how large: one connection could grow the
server's memory without end.

What we change: at most MAX_ENV_VARS variables, names up to MAX_ENV_NAME
bytes and values up to MAX_ENV_VALUE bytes; anything beyond is refused
(the request fails, as OpenSSH refuses variables its AcceptEnv does not
list), and a variable already set may still be replaced. Upstream this
would be a server option with these defaults.

Gain: memory, not speed: what one connection's env requests can hold is
16 x (64 + 256) bytes instead of unbounded. Not switched off by
``fast_path = false``; like every patch, it stays off if the start-up
gate fails.
"""

from __future__ import annotations

from typing import Any

from sshchat.ssh.patches.touch import Function, SetBy, Swap, Swaps, Touch

MAX_ENV_VARS = 16
MAX_ENV_NAME = 64
MAX_ENV_VALUE = 256

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.channel:SSHServerChannel._process_env_request", "(self, packet)"),
    SetBy("asyncssh.channel:SSHChannel.__init__", ("_env",)),
    Function("asyncssh.packet:SSHPacket.get_string", "(self)"),
    Function("asyncssh.packet:SSHPacket.check_end", "(self)"),
)


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


_swaps = Swaps(Swap("asyncssh.channel:SSHServerChannel._process_env_request", _process_env_request))

install, uninstall, installed = _swaps.install, _swaps.uninstall, _swaps.installed
