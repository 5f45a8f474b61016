"""The one HTTP client that posts webhooks to URLs from outside (merchant and payment webhooks).

Every post goes through `kernel.netguard` twice over: the URL itself (scheme, credentials, host
spelling, address literals, local names) before the request, and the name's addresses at connect
time, by the aiohttp resolver below. That resolver looks the name up, refuses it when any address
is not allowed, and hands aiohttp exactly the addresses it checked, so the connection goes where
the check looked: a name that answered public at registration and answers `127.0.0.1` now (DNS
rebinding) is refused now, and no second lookup can differ from the checked one. Redirects are not
followed, proxies from the environment are not used, and the target's answer is never read: a
delivery records its status code, or an error from a short fixed list, never text from the target.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from kernel.netguard import (
    DnsUnavailable,
    NameNotFound,
    Refusal,
    Resolver,
    TargetPolicy,
    TargetRefused,
    WebhookUrlForbidden,
    check_url,
    resolve_checked,
)


class SystemResolver:
    """The operating system's resolver (getaddrinfo, in the loop's executor)."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                raise NameNotFound(host) from None
            raise
        return [str(info[4][0]) for info in infos]


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver for webhook sessions: answers only with addresses the policy allows."""

    def __init__(self, client: WebhookClient) -> None:
        self._client = client

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        addresses = await resolve_checked(host, port, self._client.policy, self._client.resolver)
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [ResolveResult(hostname=host, host=str(ip), port=port, proto=0, flags=flags,
                              family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET)
                for ip in addresses]

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Sent:
    """What one post came to: the status the target answered, or an error from a fixed list
    (`refused: <reason>`, `timeout`, `connection_failed`, `tls_failed`). `refused` is set when
    the guard stopped it; `refused_url` when the URL itself can never be allowed (not DNS)."""

    status: int | None
    error: str | None = None
    refused: Refusal | None = None
    refused_url: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookClient:
    def __init__(self, policy: TargetPolicy, resolver: Resolver | None = None, *, timeout_s: float = 10.0) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or SystemResolver()
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def check_new_url(self, url: str) -> None:
        """At registration: 422 `webhook_url_forbidden` for a URL that may not receive webhooks, 503
        when its name cannot be looked up now. Under the development setting names are not looked
        up (local receivers need none, and the tests run offline); deliveries still check them."""
        try:
            target = check_url(url, self.policy)
            if target.ip is None and not self.policy.allow_private:
                await resolve_checked(target.host, target.port, self.policy, self.resolver)
        except TargetRefused as refused:
            raise WebhookUrlForbidden.of(refused) from None
        except OSError:
            raise DnsUnavailable("the webhook URL's host could not be looked up now; try again",
                                 param="url") from None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=_CheckedResolver(self), use_dns_cache=False, limit=100)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent:
        """POST `body` to `url` if the guard allows it now; never raises for the target's doing."""
        try:
            target = check_url(url, self.policy)
        except TargetRefused as refused:
            return Sent(None, f"refused: {refused.reason.value}", refused.reason, refused_url=True)
        try:
            async with self._session_now().post(target.url, data=body, headers=dict(headers),
                                                allow_redirects=False) as resp:
                return Sent(resp.status)  # the body is never read: nothing of it reaches a log
        except TargetRefused as refused:
            return Sent(None, f"refused: {refused.reason.value}", refused.reason)
        except TimeoutError:
            return Sent(None, "timeout")
        except aiohttp.ClientSSLError:
            return Sent(None, "tls_failed")
        except (aiohttp.ClientError, OSError):
            return Sent(None, "connection_failed")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
