"""Authentication and connection set-up, on asyncssh.

Everyone gets in: a public key (any; asyncssh still checks the signature)
becomes the person's identity as its SHA256 fingerprint, and clients
without keys pass keyboard-interactive with no prompts. No password is ever
asked. The login name is checked by the chat core when the session starts,
where the refusal can be shown as text and an exit status.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncssh

from sshchat.chat.addresses import address_keys
from sshchat.chat.logged import event
from sshchat.chat.moderation import normalise_address
from sshchat.chat.refusals import Reason, Refusal, reason_code
from sshchat.ssh.context import Peer, ServerContext
from sshchat.ssh.input_budget import ServerTimeBudget
from sshchat.ssh.patches import bounded_receive
from sshchat.ssh.session import Session, connection_budget, over_budget_reason

# Server seconds of a connection's packets not charged to its time budget
# until its session starts: the key exchange, authentication and the start
# of the chat (~10 ms; the arrival limits bound how many an address may
# begin). A client that spends more before its session starts (IGNORE
# packets, say) is charged for the rest.
LOGIN_ALLOWANCE = 0.05


class ChatServer(asyncssh.SSHServer):
    """One client connection: captures the key it authenticated with."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._conn: asyncssh.SSHServerConnection | None = None
        self._key: asyncssh.SSHKey | None = None
        self._address = ""
        self._has_session = False
        self._counted = False  # admitted under the connection limits
        self._handshaking = False
        self._login_timer: asyncio.TimerHandle | None = None
        self._session: Session | None = None
        self._budget: ServerTimeBudget | None = None
        self._receiver: bounded_receive.Receiver | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername") or ("?", 0)
        self._address = normalise_address(str(peer[0]))
        self._ctx.connections.add(conn)
        # From the first byte on, asyncssh's work on this connection's packets
        # (the handshake, IGNORE packets, data) is charged to its budget, and
        # its session's input to the same one (with the patch in; see bounded_receive).
        self._budget = connection_budget(self._ctx, self._address)
        self._budget.free = LOGIN_ALLOWANCE
        self._receiver = bounded_receive.Receiver(conn, self._budget, self._ctx.input_turns, self._over_budget)
        bounded_receive.attach(conn, self._receiver)
        refusal = self._ctx.limits.admit(self._address)
        if refusal is None:
            self._counted = self._handshaking = True
            refusal = self._ctx.hub.screen_address(self._address)
        if refusal is None and self._ctx.config.login_timeout > 0:
            # asyncssh's own login_timeout ends at authentication; a client
            # that authenticates and then opens no session would hold a
            # connection (and its address's place) for as long as it likes.
            self._login_timer = asyncio.get_running_loop().call_later(
                self._ctx.config.login_timeout, self._login_expired
            )
        if refusal is not None:
            self._ctx.hub.counts.refuse(refusal)
            code = reason_code(refusal)
            left_out = self._ctx.refusals_logged.admit((address_keys(self._address)[0], code))
            if left_out is not None:  # a flood of refused connections is not a flood of lines
                more = f" ({left_out} more since its last line)" if left_out else ""
                event(
                    logging.INFO, "connection_refused", f"refused a connection from {self._address}: {refusal}{more}",
                    address=self._address, code=code, reason=refusal, suppressed=left_out or None,
                )
            # Soon, not now: asyncssh must first send its version line, and
            # then OpenSSH shows the reason ("Received disconnect ...").
            asyncio.get_running_loop().call_soon(
                conn.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS, refusal
            )

    def _over_budget(self) -> None:
        """asyncssh's work on this connection's packets went over its time
        budget too often: cut it off, recorded as a flood."""
        conn = self._conn
        if conn is None:
            return
        reason = over_budget_reason(self._ctx)
        if self._session is None or not self._session.cut_off():  # the session tells its client and records it
            event(
                logging.WARNING, "flood_cut_off", f"cutting off a connection from {self._address}: packet flood",
                address=self._address, kind="connection", reason=reason,
            )
            self._ctx.hub.offences.record(self._address)
        conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def _login_expired(self) -> None:
        self._login_timer = None
        if self._conn is None:  # gone already; a started session has cancelled this timer
            return
        event(
            logging.INFO, "login_timeout",
            f"closed a connection from {self._address}: no chat session within login_timeout",
            address=self._address,
        )
        self._conn.disconnect(
            asyncssh.DISC_BY_APPLICATION,
            f"no chat session within {self._ctx.config.login_timeout:g} seconds of connecting",
        )

    def _logged_in(self) -> None:
        """The session started: logging in is over, and so is its allowance."""
        if self._budget is not None:
            self._budget.free = 0.0
        self._stop_login_timer()

    def _stop_login_timer(self) -> None:
        if self._login_timer is not None:
            self._login_timer.cancel()
            self._login_timer = None

    def auth_completed(self) -> None:
        if self._handshaking:
            self._handshaking = False
            self._ctx.limits.logged_in()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_login_timer()
        if self._receiver is not None:
            self._receiver.close()
        self._ctx.connections.discard(self._conn)
        if self._counted:
            self._counted = False
            self._ctx.limits.release(self._address, self._handshaking)

    def begin_auth(self, username: str) -> bool:
        return True  # ask for auth, so that clients offer their keys

    def password_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        # Called for the key offered and again, just before the signature is
        # checked, for the key that authenticates: the last one seen wins.
        # A key whose lines in --admin-keys/--allowlist all have a from= or
        # expiry-time= this login does not meet is not accepted at all, as
        # sshd does: the client goes on with other keys or none.
        fingerprint = key.get_fingerprint("sha256")
        for keys in self._ctx.key_files:
            refusal = keys.refusal(fingerprint, self._address, time.time())
            if refusal is not None:
                self._refuse_key(fingerprint, refusal)
                return False
        self._key = key
        return True

    def _refuse_key(self, fingerprint: str, refusal: str) -> None:
        """Count a key refused by its from=/expiry-time=, and log it, at most
        once a minute per address: a client may offer the same public key
        (anyone's, no private key needed for the offer) hundreds of times in
        one connection, and each offer must not cost a log line."""
        self._ctx.hub.counts.refuse(Reason(Refusal.KEY_RESTRICTED, refusal))
        left_out = self._ctx.refusals_logged.admit((address_keys(self._address)[0], Refusal.KEY_RESTRICTED))
        if left_out is None:
            return
        more = f" ({left_out} more since its last line)" if left_out else ""
        event(
            logging.INFO, "key_refused", f"key {fingerprint} refused from {self._address}: {refusal}{more}",
            fingerprint=fingerprint, address=self._address, code=Refusal.KEY_RESTRICTED, reason=refusal,
            suppressed=left_out or None,
        )

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> bool:
        self._key = None  # no key proved: keyless identity
        return True  # succeed without asking anything

    def session_requested(self) -> Session | bool:
        if self._has_session or self._conn is None:
            return False  # one connection, one chat session
        self._has_session = True
        fingerprint = self._key.get_fingerprint("sha256") if self._key else None
        username = self._conn.get_extra_info("username") or ""
        # logging in ends when the shell or command starts, not when the channel opens:
        # a channel that never asks for either must not hold its place for ever
        self._session = Session(
            self._ctx, Peer(self._conn, username, fingerprint, self._address), self._logged_in, self._budget
        )
        return self._session


def _names(setting: str) -> list[str]:
    """A comma-separated algorithm list, as asyncssh takes it."""
    return [name.strip() for name in setting.split(",") if name.strip()]


async def listen(ctx: ServerContext, host_key: asyncssh.SSHKey, *, reuse_port: bool = False) -> asyncssh.SSHAcceptor:
    """Start accepting SSH connections on the configured address.

    ``reuse_port`` (SO_REUSEPORT): the workers of one node each listen on
    the same port and the kernel spreads new connections among them.
    """
    config = ctx.config
    return await asyncssh.create_server(
        lambda: ChatServer(ctx),
        config.host,
        config.port,
        server_host_keys=[host_key],
        server_version="sshchat",
        line_editor=False,
        encoding="utf-8",
        errors="replace",
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        rdns_lookup=False,
        **({"encryption_algs": _names(config.ciphers)} if config.ciphers else {}),
        **({"mac_algs": _names(config.macs)} if config.macs else {}),
        login_timeout=config.login_timeout,
        keepalive_interval=config.keepalive_interval,
        keepalive_count_max=config.keepalive_count_max,
        reuse_port=reuse_port,
    )
