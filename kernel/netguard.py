"""Where our servers may send a webhook: the policy over URLs and IP addresses (SSRF guard).

A webhook URL is input from outside that our servers then connect to. Left alone, a merchant
could point it at the cloud metadata service (`http://169.254.169.254/...`), at Redis on the
private network, or at a name that resolves there, and read what answers. Only public unicast
addresses over `https` are allowed; `TargetPolicy(allow_http=True, allow_private=True)` (the
`webhooks_allow_private` setting) lets local development and the tests post to `http://127.0.0.1`.
Link-local (the metadata services), multicast, broadcast, unspecified and reserved addresses and
the known metadata names stay refused even then: nothing legitimate listens there.

Pure: the only I/O is the injected `Resolver` (`kernel.webhook_client` has the system one and the
aiohttp glue that connects to exactly the addresses checked here). Hosts are read the way the
HTTP client reads them (`yarl`), and every numeric spelling the C resolver accepts for IPv4
(`2852039166`, `0xA9.0xFE.0xA9.0xFE`, `0251.0376.0251.0376`, `169.254.43518`) is decoded and
checked as the address it means, then refused anyway unless it is the dotted-quad spelling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Protocol

from yarl import URL

from kernel.errors import DomainError, ValidationFailed

IPAddress = IPv4Address | IPv6Address


class Refusal(StrEnum):
    SCHEME = "scheme_not_allowed"
    CREDENTIALS = "credentials_in_url"
    BAD_HOST = "bad_host"
    INTERNAL_NAME = "internal_name"
    METADATA = "metadata_service"
    NON_CANONICAL_IP = "non_canonical_ip"
    LOOPBACK = "loopback_address"
    PRIVATE = "private_address"
    LINK_LOCAL = "link_local_address"
    MULTICAST = "multicast_address"
    BROADCAST = "broadcast_address"
    UNSPECIFIED = "unspecified_address"
    RESERVED = "reserved_address"
    UNRESOLVABLE = "unresolvable"


# What the development setting lets through; everything else is refused always.
_DEVELOPMENT_ONLY = frozenset({Refusal.LOOPBACK, Refusal.PRIVATE, Refusal.INTERNAL_NAME})


class TargetRefused(Exception):
    """A webhook target the policy refuses; `reason` is stable, the message is for people."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class WebhookUrlForbidden(ValidationFailed):
    """422 at registration: the URL may not receive webhooks (`reason` says why)."""

    code = "webhook_url_forbidden"

    @classmethod
    def of(cls, refused: TargetRefused) -> WebhookUrlForbidden:
        return cls(refused.message, param="url", extra={"reason": refused.reason.value})


class DnsUnavailable(DomainError):
    """503: the webhook URL's name could not be looked up right now (not: it does not exist)."""

    status = 503
    code = "dns_unavailable"


class NameNotFound(LookupError):
    """The resolver's answer for a name that does not exist (as opposed to a failed lookup)."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """The addresses `host` resolves to; `NameNotFound` when it does not exist, `OSError`
        when the lookup failed."""
        ...


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    allow_http: bool = False
    allow_private: bool = False

    @classmethod
    def from_setting(cls, webhooks_allow_private: bool) -> TargetPolicy:
        """The one setting switches both: local receivers are plain http on loopback."""
        return cls(allow_http=webhooks_allow_private, allow_private=webhooks_allow_private)

    def tolerates(self, reason: Refusal) -> bool:
        return self.allow_private and reason in _DEVELOPMENT_ONLY


@dataclass(frozen=True, slots=True)
class Target:
    url: URL
    host: str
    port: int
    ip: IPAddress | None  # the host was an address literal


# ---- addresses -------------------------------------------------------------------------------------

# Cloud metadata services that do not sit in link-local space (AWS IPv6, Alibaba, Oracle) and
# the ones that do, named so the log says "metadata" rather than "link-local".
_METADATA_ADDRESSES = frozenset(ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.253", "fd00:ec2::254", "fd00:ec2::253",
    "100.100.100.200", "192.0.0.192",
))

_V4_RULES: tuple[tuple[IPv4Network, Refusal], ...] = tuple((IPv4Network(n), r) for n, r in (
    ("0.0.0.0/8", Refusal.UNSPECIFIED),  # "this network": 0.0.0.0 connects to the local host
    ("10.0.0.0/8", Refusal.PRIVATE),
    ("100.64.0.0/10", Refusal.PRIVATE),  # carrier-grade NAT, shared address space
    ("127.0.0.0/8", Refusal.LOOPBACK),
    ("169.254.0.0/16", Refusal.LINK_LOCAL),
    ("172.16.0.0/12", Refusal.PRIVATE),
    ("192.0.0.0/24", Refusal.PRIVATE),  # IETF protocol assignments
    ("192.0.2.0/24", Refusal.RESERVED),  # documentation
    ("192.88.99.0/24", Refusal.RESERVED),  # 6to4 relay anycast (deprecated)
    ("192.168.0.0/16", Refusal.PRIVATE),
    ("198.18.0.0/15", Refusal.PRIVATE),  # benchmarking
    ("198.51.100.0/24", Refusal.RESERVED),
    ("203.0.113.0/24", Refusal.RESERVED),
    ("224.0.0.0/4", Refusal.MULTICAST),
    ("255.255.255.255/32", Refusal.BROADCAST),
    ("240.0.0.0/4", Refusal.RESERVED),
))

_V6_RULES: tuple[tuple[IPv6Network, Refusal], ...] = tuple((IPv6Network(n), r) for n, r in (
    ("::/128", Refusal.UNSPECIFIED),
    ("::1/128", Refusal.LOOPBACK),
    ("64:ff9b:1::/48", Refusal.PRIVATE),  # local-use NAT64
    ("100::/64", Refusal.RESERVED),  # discard-only
    ("2001::/23", Refusal.RESERVED),  # IETF protocol assignments, Teredo among them
    ("2001:db8::/32", Refusal.RESERVED),
    ("3fff::/20", Refusal.RESERVED),
    ("5f00::/16", Refusal.RESERVED),
    ("fc00::/7", Refusal.PRIVATE),  # unique local
    ("fe80::/10", Refusal.LINK_LOCAL),
    ("fec0::/10", Refusal.PRIVATE),  # site-local (deprecated)
    ("ff00::/8", Refusal.MULTICAST),
))
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries, where a packet to it would reach that IPv4 host:
    IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_refusal(ip: IPAddress) -> Refusal | None:
    """Why no webhook may go to `ip` (None: a public unicast address)."""
    if ip.version == 6 and ip.scope_id:  # type: ignore[union-attr]
        return Refusal.LINK_LOCAL  # a zone only means something on this host's own links
    if ip in _METADATA_ADDRESSES:
        return Refusal.METADATA
    if isinstance(ip, IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return address_refusal(inner)
        for net6, reason in _V6_RULES:
            if ip in net6:
                return reason
        if ip not in _GLOBAL_UNICAST:
            return Refusal.RESERVED
    else:
        for net4, reason in _V4_RULES:
            if ip in net4:
                return reason
    # The standard library's view as a second opinion (it knows a few more special blocks).
    return None if ip.is_global else Refusal.RESERVED


def check_address(ip: IPAddress, policy: TargetPolicy, host: str) -> None:
    reason = address_refusal(ip)
    if reason is not None and not policy.tolerates(reason):
        where = "this address" if str(ip) == host else f"{host}, which points to such an address"
        raise TargetRefused(reason, f"webhooks may not go to {where} ({reason.value})")


# ---- hosts ------------------------------------------------------------------------------------------

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_NUMBER_RE = {10: re.compile(r"^[0-9]+$"), 8: re.compile(r"^[0-7]+$"), 16: re.compile(r"^[0-9a-f]*$")}
_INTERNAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "arpa", "lan", "intranet",
                      "corp")
_METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal",
    "metadata.tencentyun.com", "metadata.platformequinix.com",
})


def _ipv4_part(part: str) -> int | None:
    """One dotted part as inet_aton reads it: 0x.. hex, 0.. octal, else decimal."""
    if part.startswith("0x"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not _NUMBER_RE[base].match(digits):
        return None
    return int(digits, base) if digits else 0


def numeric_ipv4(host: str) -> IPv4Address | None:
    """The address a host that ends in a number spells, the way the C resolver and the WHATWG URL
    parser read it (1 to 4 parts, the last filling the remaining bytes). TargetRefused(BAD_HOST) when
    it ends in a number but spells no address; None when it is a name."""
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    last = labels[-1]
    if not (_NUMBER_RE[10].match(last) or (last.startswith("0x") and _NUMBER_RE[16].match(last[2:]))):
        return None
    numbers = [_ipv4_part(p) for p in labels]
    if len(labels) > 4 or any(n is None for n in numbers):
        raise TargetRefused(Refusal.BAD_HOST, "the host looks like an IPv4 address but is not one")
    *head, tail = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or tail >= 256 ** (5 - len(labels)):
        raise TargetRefused(Refusal.BAD_HOST, "the host looks like an IPv4 address but is not one")
    value = tail
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return IPv4Address(value)


def _literal(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return IPv6Address(host.replace("%25", "%"))
        except ValueError:
            raise TargetRefused(Refusal.BAD_HOST, "the host is not a valid IPv6 address") from None
    return numeric_ipv4(host)


def _check_name(host: str, policy: TargetPolicy) -> None:
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not _NAME_RE.match(name):
        raise TargetRefused(Refusal.BAD_HOST, "the host is not a valid DNS name")
    if name in _METADATA_NAMES:
        raise TargetRefused(Refusal.METADATA, "webhooks may not go to a cloud metadata service")
    internal = "." not in name or any(name == s or name.endswith("." + s) for s in _INTERNAL_SUFFIXES)
    if internal and not policy.tolerates(Refusal.INTERNAL_NAME):
        raise TargetRefused(Refusal.INTERNAL_NAME, "webhooks go to public DNS names, not local or internal ones")


def check_url(raw: str, policy: TargetPolicy) -> Target:
    """The webhook URL as the HTTP client will read it, or TargetRefused. Checks everything that
    does not need DNS: scheme, credentials, the host's spelling, literal addresses, local names."""
    try:
        url = URL(raw)
        port = url.port
    except (ValueError, TypeError):
        raise TargetRefused(Refusal.BAD_HOST, "the URL cannot be parsed") from None
    host = url.raw_host
    if not url.absolute or not host or not port:
        raise TargetRefused(Refusal.BAD_HOST, "the URL needs a host and a port above 0")
    ip = _literal(host)  # where it points is the gravest reason, so it is named before the scheme
    if ip is None:
        _check_name(host, policy)
    else:
        check_address(ip, policy, host)
        if isinstance(ip, IPv4Address) and host != str(ip):
            raise TargetRefused(Refusal.NON_CANONICAL_IP, f"write the address as {ip}")
    if url.scheme not in (("https", "http") if policy.allow_http else ("https",)):
        raise TargetRefused(Refusal.SCHEME, "webhook URLs must use https")
    if url.raw_user is not None or url.raw_password is not None:
        raise TargetRefused(Refusal.CREDENTIALS, "webhook URLs may not carry credentials; the signature "
                                                 "authenticates us")
    return Target(url, host, port, ip)


async def resolve_checked(host: str, port: int, policy: TargetPolicy, resolver: Resolver) -> list[IPAddress]:
    """Every address `host` resolves to, each one allowed; TargetRefused when any is not (a name
    that also points inside is refused as a whole) or when the name does not exist."""
    try:
        answers = await resolver.resolve(host, port)
    except NameNotFound:
        raise TargetRefused(Refusal.UNRESOLVABLE, f"{host} does not resolve") from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            ip = ip_address(answer)
        except ValueError:
            raise TargetRefused(Refusal.BAD_HOST, f"{host} resolves to something that is not an address") from None
        check_address(ip, policy, host)
        addresses.append(ip)
    if not addresses:
        raise TargetRefused(Refusal.UNRESOLVABLE, f"{host} does not resolve")
    return addresses


async def vet(raw: str, policy: TargetPolicy, resolver: Resolver) -> tuple[Target, list[IPAddress]]:
    """`check_url`, then the addresses the host resolves to now, each checked."""
    target = check_url(raw, policy)
    if target.ip is not None:
        return target, [target.ip]
    return target, await resolve_checked(target.host, target.port, policy, resolver)
