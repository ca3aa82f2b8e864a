"""Commands of operators (and, for /kick, of a room's creator): kicks, bans,
mutes, operators, names, the allowlist and the audit log.

Every action is kept in the audit log; admins from --admin-keys are out of
reach of operators made at runtime.
"""

from __future__ import annotations

from sshchat.chat.commands.common import (
    FINGERPRINT_PREFIX,
    IP_PREFIX,
    count_arg,
    duration_and_reason,
    echo,
    gather,
    not_a_fingerprint,
    not_saved,
    parse_fingerprint,
    protected,
    resolve_key,
)
from sshchat.chat.commands.core import Core
from sshchat.chat.logged import iso_time
from sshchat.chat.member import Member, identity
from sshchat.chat.moderation import address_network, address_target, parse_network, until_text, when
from sshchat.chat.names import NAME_RE, name_key
from sshchat.chat.sanitize import clean
from sshchat.chat.store import AuditEntry, Ban, Mute

# Lists of what was kept (/banned, /audit, /allow list) clean each field as
# they print it: what this version keeps is checked on the way in, but a
# store written by an older one may hold text as it was typed.


def kick(core: Core, member: Member, args: list[str], rest: str) -> None:
    is_op = core.is_op(member)
    if not is_op and not core.may_manage(member, core.room_of(member)):
        member.outlet.notice("only operators, and the creator of a room (in that room), can /kick")
        return
    target = core.find(args[0])
    if target is None:
        member.outlet.notice(f"no one called {echo(args[0])} is online")
        return
    reason = " ".join(args[1:])  # checked where it is shown (the rooms read it)
    if protected(core, member, target.fingerprint, target.name):
        return
    if is_op:
        core.kick(member, target, reason)
    else:
        core.remove_from_room(member, target, reason)


KEY_PREFIX = "key:"  # "fingerprint:" is its synonym, as in every other command


def _typed_network(text: str) -> str | None:
    """The network ``ip:TEXT`` names: a range as given, or for one address
    the network that counts as one address everywhere (an IPv6 /64, which
    its holder can walk through at will); None if it is neither."""
    return parse_network(text if "/" in text else address_network(text))


def _ban_targets(core: Core, member: Member, target: str) -> tuple[list[tuple[str, str]], str] | None:
    """What ``/ban TARGET`` turns away, as (kind, value) pairs, and how to
    name it to the operator; None when the operator was told why not.

    A person (online, or a registered name) loses their key and, when we
    know it, their address network too: with the key alone they would be
    back at once under a fresh key or none. For someone offline, that is the
    address they last came from, if they left recently (kept in memory for
    a day, not across a restart); otherwise their key alone. A keyless person
    who left recently, by the name they had, loses that address. ``key:``/
    ``ip:`` ban one thing.
    """
    if target.startswith(IP_PREFIX):
        network = _typed_network(target[len(IP_PREFIX) :])
        if network is None:
            member.outlet.notice("an address looks like ip:203.0.113.7 or ip:203.0.113.0/24")
            return None
        return [("ip", network)], network
    if target.startswith(KEY_PREFIX):
        target = FINGERPRINT_PREFIX + target[len(KEY_PREFIX) :]
    if not target.startswith(FINGERPRINT_PREFIX) and core.find(target) is None and core.binding(target) is None:
        gone_from = core.last_address(identity(None, name_key(target))) if NAME_RE.fullmatch(target) else None
        if gone_from is not None:  # a keyless person who just left: the name is nobody's, the address theirs
            network = _typed_network(gone_from)
            if network is not None:
                return [("ip", network)], f"{target} (gone, no key, so the address they came from {network})"
    fp, online, label = resolve_key(core, member, target)
    if not label or protected(core, member, fp, label):
        return None
    address = online.address if online is not None else None
    if online is None and fp is not None and not target.startswith(FINGERPRINT_PREFIX):
        address = core.last_address(identity(fp, ""))  # offline: where they were last, if just gone
    network = _typed_network(address) if address else None
    if target.startswith(FINGERPRINT_PREFIX) or (fp is not None and network is None):
        return ([("fingerprint", fp)], label) if fp is not None else None
    if network is None:
        member.outlet.notice(f"{label} has no key and no address to ban; use ip:ADDR")
        return None
    if fp is None:
        return [("ip", network)], f"{label} (no key, so their address {network})"
    return [("fingerprint", fp), ("ip", network)], f"{label} (their key and their address {network})"


def ban(core: Core, member: Member, args: list[str], rest: str) -> None:
    target, *more = args
    until, typed = duration_and_reason(more)
    reason = core.on_behalf(member, typed, "give a reason for a ban")
    if reason is None:
        return
    found = _ban_targets(core, member, target)
    if found is None:
        return
    targets, label = found
    now = core.now()
    # One moment, author, end and reason for all: that is what ties a key's
    # ban to its address's for /unban NAME.
    made = [Ban(kind, value, now + until if until else None, reason, member.name, now) for kind, value in targets]
    detail = reason + (f" for {args[1]}" if until else "")

    def saved(kept: list[bool]) -> None:
        # Told, audited and enforced only once durable (the disconnects
        # happen in core.ban); what was not kept did not happen.
        if not any(kept):
            not_saved(member, f"the ban on {label}")
            return
        for banned_one, ok in zip(made, kept, strict=True):
            if ok:
                core.audit(
                    member, "ban", f"{banned_one.kind}:{banned_one.value}", detail,
                    reason=reason or None, until=iso_time(banned_one.until), duration=args[1] if until else None,
                )
        if all(kept):
            member.outlet.notice(f"banned {label}{until_text(made[0].until)}")
            return
        lost = " and ".join(f"{b.kind}:{clean(b.value)}" for b, ok in zip(made, kept, strict=True) if not ok)
        member.outlet.notice(f"banned {label}{until_text(made[0].until)}, but the ban on {lost} was not saved")

    one = gather(len(made), saved)
    for index, banned_one in enumerate(made):
        core.ban(member, banned_one, one(index))


def _kept_ban(core: Core, member: Member, target: str) -> tuple[str, str] | None:
    """The (kind, value) that ``/unban key:...|fingerprint:...|ip:...`` names."""
    if target.startswith(KEY_PREFIX):
        target = FINGERPRINT_PREFIX + target[len(KEY_PREFIX) :]
    kind, _, typed = target.partition(":")
    # A ban as /banned shows it lifts it, even one an older version kept raw.
    kept = next((b for b in core.bans() if b.kind == kind and typed in (b.value, clean(b.value))), None)
    if kept is not None:
        return kind, kept.value
    if kind == "ip":
        value = _typed_network(typed)
        if value is None:
            member.outlet.notice(f"not an address: {echo(typed, 60)}; use ip:203.0.113.7 or ip:203.0.113.0/24")
        return None if value is None else (kind, value)
    value = parse_fingerprint(typed)
    if value is None:
        not_a_fingerprint(member, typed)
    return None if value is None else (kind, value)


def unban(core: Core, member: Member, args: list[str], rest: str) -> None:
    """Lift a ban; ``/unban NAME`` lifts their key's ban and the address ban
    made with it."""
    target = args[0]
    if target.startswith((IP_PREFIX, FINGERPRINT_PREFIX, KEY_PREFIX)):
        found = _kept_ban(core, member, target)
        if found is None:
            return
        kind, value = found
    else:
        binding = core.binding(target)
        kind, value = "fingerprint", binding.fingerprint if binding else ""
    bans = core.bans()
    kept = next((b for b in bans if (b.kind, b.value) == (kind, value)), None)
    lifted = [] if kept is None else [kept]
    if kept is not None and not target.startswith((IP_PREFIX, FINGERPRINT_PREFIX, KEY_PREFIX)):
        # The address ban /ban NAME made with the key's: same moment, author,
        # end and reason (so the link survives a restart with no new field).
        lifted += [
            b for b in bans
            if b.kind == "ip" and (b.time, b.by, b.until, b.reason) == (kept.time, kept.by, kept.until, kept.reason)
        ]
    if not lifted:
        member.outlet.notice(f"no ban on {echo(target, 60)}; see /banned")
        return

    def saved(kept: list[bool]) -> None:
        done = [b for b, ok in zip(lifted, kept, strict=True) if ok]
        if not done:
            not_saved(member, f"lifting the ban on {' and '.join(clean(b.value) for b in lifted)}")
            return
        for b in done:
            core.audit(member, "unban", f"{b.kind}:{b.value}")
        lost = [clean(b.value) for b, ok in zip(lifted, kept, strict=True) if not ok]
        tail = f"; lifting the ban on {' and '.join(lost)} was not saved" if lost else ""
        member.outlet.notice(f"lifted the ban on {' and '.join(clean(b.value) for b in done)}{tail}")

    one = gather(len(lifted), saved)
    for index, b in enumerate(lifted):
        core.unban(b.kind, b.value, one(index))


def banned(core: Core, member: Member, args: list[str], rest: str) -> None:
    bans = core.bans()
    if not bans:
        member.outlet.notice("no bans")
        return
    member.outlet.notice(f"{len(bans)} bans:")
    for b in bans:
        member.outlet.notice(
            f"  {b.kind}:{clean(b.value)} by {clean(b.by)} on {when(b.time)}, "
            f"{'until ' + when(b.until) if b.until else 'until lifted'}"
            + (f": {clean(b.reason)}" if b.reason else "")
        )


def mute(core: Core, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = resolve_key(core, member, args[0])
    if not label or protected(core, member, fp, label):
        return
    # The person: their key, or a keyless person's session; never a name,
    # which someone else may take once they rename or leave.
    target = online.person if online is not None else identity(fp, name_key(label))
    until, typed = duration_and_reason(args[1:])
    reason = core.on_behalf(member, typed, "give a reason for a mute")
    if reason is None:
        return
    now = core.now()
    muted = Mute(target, now + until if until else None, reason, member.name, now)

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"the mute on {label}")
            return
        audited = target if fp else f"{label} ({target}, no key)"
        core.audit(
            member, "mute", audited, " ".join(w for w in (reason, f"for {args[1]}" if until else "") if w),
            reason=reason or None, until=iso_time(muted.until), duration=args[1] if until else None,
        )
        member.outlet.notice(f"muted {label}{until_text(muted.until)}")
        if online is not None:
            online.muted_reminded = now  # told now; no reminder on their next line
            online.outlet.notice(
                f"you were muted by {member.name}{until_text(muted.until)}: nobody else sees your messages"
            )

    # A keyless person's address is held muted as long: a new session
    # (they reconnect) must not shed it.
    core.mute(muted, saved, online.address if online is not None and online.fingerprint is None else None)


def _keyless_gone(core: Core, name: str) -> str | None:
    """The mute to lift for a keyless person called ``name`` who has left:
    the one their address holds (their session's own mute ended with it),
    found by where they came from; or one an older version kept by name."""
    by_name = identity(None, name_key(name))
    if core.mute_of(by_name):
        return by_name
    left_from = core.last_address(by_name)
    if left_from and core.mute_of(address_target(left_from)):
        return address_target(left_from)
    return None


def unmute(core: Core, member: Member, args: list[str], rest: str) -> None:
    gone = None
    if not args[0].startswith(FINGERPRINT_PREFIX) and core.find(args[0]) is None:
        gone = _keyless_gone(core, args[0])
    if gone is not None:
        target, online, label = gone, None, echo(args[0], 16)  # a keyless person, offline
    else:
        fp, online, label = resolve_key(core, member, args[0])
        if not label:
            return
        target = online.person if online is not None else identity(fp, name_key(label))

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"unmuting {label}")
            return
        core.audit(member, "unmute", target)
        member.outlet.notice(f"unmuted {label}")
        if online is not None:
            online.outlet.notice(f"you were unmuted by {member.name}")

    address = online.address if online is not None and online.fingerprint is None else None
    if core.unmute(target, saved, address) is None:
        member.outlet.notice(f"{label} is not muted")


def op(core: Core, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = resolve_key(core, member, args[0])
    if not label:
        return
    if fp is None:
        member.outlet.notice(f"{label} has no key; only people with a key can be operators")
        return

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"making {label} an operator")
            return
        core.audit(member, "op", fp, label)
        member.outlet.notice(f"{label} is now an operator")
        if online is not None:
            online.outlet.notice(f"{member.name} made you an operator; /help lists your new commands")

    if not core.grant_op(fp, member.name, saved):
        member.outlet.notice(f"{label} is already an operator")


def deop(core: Core, member: Member, args: list[str], rest: str) -> None:
    fp, online, label = resolve_key(core, member, args[0])
    if not label:
        return
    if fp is not None and core.is_admin(fp):
        member.outlet.notice(f"{label} is an admin from the server's --admin-keys file; change it there")
        return

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"removing {label}'s operator status")
            return
        core.audit(member, "deop", fp or "", label)
        member.outlet.notice(f"{label} is no longer an operator")
        if online is not None:
            online.outlet.notice(f"{member.name} removed your operator status")

    if fp is None or not core.revoke_op(fp, saved):
        member.outlet.notice(f"{label} is not an operator")


def unregister(core: Core, member: Member, args: list[str], rest: str) -> None:
    found = core.binding(args[0])
    if found is None:
        member.outlet.notice(f"{echo(args[0])} is not registered")
        return
    binding = found  # (a name a closure can see as not None)

    def saved(ok: bool) -> None:
        if not ok:
            not_saved(member, f"releasing the name {binding.name}")
            return
        core.audit(member, "unregister", binding.name, binding.fingerprint)
        member.outlet.notice(f"released the name {binding.name} (was {binding.fingerprint})")

    core.release_name(args[0], saved)


def allow(core: Core, member: Member, args: list[str], rest: str) -> None:
    allowed = core.allowlist()
    if allowed is None:
        member.outlet.notice("the allowlist is off; start the server with --allowlist FILE to use it")
        return
    action = args[0].lower()
    if action == "list":
        member.outlet.notice(f"{len(allowed)} keys on the allowlist (admins are always let in):")
        for key in sorted(allowed):
            member.outlet.notice(f"  {clean(key)} ({allowed[key]})")
        return
    if action not in ("add", "remove") or len(args) < 2:
        member.outlet.notice("usage: /allow add|remove NAME|fingerprint:SHA256:... or /allow list")
        return
    fp, _, label = resolve_key(core, member, args[1])
    if not label:
        return
    if fp is None:
        member.outlet.notice(f"{label} has no key; the allowlist holds keys")
        return

    def saved(ok: bool) -> None:
        doing = "adding" if action == "add" else "removing"
        if not ok:
            not_saved(member, f"{doing} {label} {'to' if action == 'add' else 'from'} the allowlist")
            return
        core.audit(member, f"allow {action}", fp or "", label)
        if action == "add":
            member.outlet.notice(f"added {label} to the allowlist")
        else:
            member.outlet.notice(f"removed {label} from the allowlist")

    if action == "add":
        core.allow(fp, member.name, saved)
    elif not core.disallow(fp, saved):
        note = " (it is in the file; edit the file)" if allowed.get(fp) == "file" else ""
        member.outlet.notice(f"{label} was not added at runtime{note}")


def audit(core: Core, member: Member, args: list[str], rest: str) -> None:
    most = core.settings.history_per_call
    count = count_arg(args, 20, most)
    if count is None:
        member.outlet.notice(f"usage: /audit [N] (N from 1 to {most})")
        return

    def show(entries: list[AuditEntry]) -> None:
        member.outlet.notice(f"the last {len(entries)} moderation actions:")
        for e in entries:
            detail = f": {clean(e.detail)}" if e.detail else ""
            member.outlet.notice(f"  {when(e.time)} {clean(e.actor)} {clean(e.action)} {clean(e.target)}{detail}")

    core.audit_log(count, show)
