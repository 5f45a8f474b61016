"""Checkout's rules, over its ports and nothing else: what makes a cart quotable (a schedule in
range, a store online, open and delivering there), how it is priced (promo, surge, fees, the
promised window), which stock is reserved and how the payment is held, and what the order row
and its `order.placed` event say. No store, no pool: `CheckoutRules` talks only to the catalog,
payments and surge ports it is given, so the unit tests run it with in-memory fakes
(tests/unit/orders/); `checkout.py` wraps it in the transaction with the store's reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import asyncpg
import msgspec

from catalog import QuoteContext, ResolvedLine
from kernel.errors import ValidationFailed
from kernel.money import Money
from kernel.outbox import Event, MoneyData, PointData
from orders.errors import NotDeliverable, PromoRejected, StoreUnavailable
from orders.event_types import OrderLineData, OrderPlaced
from orders.messages import CheckoutRequest, QuoteRequest
from orders.model import Status
from orders.ports import Catalog, Memberships, NoMemberships, Payments, SurgeSource
from orders.pricing import (
    FeePolicy,
    MemberBenefit,
    Promo,
    PromoUsage,
    breakdown_to_dict,
    price,
    promised_window,
    promo_discount,
)
from orders.quote import Priced
from orders.views import option_dict
from payments import Authorization, RiskContext

SCHEDULE_MIN = timedelta(minutes=15)  # a scheduled order is at least this far ahead...
SCHEDULE_MAX = timedelta(days=7)  # ...and at most this far


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Where a checkout comes from, for the fraud screen: the client's IP address (the peer, or
    what a trusted proxy says it is) and the device id the app sends (`X-Device-Id`), if any."""

    ip: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cart:
    """A request's cart read against the store's menu and stock, at the time it is for."""

    context: QuoteContext
    lines: list[ResolvedLine]
    at: datetime  # the scheduled time, or now


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What checkout writes: the `orders` row's columns, its `order_lines` rows (line_no, item_id,
    name, quantity, unit_price, line_total, options JSON) and its `order.placed` event."""

    columns: dict[str, Any]
    lines: list[tuple[int, str, str, int, int, int, str]]
    event: Event


def _json(value: object) -> str:
    """JSON text for a jsonb column (msgspec: several times faster than json.dumps on this path)."""
    return msgspec.json.encode(value).decode()


def check_payment_choice(body: CheckoutRequest) -> None:
    """A checkout pays with exactly one of a saved method (a new hold) and an authorized intent."""
    if (body.payment_method_id is None) == (body.payment_intent is None):
        raise ValidationFailed("give exactly one of payment_method_id and payment_intent",
                               param="payment_method_id" if body.payment_method_id is None else "payment_intent")
    if body.conversion_quote is not None and body.payment_method_id != "wallet":
        raise ValidationFailed("a conversion quote converts wallet money: pay with payment_method_id \"wallet\"",
                               param="conversion_quote")


def check_schedule(req: QuoteRequest, now: datetime) -> None:
    if req.scheduled_for is None:
        return
    if req.scheduled_for.tzinfo is None:
        raise ValidationFailed("scheduled_for needs a time zone offset", param="scheduled_for")
    if not now + SCHEDULE_MIN <= req.scheduled_for <= now + SCHEDULE_MAX:
        raise ValidationFailed("scheduled_for must be between 15 minutes and 7 days ahead", param="scheduled_for")


def check_store(req: QuoteRequest, ctx: QuoteContext) -> None:
    """The store takes the order: online (for now; a paused store takes scheduled orders), open at
    the time the order is for, and delivering to the drop-off point."""
    if req.scheduled_for is None and ctx.status != "online":
        raise StoreUnavailable(f"the store is {ctx.status}", param="store_id")
    if not ctx.open_at_time:
        raise StoreUnavailable(
            "the store is not open at the scheduled time" if req.scheduled_for else "the store is closed now",
            param="scheduled_for" if req.scheduled_for else "store_id",
        )
    if not ctx.deliverable:
        raise NotDeliverable("the drop-off point is outside the store's delivery area", param="dropoff")


def risk_context(client: ClientContext | None, *, first_order: bool, promo: Promo | None) -> RiskContext:
    """What the fraud screen weighs besides the card and the amount. `first_order`: no order of the
    customer was delivered yet (an account with no history: cancelled or refused orders prove
    nothing). The promo is named by its id, the one promo whatever spelling the code was typed in."""
    client = client or ClientContext()
    return RiskContext(ip=client.ip, device_id=client.device_id, first_order=first_order,
                       promo_code=promo.id if promo is not None else None)


def stock_wanted(lines: list[ResolvedLine]) -> list[tuple[str, int]]:
    """The quantity of each item the cart takes (an item on several lines counts once, summed), in
    item order: the order catalog locks stock rows in, so racing checkouts never deadlock."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.item_id] = wanted.get(line.item_id, 0) + line.quantity
    return sorted(wanted.items())


def new_order(p: Priced, *, order_id: str, customer_id: str, key: str, quote_id: str, hold: Authorization,
              payment_method_id: str | None) -> NewOrder:
    """The order a priced quote becomes once its stock is reserved and its payment held."""
    ctx, b, req = p.context, p.breakdown, p.request
    accept_by = p.at + timedelta(seconds=ctx.accept_window_s)
    ready_at = (req.scheduled_for or p.at) + timedelta(seconds=ctx.prep_time_default_s)
    pricing = breakdown_to_dict(b) | {"distance_m": int(ctx.distance_m),
                                      "promo_code": p.promo.code if p.promo else None, "hold": b.total.amount}
    columns = {
        "id": order_id, "customer_id": customer_id, "idempotency_key": key, "quote_id": quote_id,
        "store_id": ctx.store_id, "tenant_id": ctx.tenant_id, "region": ctx.region, "status": Status.PLACED.value,
        "currency": b.currency, "total": b.total.amount, "pricing": _json(pricing),
        "payment_method_id": payment_method_id or hold.payment_method_id, "intent_id": hold.intent_id,
        "promo_id": p.promo.id if p.promo and b.discount.amount else None,
        "pickup_lat": ctx.lat, "pickup_lng": ctx.lng, "dropoff_lat": req.dropoff.lat, "dropoff_lng": req.dropoff.lng,
        "address": req.address, "delivery_note": req.delivery_note, "prep_time_s": ctx.prep_time_default_s,
        "placed_at": p.at, "accept_by": accept_by,
        "scheduled_for": req.scheduled_for, "promised_from": p.window[0], "promised_to": p.window[1],
        "ready_at": ready_at,
    }
    lines = [
        (i, line.item_id, line.name, line.quantity, line.unit_price.amount, line.line_total.amount,
         _json([option_dict(o) for o in line.options]))
        for i, line in enumerate(p.lines, 1)
    ]
    event = OrderPlaced(
        order_id=order_id, customer_id=customer_id, store_id=ctx.store_id, tenant_id=ctx.tenant_id,
        region=ctx.region, status=Status.PLACED.value, pickup=PointData(ctx.lat, ctx.lng),
        dropoff=PointData(req.dropoff.lat, req.dropoff.lng), total=MoneyData(b.total.amount, b.currency),
        placed_at=p.at, accept_by=accept_by, promised_at=p.window[1], scheduled_for=req.scheduled_for,
        lines=[OrderLineData(line.name, line.quantity) for line in p.lines],
    ).event(order_id)
    return NewOrder(columns, lines, event)


class CheckoutRules:
    """The steps of a quote and a checkout that ask catalog, payments and the surge signal. Each
    takes the caller's connection only to hand it to the ports (their work joins the checkout's
    transaction)."""

    def __init__(self, catalog: Catalog, payments: Payments, surge: SurgeSource, policy: FeePolicy,
                 memberships: Memberships | None = None) -> None:
        self.catalog = catalog
        self.payments = payments
        self.surge = surge
        self.policy = policy
        self.memberships: Memberships = memberships or NoMemberships()

    async def cart(self, conn: asyncpg.Connection, req: QuoteRequest, now: datetime) -> Cart:
        """The cart against the store's menu and stock at the time the order is for. A store that
        cannot take the order is reported before the cart's own problems."""
        check_schedule(req, now)
        at = req.scheduled_for or now
        quoted = await self.catalog.cart_quote(conn, req.store_id, req.dropoff.lat, req.dropoff.lng, at, req.lines)
        check_store(req, quoted.context)
        return Cart(quoted.context, quoted.lines(), at)

    async def member(self, conn: asyncpg.Connection, customer_id: str, cart: Cart) -> MemberBenefit | None:
        """The customer's membership benefits in the store's region and currency (None: not a member)."""
        return await self.memberships.benefit(conn, customer_id, cart.context.region, cart.context.currency)

    async def price(self, cart: Cart, req: QuoteRequest, now: datetime,
                    promo: tuple[Promo, PromoUsage] | None, *, surge: Fraction | None = None,
                    member: MemberBenefit | None = None) -> Priced:
        """The bill. `promo`: what the request's promo code names at this store, with the
        customer's use of it (None: nothing). `surge` None reads the live level of the pickup's
        cell; checkout passes the level its quote was priced at instead (it holds for the quote's
        life: a level that moved since, or a read that timed out, is no reason to refuse the price
        the customer saw)."""
        ctx, cur = cart.context, cart.context.currency
        subtotal = Money(sum(line.line_total.amount for line in cart.lines), cur)
        found, discount = None, Money.zero(cur)
        if req.promo_code:
            if promo is None:
                raise PromoRejected("unknown promo code", param="promo_code", code="promo_unknown")
            found, usage = promo
            if found.tenant_id is not None and found.tenant_id != ctx.tenant_id:
                raise PromoRejected("this promo code is not valid at this store", param="promo_code",
                                    code="promo_wrong_store")
            discount = promo_discount(found, subtotal=subtotal, store_id=req.store_id, usage=usage, now=now)
        if surge is None:
            surge = await self.surge.multiplier(ctx.lat, ctx.lng)
        breakdown = price(
            subtotal, band_fee=ctx.delivery_fee, surge=Fraction(surge), tax_rate_bps=ctx.tax_rate_bps,
            tax_inclusive=ctx.tax_inclusive, discount=discount, tip=Money(req.tip, cur), policy=self.policy,
            member=member,
        )
        window = promised_window(cart.at, ctx.prep_time_default_s, ctx.distance_m, self.policy)
        return Priced(req, ctx, cart.lines, breakdown, found, window, now)

    async def reserve_and_hold(self, conn: asyncpg.Connection, p: Priced, body: CheckoutRequest, *, order_id: str,
                               customer_id: str, key: str, risk: RiskContext) -> Authorization:
        """Reserve the cart's stock, then hold the total: attach the intent the customer authorized
        apart (3-D Secure), or place a new hold on the payment method, keyed by the checkout's key
        so a retry reaches the same hold. Out of stock, a decline or a challenge raise."""
        await self.catalog.reserve(conn, order_id, stock_wanted(p.lines))
        ctx, total = p.context, p.breakdown.total
        metadata = {"order_id": order_id, "store_id": ctx.store_id, "tenant_id": ctx.tenant_id}
        if body.payment_intent is not None:
            return await self.payments.attach_authorized(
                conn, intent_id=body.payment_intent, customer_id=customer_id, amount=total, reference=order_id,
                metadata=metadata,
            )
        assert body.payment_method_id is not None  # check_payment_choice let through exactly one of the two
        return await self.payments.authorize(
            conn, customer_id=customer_id, payment_method_id=body.payment_method_id, amount=total,
            reference=order_id, idempotency_key=f"checkout:{customer_id}:{key}", metadata=metadata, risk=risk,
            conversion_quote=body.conversion_quote,
        )
