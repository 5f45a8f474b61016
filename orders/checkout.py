"""Quote and checkout: the use cases that make an order. One command = one transaction.

Checkout is the hot path. In one transaction on one connection it claims the quote (and learns
whether this idempotency key placed an order already), re-prices it against the catalog at the
surge level the quote was priced at, redeems the promo, reserves stock, takes the payment hold
and writes the order, its lines, its history and `order.placed` (one statement for those four).
Catalog and payments run on the same connection, so a decline or an out-of-stock rolls
everything back: no order, no reservation, no hold, and the quote is free again.

A quote that expired or no longer prices the same is not an error inside the transaction: the
attempt returns a `Requote`, its transaction is rolled back (giving the claim back), and the
customer gets a 409 with a fresh quote, priced outside it.

A card that needs 3-D Secure answers 402 `authentication_required` naming a `requires_action`
PaymentIntent (payments writes that one apart, so it outlives the rollback). The customer
confirms it with payments, then checks out again with `payment_intent`: that hold is attached to
the order instead of a new one (docs/CHECKOUT.md).

The rules that ask catalog, payments and surge live in `checkout_rules.py`; this module adds the
store's reads and writes and the transaction around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

import asyncpg
import msgspec

from kernel.clock import Clock
from kernel.ids import new_id
from orders import store
from orders.checkout_rules import CheckoutRules, ClientContext, check_payment_choice, new_order, risk_context
from orders.errors import PriceChanged, PromoRejected, QuoteAlreadyUsed, QuoteExpired, QuoteNotFound
from orders.messages import CheckoutRequest, QuoteRequest
from orders.order import Order
from orders.pricing import FeePolicy, breakdown_to_dict
from orders.quote import Priced, Quote, QuoteClaim
from orders.views import quote_out

_request_decoder = msgspec.json.Decoder(QuoteRequest)


@dataclass(frozen=True, slots=True)
class Requote:
    """A checkout that cannot place its order at the quoted price: the quote expired, or the menu
    or fees moved since. Nothing of the attempt is kept; the customer gets a fresh quote."""

    request: QuoteRequest
    expired: bool

    def error(self, fresh: Quote) -> QuoteExpired | PriceChanged:
        extra = {"quote": msgspec.to_builtins(quote_out(fresh))}
        if self.expired:
            return QuoteExpired("the quote has expired; here is a new one", param="quote_id", extra=extra)
        return PriceChanged("the price changed since the quote; here is the new quote", param="quote_id", extra=extra)


class Checkout:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, rules: CheckoutRules, policy: FeePolicy) -> None:
        self.pool = pool
        self.clock = clock
        self.rules = rules
        self.policy = policy

    async def quote(self, customer_id: str, req: QuoteRequest) -> Quote:
        """Reads, then one INSERT: no transaction needed (checkout re-checks everything anyway)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            return await self._new_quote(conn, customer_id, await self._price(conn, customer_id, req, now))

    async def place(self, customer_id: str, key: str, body: CheckoutRequest,
                    client: ClientContext | None = None) -> Order:
        """Place the order for a quote. A retry with the same key returns the order the first
        attempt wrote, whatever happened in between. A quote pays for one order: another key
        ordering it again gets 409 `quote_already_used` naming that order, before any hold is placed."""
        check_payment_choice(body)
        now = self.clock.now()
        order_id = new_id("ord")
        async with self.pool.acquire() as conn:
            outcome: Order | str | Requote | None
            try:
                outcome = await self._attempt(conn, customer_id, key, body, client, order_id, now)
            except asyncpg.UniqueViolationError:
                # The same key committed an order concurrently (a retry racing a slow first try).
                outcome = await store.order_id_by_key(conn, customer_id, key)
                if outcome is None:
                    raise
            if isinstance(outcome, Requote):
                fresh = await self._new_quote(conn, customer_id, await self._price(conn, customer_id,
                                                                                   outcome.request, now))
                raise outcome.error(fresh)
            if isinstance(outcome, str):  # the order this key placed before
                order = await store.order_view(conn, outcome)
                assert order is not None  # committed, and orders are never deleted
                return order
            return outcome

    # ---- one attempt, in one transaction ------------------------------------------------------------

    async def _attempt(self, conn: asyncpg.Connection, customer_id: str, key: str, body: CheckoutRequest,
                       client: ClientContext | None, order_id: str, now: datetime) -> Order | str | Requote:
        """The new order, the id of the one this key placed before, or a requote. A requote keeps
        nothing: its transaction is rolled back, which also gives the quote's claim back."""
        tx = conn.transaction()
        await tx.start()
        try:
            outcome = await self._claim_and_place(conn, customer_id, key, body, client, order_id, now)
        except BaseException:
            await tx.rollback()
            raise
        if isinstance(outcome, Requote):
            await tx.rollback()
        else:
            await tx.commit()
        return outcome

    async def _claim_and_place(self, conn: asyncpg.Connection, customer_id: str, key: str, body: CheckoutRequest,
                               client: ClientContext | None, order_id: str, now: datetime) -> Order | str | Requote:
        claim = await store.claim_quote(conn, body.quote_id, customer_id, key, order_id)
        if claim.existing_order is not None:
            return claim.existing_order
        if claim.quote_id is None:
            raise QuoteNotFound("no such quote", param="quote_id")
        if not claim.claimed:
            return await self._quote_taken(conn, claim, body.quote_id, customer_id, key)
        assert claim.request is not None and claim.expires_at is not None
        req = _request_decoder.decode(claim.request)
        if now >= claim.expires_at:
            return Requote(req, expired=True)
        priced = await self._price(conn, customer_id, req, now, surge=claim.surge)
        if priced.breakdown.total.amount != claim.total:
            return Requote(req, expired=False)
        return await self._place(conn, customer_id, key, body, claim, priced, order_id, client)

    @staticmethod
    async def _quote_taken(conn: asyncpg.Connection, claim: QuoteClaim, quote_id: str, customer_id: str,
                           key: str) -> str:
        """The claim did not take: the quote pays for an order already. This key's own order (a
        retry that waited for its first try's commit) is returned; another's is a 409 naming it."""
        used_by = claim.used_by
        if used_by is None:  # taken by a checkout that committed while this one waited for it
            used_by, existing = await store.quote_taken(conn, quote_id, customer_id, key)
            if existing is not None:
                return existing
        assert used_by is not None
        raise QuoteAlreadyUsed(used_by)

    async def _place(self, conn: asyncpg.Connection, customer_id: str, key: str, body: CheckoutRequest,
                     claim: QuoteClaim, p: Priced, order_id: str, client: ClientContext | None) -> Order:
        b = p.breakdown
        if p.promo is not None and b.discount.amount:
            ok = await store.redeem_promo(conn, promo_id=p.promo.id, order_id=order_id, customer_id=customer_id,
                                          discount=b.discount.amount, at=p.at)
            if not ok:
                raise PromoRejected("this promo code has run out", param="promo_code", code="promo_budget_exhausted")
        risk = risk_context(client, first_order=claim.first_order, promo=p.promo)
        hold = await self.rules.reserve_and_hold(conn, p, body, order_id=order_id, customer_id=customer_id, key=key,
                                                 risk=risk)
        assert claim.quote_id is not None
        new = new_order(p, order_id=order_id, customer_id=customer_id, key=key, quote_id=claim.quote_id, hold=hold,
                        payment_method_id=body.payment_method_id)
        return await store.insert_order(conn, new.columns, new.lines, [new.event], pricing=b)

    # ---- pricing -----------------------------------------------------------------------------------

    async def _price(self, conn: asyncpg.Connection, customer_id: str, req: QuoteRequest, now: datetime,
                     surge: Fraction | None = None) -> Priced:
        """Price `req` against the current menu; `surge` None reads the live level of the pickup's cell."""
        cart = await self.rules.cart(conn, req, now)
        promo = None
        if req.promo_code:
            promo = await store.promo_with_usage(conn, req.promo_code, customer_id, tenant_id=cart.context.tenant_id)
        member = await self.rules.member(conn, customer_id, cart)
        return await self.rules.price(cart, req, now, promo, surge=surge, member=member)

    async def _new_quote(self, conn: asyncpg.Connection, customer_id: str, p: Priced) -> Quote:
        quote = Quote(new_id("quo"), p, p.at + timedelta(seconds=self.policy.quote_ttl_seconds))
        await store.insert_quote(
            conn, quote_id=quote.id, customer_id=customer_id, store_id=p.request.store_id,
            request=msgspec.json.encode(p.request).decode(),
            priced=msgspec.json.encode({"quote": quote_out(quote), "pricing": breakdown_to_dict(p.breakdown),
                                        "promo_id": p.promo.id if p.promo else None}).decode(),
            total=p.breakdown.total.amount, currency=p.breakdown.currency, created_at=p.at,
            expires_at=quote.expires_at,
        )
        return quote
