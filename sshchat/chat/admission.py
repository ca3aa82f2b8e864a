"""Who may enter: the rules every login meets, people and bots alike.

The address first (a blocked address is turned away before the costly part
of the SSH handshake), then the name rule, bans, the allowlist, names owned
by keys and names that look like someone else's. Every refusal counts as
an offence of the address: many in a row earn it a block.
"""

from __future__ import annotations

from sshchat.chat.member import Member
from sshchat.chat.moderation import Moderation, until_text
from sshchat.chat.names import InvalidName, check_name
from sshchat.chat.presence import Presence
from sshchat.chat.ratelimit import Offences
from sshchat.chat.refusals import Reason, Refusal, reason_code
from sshchat.chat.registry import NameRegistry
from sshchat.chat.telemetry import ChatCounts


class JoinRefused(Exception):
    """A login that may not join; ``str()`` is the reason to show the client,
    ``code`` (chat/refusals.py) the reason for a log or a count."""

    @property
    def code(self) -> Refusal:
        return reason_code(self)


class Admission:
    """The checks at the door; it lets nobody in itself (the hub does)."""

    def __init__(
        self, moderation: Moderation, names: NameRegistry, presence: Presence, offences: Offences,
        counts: ChatCounts | None = None,
    ) -> None:
        self._moderation = moderation
        self._names = names
        self._presence = presence
        self.offences = offences
        self.counts = counts or ChatCounts()  # refusals, by reason code (for --metrics)

    def screen_address(self, address: str) -> str | None:
        """Why a connection from ``address`` is turned away at once, if it is."""
        until = self.offences.blocked_until(address)
        if until is not None:
            return Reason(
                Refusal.BLOCKED, f"too many refused logins or floods from your address; try again{until_text(until)}"
            )
        return None  # address bans wait for the key: admins pass them

    def person(self, name: str, fingerprint: str | None, address: str) -> Member | None:
        """Check a person's login; return the session it replaces, if any.

        The same name with the same key replaces the old session (a dropped
        connection must never leave a ghost that holds the name).
        Raises JoinRefused with the reason to show them.
        """
        try:
            self._check(name, fingerprint, address)
            old = self._presence.find(name)
            if old is not None and (fingerprint is None or old.fingerprint != fingerprint):
                raise JoinRefused(Reason(
                    Refusal.NAME_TAKEN,
                    f'the name "{old.name}" is already in use; connect with another name: ssh OTHERNAME@host',
                ))
        except JoinRefused as e:
            self.offences.record(address)
            self.counts.refuse(e)
            raise
        return old

    def visitor(self, name: str, fingerprint: str | None, address: str) -> None:
        """Check a bot's login (say, tail, who): the same rules, and a name in
        use online only with the same key. Raises JoinRefused."""
        try:
            self._check(name, fingerprint, address)
            online = self._presence.find(name)
            if online is not None and (fingerprint is None or online.fingerprint != fingerprint):
                raise JoinRefused(Reason(Refusal.NAME_TAKEN, f'the name "{online.name}" is in use by someone online'))
        except JoinRefused as e:
            self.offences.record(address)
            self.counts.refuse(e)
            raise

    def _check(self, name: str, fingerprint: str | None, address: str) -> None:
        refusal = self.screen_address(address)
        if refusal:
            raise JoinRefused(refusal)
        try:
            check_name(name)
        except InvalidName as e:
            raise JoinRefused(Reason(Refusal.INVALID_NAME, str(e))) from None
        ban = self._moderation.ban_for(fingerprint, address)
        if ban is not None and fingerprint not in self._moderation.admins:
            raise JoinRefused(Reason(
                Refusal.BANNED, f"you are banned{until_text(ban.until)}: {ban.reason or 'no reason given'}"
            ))
        if not self._moderation.admits(fingerprint):
            yours = f"your key is {fingerprint}" if fingerprint else "you connected without a key"
            raise JoinRefused(Reason(Refusal.ALLOWLIST, f"this server admits only keys on its allowlist; {yours}"))
        refusal = self._names.refusal(name, fingerprint)
        if refusal:
            raise JoinRefused(Reason(Refusal.NAME_REGISTERED, refusal))
        refusal = self._presence.lookalike(name)
        if refusal:
            raise JoinRefused(Reason(Refusal.LOOK_ALIKE, refusal))
