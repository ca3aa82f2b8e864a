"""Wiring: config -> host key + hub + SSH listener; start-up and graceful stop.

Nothing else lives here: behaviour belongs in chat/, term/ or ssh/.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncssh

from sshchat.chat.hub import ChatSettings, Hub
from sshchat.config import Config
from sshchat.ssh.context import ServerContext
from sshchat.ssh.hostkey import load_or_create
from sshchat.ssh.server import listen

log = logging.getLogger("sshchat")

SHUTDOWN_REASON = "the server is shutting down; see you soon"


class StartError(Exception):
    """The server could not start; ``str()`` says why in one line."""


class App:
    """One running sshchat server."""

    def __init__(self, config: Config) -> None:
        self.config = config
        settings = ChatSettings(
            max_message_chars=config.max_message_chars,
            history_on_join=config.history_on_join,
            server_name=config.server_name,
        )
        self.ctx = ServerContext(Hub(settings), config)
        self._listener: asyncssh.SSHAcceptor | None = None

    @property
    def hub(self) -> Hub:
        return self.ctx.hub

    async def start(self) -> list[tuple[str, int]]:
        """Listen; return the (host, port) pairs actually bound."""
        key = load_or_create(self.config.host_key)
        try:
            self._listener = await listen(self.ctx, key)
        except OSError as e:
            where = f"{self.config.host}:{self.config.port}"
            raise StartError(f"cannot listen on {where}: {e.strerror or e}") from None
        addresses = [s.getsockname()[:2] for s in self._listener.sockets]
        for host, port in addresses:
            log.info("listening on %s:%d", host, port)
        return addresses

    async def stop(self, reason: str = SHUTDOWN_REASON) -> None:
        """Stop accepting, tell everyone why, and give goodbyes time to arrive."""
        if self._listener is not None:
            self._listener.close()
        self.hub.shutdown(reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace
        while self.ctx.connections and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.ctx.connections):
            conn.abort()
        self.ctx.connections.clear()


async def run(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before listening: a script may signal as soon as it reads the port.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = App(config)
    await app.start()
    await stop.wait()
    log.info("shutting down")
    await app.stop()
    log.info("stopped")
