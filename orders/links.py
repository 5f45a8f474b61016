"""Tracking links as use cases: issue one for an order its caller may see, revoke one (or all), and
check a presented token. The token format and its rules are in `tracking_link.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from kernel.clock import Clock
from orders import link_store
from orders.errors import OrderNotFound, TrackingLinkGone, TrackingLinkInvalid
from orders.model import Caller, can_see
from orders.queries import OrderQueries
from orders.tracking_link import LINK_ID, LinkClaims, LinkSigner, new_link_id


@dataclass(frozen=True, slots=True)
class IssuedLink:
    id: str
    order_id: str
    token: str
    expires_at: datetime


class TrackingLinks:
    def __init__(self, queries: OrderQueries, pool: asyncpg.Pool, clock: Clock, signer: LinkSigner,
                 ttl_s: int) -> None:
        self.queries = queries
        self.pool = pool
        self.clock = clock
        self.signer = signer
        self.ttl_s = ttl_s

    async def _visible(self, order_id: str, caller: Caller) -> None:
        parties = await self.queries.parties(order_id)
        if parties is None or not can_see(caller, parties.customer_id, parties.tenant_id, parties.store_id,
                                          parties.courier_id):
            raise OrderNotFound("no such order", param="order_id")

    async def issue(self, order_id: str, caller: Caller) -> IssuedLink:
        """A new link to the order (the caller must see it). Nothing is written: the link is the token."""
        await self._visible(order_id, caller)
        now = self.clock.now()
        expires = now + timedelta(seconds=self.ttl_s)
        claims = LinkClaims(o=order_id, l=new_link_id(), i=int(now.timestamp() * 1000), e=int(expires.timestamp()))
        return IssuedLink(claims.l, order_id, self.signer.sign(claims), datetime.fromtimestamp(claims.e, UTC))

    async def revoke(self, order_id: str, link_id: str, caller: Caller) -> None:
        """Revoke one link by its id, or with `link_store.EVERY_LINK` every link issued so far."""
        if link_id != link_store.EVERY_LINK and not LINK_ID.match(link_id):
            raise TrackingLinkInvalid("no such tracking link", param="link_id")  # cannot be one of ours
        await self._visible(order_id, caller)
        async with self.pool.acquire() as conn:
            await link_store.revoke(conn, order_id, link_id, self.clock.now(), caller.account_id)

    async def check(self, token: str, order_id: str | None = None) -> LinkClaims:
        """The claims of a valid link (for `order_id`, when given: a link opens its own order only)."""
        claims = self.signer.read(token, self.clock.now().timestamp())
        if order_id is not None and claims.order_id != order_id:
            raise TrackingLinkInvalid("no such tracking link", param="token")
        issued = datetime.fromtimestamp(claims.i / 1000, UTC)
        async with self.pool.acquire() as conn:
            revoked = await link_store.is_revoked(conn, claims.order_id, claims.link_id, issued)
        if revoked:
            raise TrackingLinkGone("this tracking link was revoked", param="token", code="tracking_link_revoked")
        return claims
