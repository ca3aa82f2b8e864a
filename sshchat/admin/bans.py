"""Which kept bans ``sshchat admin unban TARGET`` lifts: the rules of the chat's /unban.

``/unban`` (chat/commands/moderation.py) works on the running server's
memory; the tool works on the database, so the same rules are applied here
to the bans as kept: a NAME lifts the ban on the key it is registered to,
and the address bans /ban NAME made with it (same moment, author, end and
reason); ``fingerprint:``/``key:`` (or a bare ``SHA256:...``) one key;
``ip:`` (or a bare address or network) one address ban, an address
counting as the network a ban of it covers (IPv4 /32, IPv6 /64).
"""

from __future__ import annotations

from sshchat.chat.addresses import address_network, parse_network
from sshchat.chat.names import name_key
from sshchat.chat.sanitize import clean
from sshchat.chat.store import Ban, Binding

_KEY_PREFIXES = ("fingerprint:", "key:")


def lifted_by(target: str, bans: list[Ban], bindings: dict[str, Binding]) -> list[Ban]:
    """The kept bans ``target`` names (none: nothing to lift)."""
    kind, value = _named(target)
    if kind == "name":
        binding = bindings.get(name_key(value))
        if binding is None:
            return []
        kept = next((b for b in bans if (b.kind, b.value) == ("fingerprint", binding.fingerprint)), None)
        if kept is None:
            return []
        return [kept] + [
            b for b in bans
            if b.kind == "ip" and (b.time, b.by, b.until, b.reason) == (kept.time, kept.by, kept.until, kept.reason)
        ]
    for b in bans:  # as /banned shows it, even a value an older version kept raw
        if b.kind == kind and value in (b.value, clean(b.value)):
            return [b]
    if kind == "ip":
        network = parse_network(value if "/" in value else address_network(value))
        return [b for b in bans if b.kind == "ip" and b.value == network]
    return []


def _named(target: str) -> tuple[str, str]:
    """(kind, value): "fingerprint", "ip" or "name"."""
    for prefix in _KEY_PREFIXES:
        if target.startswith(prefix):
            return "fingerprint", target[len(prefix):]
    if target.startswith("ip:"):
        return "ip", target[3:]
    if target.startswith("SHA256:"):
        return "fingerprint", target
    if parse_network(target) is not None:  # no name has a dot or a colon
        return "ip", target
    return "name", target
