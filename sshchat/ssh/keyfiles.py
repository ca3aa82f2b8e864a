"""Read authorized_keys-format files (--admin-keys, --allowlist) into keys
and the conditions their lines put on them.

A line's options are honoured or the line is refused, never ignored: a
``from="10.0.0.1"`` admin key read as a plain key would be an admin from
anywhere. Honoured: ``from=`` (sshd's address patterns: wildcards, CIDR,
``!`` negation; no DNS, so host name patterns match nothing) and
``expiry-time=``, both checked at each login (and a session whose key's
expiry-time passes is ended then: session.py), and the options that only
take away what sshchat never gives (``restrict``, ``no-pty``,
``no-port-forwarding`` ...: it opens no pseudo-terminal device, forwards
nothing, runs no command or rc file). Any other option (``command=``,
``cert-authority``, ``environment=``, an unknown one ...) refuses the line,
with a warning naming the file and line; so does a bad line, so one typo
does not lock everyone out.
"""

from __future__ import annotations

import calendar
import ipaddress
import logging
import re
import time
from dataclasses import dataclass

import asyncssh

log = logging.getLogger("sshchat")

# Options that only withhold what sshchat never grants: honoured by doing nothing.
_NOTHING_TO_GRANT = frozenset({
    "restrict", "no-pty", "no-port-forwarding", "no-agent-forwarding",
    "no-x11-forwarding", "no-user-rc", "permitopen", "permitlisten",
})
# Options honoured by a check at each login.
_CHECKED = frozenset({"from", "expiry-time"})


class KeyFileError(Exception):
    """A key file that cannot be read at all."""


class _LineRefused(Exception):
    """A line that admits no key; ``str()`` says why."""


# ------------------------------------------------------------ from= patterns

def _wildcard(pattern: str) -> re.Pattern[str]:
    """sshd's match_pattern: ``*`` and ``?`` only, case-insensitive."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class _Source:
    """One entry of a ``from=`` list."""

    negated: bool
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # a CIDR entry
    wildcard: re.Pattern[str] | None  # otherwise an sshd wildcard on the address text

    def matches(self, address: str) -> bool:
        if self.network is not None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                return False
            return ip.version == self.network.version and ip in self.network
        assert self.wildcard is not None
        return self.wildcard.fullmatch(address) is not None


def parse_sources(patterns: str) -> tuple[_Source, ...]:
    """A ``from=`` list; ValueError for an entry sshd would also reject
    (empty, or a network with bits set after its prefix)."""
    sources = []
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        body = entry[1:] if negated else entry
        if not body:
            raise ValueError(f'empty entry in from="{patterns}"')
        network = None
        if re.fullmatch(r"[0-9A-Fa-f.:]+(/\d+)?", body) and any(c in body for c in ".:"):
            try:
                network = ipaddress.ip_network(body, strict=True)
            except ValueError:
                if "/" in body:  # sshd: "inconsistent mask length"
                    raise ValueError(f'bad network "{body}" in from="{patterns}"') from None
        sources.append(_Source(negated, network, None if network else _wildcard(body)))
    return tuple(sources)


def sources_admit(sources: tuple[_Source, ...], address: str) -> bool:
    """sshd's rule: a negated match refuses outright; else any match admits."""
    matched = False
    for source in sources:
        if source.matches(address):
            if source.negated:
                return False
            matched = True
    return matched


# ------------------------------------------------------------ expiry-time=

def parse_expiry(text: str) -> float:
    """sshd's expiry-time: YYYYMMDD[HHMM[SS]], local time, or UTC with a final Z."""
    utc = text[-1:] in ("Z", "z")
    digits = text[:-1] if utc else text
    if not digits.isdigit() or len(digits) not in (8, 12, 14):
        raise ValueError(f'bad expiry-time "{text}"')
    digits = digits.ljust(14, "0")
    try:
        parts = time.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        raise ValueError(f'bad expiry-time "{text}"') from None
    return float(calendar.timegm(parts) if utc else time.mktime(parts))


# ------------------------------------------------------------ lines

@dataclass(frozen=True)
class KeyLine:
    """One admitted line: a key, and when and from where it counts."""

    fingerprint: str
    where: str  # "FILE:LINE", for the log
    sources: tuple[_Source, ...] | None  # None: from any address
    expires: float | None  # None: never

    def admits(self, address: str, now: float) -> bool:
        if self.expires is not None and now >= self.expires:
            return False
        return self.sources is None or sources_admit(self.sources, address)


def _split_options(line: str) -> tuple[str, str]:
    """(options, the rest): options end at the first blank outside quotes."""
    quoted = False
    for i, c in enumerate(line):
        if c == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif c in " \t" and not quoted:
            return line[:i], line[i:].strip()
    if quoted:
        raise _LineRefused("unterminated quote in the options")
    return line, ""


_OPTION = re.compile(r'([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)")?(?:,|$)')


def _parse_options(text: str) -> list[tuple[str, str | None]]:
    """``name`` or ``name="value"`` entries, comma-separated."""
    options: list[tuple[str, str | None]] = []
    at = 0
    while at < len(text):
        m = _OPTION.match(text, at)
        if m is None or m.end() == at:
            raise _LineRefused(f"options sshchat cannot read: {text}")
        value = m.group(2)
        options.append((m.group(1).lower(), None if value is None else value.replace('\\"', '"')))
        at = m.end()
    return options


def _import_key(text: str) -> asyncssh.SSHKey | None:
    words = text.split()
    if len(words) < 2:
        return None
    try:
        return asyncssh.import_public_key(f"{words[0]} {words[1]}")
    except (asyncssh.KeyImportError, ValueError):
        return None


def _read_line(line: str, where: str) -> KeyLine:
    key = _import_key(line)
    options: list[tuple[str, str | None]] = []
    if key is None:
        option_text, rest = _split_options(line)
        key = _import_key(rest)
        if key is None:
            raise _LineRefused("not a public key")
        options = _parse_options(option_text)
    sources: tuple[_Source, ...] | None = None
    expires: float | None = None
    for name, value in options:
        if name in _NOTHING_TO_GRANT:
            continue
        if name not in _CHECKED:
            raise _LineRefused(f'option "{name}" is not supported by sshchat')
        if value is None:
            raise _LineRefused(f'option "{name}" needs a value')
        try:
            if name == "from":
                if sources is not None:
                    raise _LineRefused('option "from" given twice')
                sources = parse_sources(value)
            else:
                when = parse_expiry(value)
                expires = when if expires is None else min(expires, when)
        except ValueError as e:
            raise _LineRefused(str(e)) from None
    return KeyLine(key.get_fingerprint("sha256"), where, sources, expires)


class KeyFile:
    """The admitted lines of one key file."""

    def __init__(self, path: str, lines: list[KeyLine]) -> None:
        self.path = path
        self.lines = lines

    def fingerprints(self) -> set[str]:
        """Every key some line admits under some condition."""
        return {line.fingerprint for line in self.lines}

    def refusal(self, fingerprint: str, address: str, now: float) -> str | None:
        """Why this file's lines for this key do not hold for this login;
        None if one does, or if the file does not name the key at all."""
        lines = [line for line in self.lines if line.fingerprint == fingerprint]
        if not lines or any(line.admits(address, now) for line in lines):
            return None
        return f"{', '.join(line.where for line in lines)}: not from {address} or not any more (from=/expiry-time=)"

    def admitted_until(self, fingerprint: str, address: str, now: float) -> float | None:
        """When this file stops admitting the key from ``address`` (its
        lines' expiry-time): None if never, or if the file does not name it."""
        named = [line for line in self.lines if line.fingerprint == fingerprint]
        admitting = [line for line in named if line.admits(address, now)]
        if not named:
            return None
        if not admitting:
            return now
        ends = [line.expires for line in admitting]
        return None if None in ends else max(end for end in ends if end is not None)


def read_key_file(path: str) -> KeyFile:
    """The key file at ``path``; refused lines are logged with file:line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().splitlines()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    lines: list[KeyLine] = []
    for number, raw in enumerate(text, 1):
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            line = _read_line(raw, where)
        except _LineRefused as e:
            log.warning("%s: %s, skipped (its key is not admitted by this line)", where, e)
            continue
        if line.expires is not None and line.expires <= time.time():
            log.warning("%s: expired (expiry-time), skipped (its key is not admitted by this line)", where)
            continue
        lines.append(line)
    return KeyFile(path, lines)
