"""The client's IP address, as risk rules should see it.

The peer of the connection is the client, unless the peer is one of the proxies the
deployment configured as trusted (a load balancer in front of the app): then the
client is the right-most address of `X-Forwarded-For` that is not a trusted proxy.
Addresses to the left of it are whatever the client wrote, so they are never used,
and without a configured proxy the header is ignored altogether (anyone can send it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `192.0.2.7` or `::1` each; raises ValueError naming a bad one."""
    out = []
    for spec in specs:
        try:
            out.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{spec!r} is not an IP address or network") from None
    return tuple(out)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_ip(remote: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address: `remote` (the peer) unless it is a trusted proxy, then the nearest
    hop of `forwarded_for` (walked from the right) that is not one. A hop that is not an IP
    address ends the walk at the last address that was trustworthy."""
    if remote is None or not trusted or not _trusted(remote, trusted):
        return remote
    client = remote
    for hop in reversed((forwarded_for or "").split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client
        client = hop
        if not _trusted(hop, trusted):
            return hop
    return client
