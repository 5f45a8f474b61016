"""The webhook target policy (SSRF guard), as a table: every spelling of an inside address is
refused, with the reason named; public https targets pass; the development setting lets exactly
loopback, private and local names through over http, and nothing else."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kernel.netguard import (
    NameNotFound,
    Refusal,
    TargetPolicy,
    TargetRefused,
    address_refusal,
    check_url,
    vet,
)

STRICT = TargetPolicy()
DEV = TargetPolicy.from_setting(True)

# (url, reason under the strict policy, reason under the development setting or None: allowed)
TABLE: list[tuple[str, Refusal, Refusal | None]] = [
    # the URL, and the metadata service in every spelling the C resolver accepts
    ("http://169.254.169.254/latest/meta-data/", Refusal.METADATA, Refusal.METADATA),
    ("https://169.254.169.254/latest/meta-data/", Refusal.METADATA, Refusal.METADATA),
    ("https://2852039166/", Refusal.METADATA, Refusal.METADATA),  # one decimal number
    ("https://0xA9FEA9FE/", Refusal.METADATA, Refusal.METADATA),  # one hex number
    ("https://0xA9.0xFE.0xA9.0xFE/", Refusal.METADATA, Refusal.METADATA),
    ("https://0251.0376.0251.0376/", Refusal.METADATA, Refusal.METADATA),  # octal
    ("https://169.254.43518/", Refusal.METADATA, Refusal.METADATA),  # short form: last part fills 2 bytes
    ("https://169.16689662/", Refusal.METADATA, Refusal.METADATA),
    ("https://169.254.169.254./", Refusal.METADATA, Refusal.METADATA),  # trailing dot
    ("https://[::ffff:169.254.169.254]/", Refusal.METADATA, Refusal.METADATA),  # IPv4-mapped IPv6
    ("https://[::ffff:a9fe:a9fe]/", Refusal.METADATA, Refusal.METADATA),
    ("https://[64:ff9b::a9fe:a9fe]/", Refusal.METADATA, Refusal.METADATA),  # NAT64
    ("https://[2002:a9fe:a9fe::1]/", Refusal.METADATA, Refusal.METADATA),  # 6to4
    ("https://[fd00:ec2::254]/", Refusal.METADATA, Refusal.METADATA),  # AWS over IPv6
    ("https://100.100.100.200/", Refusal.METADATA, Refusal.METADATA),  # Alibaba
    ("https://metadata.google.internal/computeMetadata/v1/", Refusal.METADATA, Refusal.METADATA),
    ("https://METADATA.google.internal./", Refusal.METADATA, Refusal.METADATA),
    ("https://metadata/", Refusal.METADATA, Refusal.METADATA),
    # link-local, loopback, private, shared, unspecified
    ("https://169.254.1.1/", Refusal.LINK_LOCAL, Refusal.LINK_LOCAL),
    ("https://[fe80::1]/", Refusal.LINK_LOCAL, Refusal.LINK_LOCAL),
    ("https://[fe80::1%25eth0]/", Refusal.LINK_LOCAL, Refusal.LINK_LOCAL),
    ("https://127.0.0.1/", Refusal.LOOPBACK, None),
    ("https://127.1/", Refusal.LOOPBACK, Refusal.NON_CANONICAL_IP),
    ("https://2130706433/", Refusal.LOOPBACK, Refusal.NON_CANONICAL_IP),
    ("https://0x7f.1/", Refusal.LOOPBACK, Refusal.NON_CANONICAL_IP),
    ("https://017700000001/", Refusal.LOOPBACK, Refusal.NON_CANONICAL_IP),
    ("https://[::1]/", Refusal.LOOPBACK, None),
    ("https://[::ffff:127.0.0.1]/", Refusal.LOOPBACK, None),
    ("https://[0:0:0:0:0:ffff:7f00:1]/", Refusal.LOOPBACK, None),
    ("https://localhost/", Refusal.INTERNAL_NAME, None),
    ("https://LocalHost./", Refusal.INTERNAL_NAME, None),
    ("https://api.localhost/", Refusal.INTERNAL_NAME, None),
    ("https://redis/", Refusal.INTERNAL_NAME, None),  # a single label: the search domain's hosts
    ("https://db.internal/", Refusal.INTERNAL_NAME, None),
    ("https://printer.local/", Refusal.INTERNAL_NAME, None),
    ("https://10.0.0.1/", Refusal.PRIVATE, None),
    ("https://172.16.5.4/", Refusal.PRIVATE, None),
    ("https://192.168.1.1/", Refusal.PRIVATE, None),
    ("https://100.64.0.1/", Refusal.PRIVATE, None),  # carrier-grade NAT
    ("https://[fd12:3456::1]/", Refusal.PRIVATE, None),  # unique local
    ("https://[::ffff:10.0.0.1]/", Refusal.PRIVATE, None),
    ("https://0.0.0.0/", Refusal.UNSPECIFIED, Refusal.UNSPECIFIED),
    ("https://0/", Refusal.UNSPECIFIED, Refusal.UNSPECIFIED),
    ("https://[::]/", Refusal.UNSPECIFIED, Refusal.UNSPECIFIED),
    # multicast, broadcast, reserved, documentation
    ("https://224.0.0.1/", Refusal.MULTICAST, Refusal.MULTICAST),
    ("https://239.255.255.250/", Refusal.MULTICAST, Refusal.MULTICAST),
    ("https://[ff02::1]/", Refusal.MULTICAST, Refusal.MULTICAST),
    ("https://255.255.255.255/", Refusal.BROADCAST, Refusal.BROADCAST),
    ("https://240.0.0.1/", Refusal.RESERVED, Refusal.RESERVED),
    ("https://192.0.2.10/", Refusal.RESERVED, Refusal.RESERVED),
    ("https://[2001:db8::1]/", Refusal.RESERVED, Refusal.RESERVED),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", Refusal.RESERVED, Refusal.RESERVED),  # Teredo
    # malformed hosts, schemes, credentials
    ("https://1.2.3.256/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https://1.2.3.4.5/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https://08.1.1.1/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https://exa mple.com/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https://ex%41mple.com/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https://example.com:0/", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("https:///hook", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("file:///etc/passwd", Refusal.BAD_HOST, Refusal.BAD_HOST),
    ("ftp://example.com/", Refusal.SCHEME, Refusal.SCHEME),
    ("http://example.com/hook", Refusal.SCHEME, None),  # plain http: development only
    ("https://user:pass@example.com/", Refusal.CREDENTIALS, Refusal.CREDENTIALS),
    ("https://8.8.8.8./", Refusal.NON_CANONICAL_IP, Refusal.NON_CANONICAL_IP),
    ("https://134744072/", Refusal.NON_CANONICAL_IP, Refusal.NON_CANONICAL_IP),  # public, but spelled oddly
]

ALLOWED = [
    "https://example.com/hook",
    "https://hooks.example.com:8443/a/b?c=d",
    "https://8.8.8.8/",
    "https://[2606:4700:4700::1111]/",
    "https://bücher.example/",  # IDNA: checked as its punycode
]


@pytest.mark.parametrize(("url", "strict", "dev"), TABLE, ids=[row[0] for row in TABLE])
def test_every_spelling_of_an_inside_target_is_refused(url: str, strict: Refusal, dev: Refusal | None) -> None:
    with pytest.raises(TargetRefused) as refused:
        check_url(url, STRICT)
    assert refused.value.reason is strict
    if dev is None:
        check_url(url, DEV)
    else:
        with pytest.raises(TargetRefused) as refused:
            check_url(url, DEV)
        assert refused.value.reason is dev


@pytest.mark.parametrize("url", ALLOWED)
def test_public_https_targets_are_allowed(url: str) -> None:
    target = check_url(url, STRICT)
    assert target.port in (443, 8443)


def test_the_embedded_ipv4_address_decides_for_mapped_nat64_and_6to4_addresses() -> None:
    from ipaddress import ip_address

    assert address_refusal(ip_address("::ffff:8.8.8.8")) is None
    assert address_refusal(ip_address("64:ff9b::808:808")) is None
    assert address_refusal(ip_address("2002:808:808::1")) is None
    assert address_refusal(ip_address("2002:0a00:0001::1")) is Refusal.PRIVATE


class Names:
    """An injected resolver: a name's answers, one list per lookup (the last repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise NameNotFound(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


NAMES = Names({
    "169.254.169.254.nip.io": [["169.254.169.254"]],
    "a9fea9fe.rbndr.us": [["169.254.169.254"]],
    "inside.example.com": [["10.1.2.3"]],
    "loop.example.com": [["127.0.0.1"]],
    "v6loop.example.com": [["::1"]],
    "mapped.example.com": [["::ffff:169.254.169.254"]],
    "both.example.com": [["93.184.215.14", "10.0.0.7"]],  # one inside address refuses the name
    "multicast.example.com": [["224.0.0.251"]],
    "public.example.com": [["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]],
})


@pytest.mark.parametrize(("url", "reason"), [
    ("https://169.254.169.254.nip.io/latest/meta-data/", Refusal.METADATA),
    ("https://a9fea9fe.rbndr.us/", Refusal.METADATA),
    ("https://inside.example.com/", Refusal.PRIVATE),
    ("https://loop.example.com/", Refusal.LOOPBACK),
    ("https://v6loop.example.com/", Refusal.LOOPBACK),
    ("https://mapped.example.com/", Refusal.METADATA),
    ("https://both.example.com/", Refusal.PRIVATE),
    ("https://multicast.example.com/", Refusal.MULTICAST),
    ("https://nowhere.example.com/", Refusal.UNRESOLVABLE),
])
async def test_names_that_resolve_inside_are_refused(url: str, reason: Refusal) -> None:
    with pytest.raises(TargetRefused) as refused:
        await vet(url, STRICT, NAMES)
    assert refused.value.reason is reason


async def test_a_public_name_passes_with_every_address_it_resolves_to() -> None:
    target, addresses = await vet("https://public.example.com/hook", STRICT, NAMES)
    assert target.host == "public.example.com"
    assert [str(a) for a in addresses] == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]


async def test_address_literals_are_not_looked_up() -> None:
    names = Names({})
    _, addresses = await vet("https://8.8.8.8/", STRICT, names)
    assert [str(a) for a in addresses] == ["8.8.8.8"] and names.lookups == []
