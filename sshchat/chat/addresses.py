"""Addresses as every per-address rule sees them.

One mapping from a source address to the keys it counts under serves them
all: arrivals, open connections, offences and their blocks, and the network
a keyless ban covers. Were each rule to make its own, one would forget IPv6
and a single /64 (18 quintillion addresses, all one host's) would walk
around it.
"""

from __future__ import annotations

import ipaddress


def normalise_address(address: str) -> str:
    """An IPv4 address seen as ::ffff:a.b.c.d is the IPv4 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def parse_network(text: str) -> str | None:
    """Canonical "ADDR/PREFIX" for an address or range; None if invalid."""
    address, slash, prefix = text.partition("/")
    try:
        return str(ipaddress.ip_network(normalise_address(address) + slash + prefix, strict=False))
    except ValueError:
        return None


NETWORK_SHARE = 10  # an IPv6 /48 (a site) may hold this many times what one /64 may


def address_keys(address: str) -> tuple[str, str | None]:
    """Under which keys every per-address limit counts ``address``.

    An IPv4 address (also when seen as ::ffff:a.b.c.d) is one; an IPv6
    address counts as its /64 (one host's usual allotment, which it can walk
    through at will) and, second, as the /48 around it (a site's, holding
    65,536 /64s), which shares ``NETWORK_SHARE`` times the allowance. Both
    keys are canonical networks ("2001:db8::/64"), so a ban can use them too.
    Anything that is not an address (a test's label) is its own key.
    """
    try:
        ip = ipaddress.ip_address(normalise_address(address))
    except ValueError:
        return address, None
    if ip.version == 6:
        return (
            str(ipaddress.ip_network(f"{ip}/64", strict=False)),
            str(ipaddress.ip_network(f"{ip}/48", strict=False)),
        )
    return str(ip), None


def address_network(address: str) -> str:
    """The network a keyless ban of ``address`` covers: the IPv4 address
    ("203.0.113.7/32") or the IPv6 /64; the text itself if not an address."""
    host, _ = address_keys(address)
    return parse_network(host) or host
