"""No per-login rebuild of the server's options when there is no config file.

What asyncssh does (2.24, ``SSHServerConnection.reload_config``, awaited
before ``begin_auth`` for every login): it re-evaluates its server
configuration so that an sshd_config-style file's Match blocks can apply
to the user and client address: a full ``SSHServerConnectionOptions``
build in a worker thread (a thread hop, and a ``getfqdn()`` call), even
when no configuration file was ever given.

What we change: when no configuration file was loaded
(``options.config.loaded`` is false) and reverse DNS is off, the rebuild
can only yield the options the connection already has, so we skip it.
With a config file or reverse DNS, asyncssh's reload runs as before.
Upstream, the same condition could sit at the top of ``reload_config``.

Gain: 226 us of CPU per login (one options rebuild, ``python -m
bench.patches``), and the thread hop's wait. Together with the lazy
ML-KEM key pair (lazy_mlkem.py) and a cheaper join history, server CPU
per login went from 4.0 to 3.3 ms (1000 logins, bench.loadgen).
"""

from __future__ import annotations

from typing import Any

from sshchat.ssh.patches.touch import Function, SetBy, Swap, Swaps, Touch

TOUCHES: tuple[Touch, ...] = (
    Function("asyncssh.connection:SSHServerConnection.reload_config", "(self)", coroutine=True),
    SetBy("asyncssh.connection:SSHServerConnection.__init__", ("_rdns_lookup",)),
    SetBy("asyncssh.connection:SSHConnection.__init__", ("_options",)),
    SetBy("asyncssh.connection:SSHConnectionOptions.prepare", ("config",)),
    SetBy("asyncssh.config:SSHConfig.__init__", ("loaded",)),
)


async def reload_config(self: Any) -> None:
    """asyncssh's reload, only where it can change anything."""
    if self._rdns_lookup or self._options.config.loaded:
        await _swap.original(self)


_swap = Swap("asyncssh.connection:SSHServerConnection.reload_config", reload_config)
_swaps = Swaps(_swap)

install, uninstall, installed = _swaps.install, _swaps.uninstall, _swaps.installed
