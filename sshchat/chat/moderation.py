"""Operators, bans, mutes, the allowlist and the MOTD: who may do what.

State is in memory (loaded from the store at start). A change an operator
makes is saved first and applied only once the store says it is durable
(``then`` hears True); if it could not be kept, nothing changes and
``then`` hears False, so nobody is told of a ban a restart would forget.
Expiry is checked against the hub's clock when a ban or
mute is looked at, so tests move a fake clock instead of sleeping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from sshchat.chat.addresses import address_keys
from sshchat.chat.addresses import address_network as address_network
from sshchat.chat.addresses import normalise_address as normalise_address
from sshchat.chat.addresses import parse_network as parse_network
from sshchat.chat.logged import event
from sshchat.chat.sanitize import clean
from sshchat.chat.store import (
    Allow,
    AuditEntry,
    Ban,
    Deop,
    Disallow,
    Mute,
    Op,
    SetMotd,
    Snapshot,
    Store,
    Unban,
    Unmute,
)
from sshchat.chat.store import Change as Change

Then = Callable[[bool], None]
"""Hears True once a change is durable and applied, False if it was not saved."""

log = logging.getLogger("sshchat")

_DURATION_RE = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def when(t: float) -> str:
    """A moment as bans, mutes and /whois show it: "2026-11-25 14:00 UTC"."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def until_text(until: float | None) -> str:
    """" until 2026-11-25 14:00 UTC", or "" for no end."""
    return f" until {when(until)}" if until is not None else ""


def parse_duration(text: str) -> float | None:
    """Seconds in "30s", "10m", "2h", "7d", "1w"; None if it is not one."""
    m = _DURATION_RE.fullmatch(text.lower())
    if m is None or int(m.group(1)) == 0:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


def clean_motd(text: str | None) -> str | None:
    """The message of the day, each line cleaned as a message is (its indent kept).

    It comes from a file at start, from an operator, or from a store an older
    version wrote; everyone who joins is shown it, so nothing in it is raw.
    """
    if text is None:
        return None
    lines = [" " * (len(line) - len(line.lstrip(" "))) + clean(line) for line in text.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip("\n") or None


def _network(ban: Ban) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The range an address ban covers; None for a key's ban (or a value
    that is no range, which an older version may have kept)."""
    if ban.kind != "ip":
        return None
    try:
        return ipaddress.ip_network(ban.value, strict=False)
    except ValueError:
        return None


def address_target(address: str) -> str:
    """The mutes entry a keyless person's address holds: "address:203.0.113.7"
    or "address:2001:db8::/64" (as every per-address rule counts it)."""
    return "address:" + address_keys(address)[0]


def _in_memory_only(target: str) -> bool:
    """Mutes of keyless sessions and of addresses mean nothing after a restart."""
    return target.startswith(("session:", "address:"))


class Moderation:
    """The rules of who may join, who may speak, and who is an operator."""

    def __init__(
        self,
        snapshot: Snapshot,
        store: Store,
        clock: Callable[[], float],
        admins: Iterable[str] = (),
        allowlist: Iterable[str] | None = None,
        motd: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.admins = frozenset(admins)
        self.operators = dict(snapshot.operators)
        # Words an older version may have kept as typed are cleaned as they
        # are loaded: a ban's reason is told to whoever it turns away.
        self.bans: dict[tuple[str, str], Ban] = {}
        # Address bans by IP version, then prefix length, then network (as an
        # int): a login looks up each prefix length in use once, whatever the
        # number of bans; each range is parsed once, when it is banned.
        self._networks: dict[int, dict[int, dict[int, Ban]]] = {4: {}, 6: {}}
        for b in snapshot.bans:
            self._add_ban(dataclasses.replace(b, reason=clean(b.reason), by=clean(b.by)))
        self.mutes = {m.target: dataclasses.replace(m, reason=clean(m.reason), by=clean(m.by)) for m in snapshot.mutes}
        # None: everyone may connect. A set: only the keys in the file given
        # at start, plus those operators added at runtime, plus the admins.
        self.allowlist_file = None if allowlist is None else frozenset(allowlist)
        self.allowed = set(snapshot.allowed)
        self.motd = clean_motd(snapshot.motd)
        # Hears each mute or unmute kept in memory only (a keyless session's,
        # the address it holds): never saved, so the store cannot share it;
        # on a cluster's bus it is published as any saved change is, or a
        # keyless person would shed their mute by reconnecting on another node.
        self.share: Callable[[Change], None] | None = None
        if motd is not None and clean_motd(motd) != self.motd:
            # The file given at start wins, saved or not: it is read again
            # at every start.
            self.motd = clean_motd(motd)
            store.save(SetMotd(self.motd))

    # ------------------------------------------------------------ operators

    def is_op(self, fingerprint: str | None) -> bool:
        return fingerprint is not None and (
            fingerprint in self.admins or fingerprint in self.operators
        )

    def _durably(self, change: Change, apply: Callable[[], object], then: Then | None) -> None:
        """Save ``change``; apply it in memory only once it is durable."""

        def saved(error: Exception | None) -> None:
            if error is None:
                apply()
            else:
                log.warning("not applied, the store could not keep it: %s (%s)", type(change).__name__, error)
            if then is not None:
                then(error is None)

        self._store.save(change, saved)

    def grant(self, fingerprint: str, by: str, then: Then | None = None) -> None:
        self._durably(Op(fingerprint, by), lambda: self.operators.__setitem__(fingerprint, by), then)

    def revoke(self, fingerprint: str, then: Then | None = None) -> bool:
        """False (and ``then`` not called) if the key is no runtime operator."""
        if fingerprint not in self.operators:
            return False
        self._durably(Deop(fingerprint), lambda: self.operators.pop(fingerprint, None), then)
        return True

    # ----------------------------------------------------------------- bans

    def ban(self, ban: Ban, then: Then | None = None) -> None:
        self._durably(ban, lambda: self._add_ban(ban), then)

    def unban(self, kind: str, value: str, then: Then | None = None) -> Ban | None:
        """The ban lifted once durable; None (and ``then`` not called) if there is none."""
        ban = self.bans.get((kind, value))
        if ban is not None:
            self._durably(Unban(kind, value), lambda: self._drop_ban(kind, value), then)
        return ban

    def _add_ban(self, ban: Ban) -> None:
        self._drop_ban(ban.kind, ban.value)  # a ban made again replaces the old one
        self.bans[(ban.kind, ban.value)] = ban
        net = _network(ban)
        if net is not None:
            by_length = self._networks[net.version].setdefault(net.prefixlen, {})
            by_length[int(net.network_address)] = ban

    def _drop_ban(self, kind: str, value: str) -> None:
        ban = self.bans.pop((kind, value), None)
        net = None if ban is None else _network(ban)
        if net is None:
            return
        by_length = self._networks[net.version].get(net.prefixlen, {})
        if by_length.get(int(net.network_address)) is ban:  # (an odd old value may share its network)
            del by_length[int(net.network_address)]
        if not by_length:
            self._networks[net.version].pop(net.prefixlen, None)

    def _in_force(self, ban: Ban | None) -> Ban | None:
        """``ban`` if it has not run out; one that has is dropped on the way."""
        if ban is not None and ban.until is not None and ban.until <= self._clock():
            # Over either way: dropped now, the store told when it can.
            self._drop_ban(ban.kind, ban.value)
            self._store.save(Unban(ban.kind, ban.value))
            return None
        return ban

    def active_bans(self) -> list[Ban]:
        """Bans in force, oldest first; expired ones are dropped on the way."""
        for ban in list(self.bans.values()):
            self._in_force(ban)
        return sorted(self.bans.values(), key=lambda b: b.time)

    def ban_for(self, fingerprint: str | None, address: str) -> Ban | None:
        """The ban that turns this key or address away, if any (the oldest,
        if several do).

        Admins (--admin-keys) pass every ban: an address ban made for someone
        else on their network must not lock them out or end their session.
        The cost does not grow with the number of bans: the key's ban is one
        lookup, and the address is looked up once per prefix length in use.
        """
        if fingerprint is not None and fingerprint in self.admins:
            return None
        found = [] if fingerprint is None else [self._in_force(self.bans.get(("fingerprint", fingerprint)))]
        ip = None
        with contextlib.suppress(ValueError):  # not an address (tests, odd transports): key bans only
            ip = ipaddress.ip_address(normalise_address(address))
        if ip is not None:
            bits = ip.max_prefixlen
            for length, by_network in list(self._networks[ip.version].items()):
                network = int(ip) >> (bits - length) << (bits - length)
                found.append(self._in_force(by_network.get(network)))
        return min((b for b in found if b is not None), key=lambda b: b.time, default=None)

    def covers(self, ban: Ban, fingerprint: str | None, address: str) -> bool:
        """Does ``ban`` (in force) turn away this key or address? Admins pass."""
        if fingerprint is not None and fingerprint in self.admins:
            return False
        if ban.kind == "fingerprint":
            return ban.value == fingerprint
        net = _network(ban)
        try:
            ip = ipaddress.ip_address(normalise_address(address))
        except ValueError:
            return False
        return net is not None and ip.version == net.version and ip in net

    # ---------------------------------------------------------------- mutes

    def mute(self, mute: Mute, then: Then | None = None, address: str | None = None) -> None:
        """Mute a person: a key for good, a keyless session ("session:N")
        while it lasts (kept in memory only: it means nothing after a restart).

        A keyless person would shed their mute by reconnecting (a new
        session), so a keyless session's mute also holds its ``address``
        (the IPv4 address, or the IPv6 /64) for as long, in memory: whoever
        comes back from there without a key, under any name, is muted too.
        """
        if mute.target.startswith("session:"):
            mutes = [mute]
            if address:
                mutes.append(dataclasses.replace(mute, target=address_target(address)))
            for kept in mutes:
                self.mutes[kept.target] = kept
                if self.share is not None:
                    self.share(kept)
            if then is not None:
                then(True)
            return
        self._durably(mute, lambda: self.mutes.__setitem__(mute.target, mute), then)

    def unmute(self, target: str, then: Then | None = None, address: str | None = None) -> Mute | None:
        """The mute lifted once durable; None (and ``then`` not called) if there is none.

        For a keyless session, ``address`` lifts the mute its address holds too.
        """
        held = address_target(address) if address and target.startswith("session:") else None
        mute = self.mutes.get(target) or (self.mutes.get(held) if held else None)
        if mute is None:
            return None
        if held and self.mutes.pop(held, None) is not None and self.share is not None:
            self.share(Unmute(held))
        if _in_memory_only(target):
            if self.mutes.pop(target, None) is not None and self.share is not None:
                self.share(Unmute(target))
            if then is not None:
                then(True)
        else:
            self._durably(Unmute(target), lambda: self.mutes.pop(target, None), then)
        return mute

    def mute_of(self, target: str) -> Mute | None:
        mute = self.mutes.get(target)
        if mute is not None and mute.until is not None and mute.until <= self._clock():
            del self.mutes[target]  # over either way
            if not _in_memory_only(target):
                self._store.save(Unmute(target))
            return None
        return mute

    def in_memory_mutes(self) -> list[Mute]:
        """The mutes in force that are kept in memory only (keyless sessions'
        and the addresses they hold): what a node that (re)starts learns from
        the others, since no store has them."""
        return [m for m in list(self.mutes.values()) if _in_memory_only(m.target) and self.mute_of(m.target)]

    def mute_for(self, person: str, address: str) -> Mute | None:
        """The mute on ``person`` (Member.person); for a keyless person, also
        one their address holds (see ``mute``)."""
        mute = self.mute_of(person)
        if mute is None and person.startswith("session:") and address:
            mute = self.mute_of(address_target(address))
        return mute

    # ------------------------------------------------------------ allowlist

    def admits(self, fingerprint: str | None) -> bool:
        if self.allowlist_file is None:
            return True
        return fingerprint is not None and (
            fingerprint in self.allowlist_file
            or fingerprint in self.allowed
            or fingerprint in self.admins
        )

    def allow(self, fingerprint: str, by: str, then: Then | None = None) -> None:
        self._durably(Allow(fingerprint, by), lambda: self.allowed.add(fingerprint), then)

    def disallow(self, fingerprint: str, then: Then | None = None) -> bool:
        """False (and ``then`` not called) if the key was not added at runtime."""
        if fingerprint not in self.allowed:
            return False
        self._durably(Disallow(fingerprint), lambda: self.allowed.discard(fingerprint), then)
        return True

    # ------------------------------------------- another node's changes

    def adopt(self, change: Change) -> bool:
        """Apply a change another node made and saved (chat/state.py): in
        memory only, never saved again. False if it changed nothing here
        (it was here already), so a change applied twice does nothing twice."""
        if isinstance(change, Op):
            had = change.fingerprint in self.operators
            self.operators[change.fingerprint] = change.by
            return not had
        if isinstance(change, Deop):
            return self.operators.pop(change.fingerprint, None) is not None
        if isinstance(change, Ban):
            if self.bans.get((change.kind, change.value)) == change:
                return False
            self._add_ban(change)
            return True
        if isinstance(change, Unban):
            had = (change.kind, change.value) in self.bans
            self._drop_ban(change.kind, change.value)
            return had
        if isinstance(change, Mute):
            if self.mutes.get(change.target) == change:
                return False
            self.mutes[change.target] = change
            return True
        if isinstance(change, Unmute):
            return self.mutes.pop(change.target, None) is not None
        if isinstance(change, Allow):
            had = change.fingerprint in self.allowed
            self.allowed.add(change.fingerprint)
            return not had
        if isinstance(change, Disallow):
            had = change.fingerprint in self.allowed
            self.allowed.discard(change.fingerprint)
            return had
        if isinstance(change, SetMotd):
            changed = self.motd != change.text
            self.motd = change.text
            return changed
        return False

    # ------------------------------------------------------------ audit log

    def audit(
        self, actor: str, actor_fp: str | None, action: str, target: str, detail: str = "", **fields: Any
    ) -> None:
        """Keep a moderation action in the audit log (and the server log, as
        event ``moderation``: ``fields`` such as room, reason, until, duration)."""
        event(
            logging.INFO, "moderation", f"audit: {actor} {action} {target} {detail}",
            action=action, actor=actor, actor_fingerprint=actor_fp, target=target, detail=detail or None, **fields,
        )
        self._store.save(AuditEntry(self._clock(), actor, actor_fp, action, target, detail))

    # ----------------------------------------------------------------- motd

    def set_motd(self, text: str | None, then: Then | None = None) -> None:
        motd = clean_motd(text)
        self._durably(SetMotd(motd), lambda: setattr(self, "motd", motd), then)
