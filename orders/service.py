"""Orders use cases: quote and checkout. One command = one transaction.

Checkout is the hot path. In one transaction on one connection it re-checks the
quote against the catalog (at the surge level the quote was priced at), reserves
stock, takes the payment hold and writes the order, its lines, its history and
`order.placed` (one statement for those four). Catalog and payments run on the
same connection, so a decline or an out-of-stock rolls everything back: no order,
no reservation, no hold.

A card that needs 3-D Secure answers 402 `authentication_required` naming a
`requires_action` PaymentIntent (payments writes that one apart, so it outlives the
rollback). The customer confirms it with payments, then checks out again with
`payment_intent`: that hold is attached to the order instead of a new one.

The lifecycle (accept, ready, cancel, delivery...) lives in `lifecycle.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import asyncpg
import msgspec

from catalog import QuoteContext, ResolvedLine
from kernel.clientip import Network
from kernel.clock import Clock
from kernel.errors import Forbidden, ValidationFailed
from kernel.ids import new_id
from kernel.money import Money
from kernel.outbox import make_event
from orders import store
from orders.errors import (
    NotDeliverable,
    PriceChanged,
    PromoRejected,
    QuoteAlreadyUsed,
    QuoteExpired,
    QuoteNotFound,
    StoreUnavailable,
)
from orders.messages import (
    CheckoutRequest,
    FeeLine,
    MoneyOut,
    QuoteLine,
    QuoteOut,
    QuoteRequest,
    Window,
)
from orders.model import Status
from orders.ports import Catalog, NoSurge, Payments, SplitFactory, SurgeSource
from orders.pricing import (
    FeePolicy,
    PriceBreakdown,
    Promo,
    PromoKind,
    PromoUsage,
    breakdown_to_dict,
    price,
    promised_window,
    promo_discount,
)
from payments import RiskContext

_quote_request_decoder = msgspec.json.Decoder(QuoteRequest)
_quote_decoder = msgspec.json.Decoder(QuoteOut)


def money_out(m: Money) -> MoneyOut:
    return MoneyOut(m.amount, m.currency)


def fee_lines(b: PriceBreakdown) -> list[FeeLine]:
    """The bill's lines as a customer sees them; zero lines are left out, the busy-area line
    appears only when surge is above 1."""
    out = [FeeLine("delivery", "Delivery", money_out(b.delivery_fee))]
    if b.busy_area_fee.amount:
        out.append(FeeLine("busy_area", f"Busy area (x{float(b.surge_multiplier):.2f})", money_out(b.busy_area_fee)))
    out.append(FeeLine("service", "Service fee", money_out(b.service_fee)))
    if b.small_order_fee.amount:
        out.append(FeeLine("small_order", "Small order fee", money_out(b.small_order_fee)))
    if b.discount.amount:
        out.append(FeeLine("discount", "Promo", money_out(-b.discount)))
    out.append(FeeLine("tax", "Tax (included)" if b.tax_inclusive else "Tax", money_out(b.tax)))
    if b.tip.amount:
        out.append(FeeLine("tip", "Tip", money_out(b.tip)))
    return out


def _option_dict(opt: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"option_id": opt.option_id, "name": opt.name, "quantity": opt.quantity}
    unit = getattr(opt, "unit_price", None)
    if unit is not None:
        out["unit_price"] = {"amount": unit.amount, "currency": unit.currency}
    subs = getattr(opt, "options", ())
    if subs:
        out["options"] = [_option_dict(s) for s in subs]
    return out


@dataclass(frozen=True, slots=True)
class Priced:
    """A request priced against the current menu: what a quote shows and checkout writes."""

    request: QuoteRequest
    context: QuoteContext
    lines: list[ResolvedLine]
    breakdown: PriceBreakdown
    promo: Promo | None
    window: tuple[datetime, datetime]
    at: datetime


@dataclass(frozen=True, slots=True)
class Placed:
    """What checkout did: the order id, whether this call created it and, when it did, the order
    as `store.order_view` returns it (written and returned in one statement)."""

    order_id: str
    created: bool
    view: asyncpg.Record | None = None
    breakdown: PriceBreakdown | None = None  # the pricing `view` was written with


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Where a checkout comes from, for the fraud screen: the client's IP address (the peer, or
    what a trusted proxy says it is) and the device id the app sends (`X-Device-Id`), if any."""

    ip: str | None = None
    device_id: str | None = None


def _risk(client: ClientContext | None, *, first_order: bool, promo: Promo | None) -> RiskContext:
    """What the fraud screen weighs besides the card and the amount. `first_order`: no order of the
    customer was delivered yet (an account with no history: cancelled or refused orders prove
    nothing). The promo is named by its id, the one promo whatever spelling the code was typed in."""
    client = client or ClientContext()
    return RiskContext(ip=client.ip, device_id=client.device_id, first_order=first_order,
                       promo_code=promo.id if promo is not None else None)


@dataclass(frozen=True, slots=True)
class OrderParties:
    """Who an order belongs to and where it stands: what a live view checks access against."""

    order_id: str
    customer_id: str
    tenant_id: str
    region: str
    status: str
    courier_id: str | None
    at: datetime  # of the last transition


@dataclass
class OrdersConfig:
    policy: FeePolicy = field(default_factory=FeePolicy)
    pause_after_expired: int = 3  # consecutive expired orders that pause a store (0: never)
    trusted_proxies: tuple[Network, ...] = ()  # may name the client in X-Forwarded-For (kernel.clientip)


class OrdersService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        catalog: Catalog,
        payments: Payments,
        split: SplitFactory,
        *,
        surge: SurgeSource | None = None,
        config: OrdersConfig | None = None,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.catalog = catalog
        self.payments = payments
        self.split = split
        self.surge = surge or NoSurge()
        self.config = config or OrdersConfig()

    @property
    def policy(self) -> FeePolicy:
        return self.config.policy

    # ---- pricing a request ---------------------------------------------------------------------

    async def _price(self, conn: asyncpg.Connection, customer_id: str, req: QuoteRequest, now: datetime,
                     surge: Fraction | None = None) -> Priced:
        """Price `req` against the current menu; `surge` None reads the live level of the pickup's cell."""
        at = req.scheduled_for or now
        if req.scheduled_for is not None:
            if req.scheduled_for.tzinfo is None:
                raise ValidationFailed("scheduled_for needs a time zone offset", param="scheduled_for")
            if req.scheduled_for < now + timedelta(minutes=15) or req.scheduled_for > now + timedelta(days=7):
                raise ValidationFailed("scheduled_for must be between 15 minutes and 7 days ahead",
                                       param="scheduled_for")
        quoted = await self.catalog.cart_quote(conn, req.store_id, req.dropoff.lat, req.dropoff.lng, at, req.lines)
        ctx = quoted.context
        if req.scheduled_for is None and ctx.status != "online":
            raise StoreUnavailable(f"the store is {ctx.status}", param="store_id")
        if not ctx.open_at_time:
            raise StoreUnavailable(
                "the store is not open at the scheduled time" if req.scheduled_for else "the store is closed now",
                param="scheduled_for" if req.scheduled_for else "store_id",
            )
        if not ctx.deliverable:
            raise NotDeliverable("the drop-off point is outside the store's delivery area", param="dropoff")
        lines = quoted.lines()  # after the store checks: a closed store is reported before the cart's problems
        cur = ctx.currency
        subtotal = Money(sum(line.line_total.amount for line in lines), cur)
        promo = None
        discount = Money.zero(cur)
        if req.promo_code:
            row = await store.promo_with_usage(conn, req.promo_code, customer_id, tenant_id=ctx.tenant_id)
            if row is None:
                raise PromoRejected("unknown promo code", param="promo_code", code="promo_unknown")
            promo = promo_from_row(row)
            if row["tenant_id"] is not None and row["tenant_id"] != ctx.tenant_id:
                raise PromoRejected("this promo code is not valid at this store", param="promo_code",
                                    code="promo_wrong_store")
            usage = PromoUsage(row["redemptions_by_customer"], row["customer_has_orders"])
            discount = promo_discount(promo, subtotal=subtotal, store_id=req.store_id, usage=usage, now=now)
        if surge is None:
            surge = await self.surge.multiplier(ctx.lat, ctx.lng)
        breakdown = price(
            subtotal, band_fee=ctx.delivery_fee, surge=Fraction(surge), tax_rate_bps=ctx.tax_rate_bps,
            tax_inclusive=ctx.tax_inclusive, discount=discount, tip=Money(req.tip, cur), policy=self.policy,
        )
        window = promised_window(at, ctx.prep_time_default_s, ctx.distance_m, self.policy)
        return Priced(req, ctx, lines, breakdown, promo, window, now)

    def _quote_out(self, quote_id: str, p: Priced, expires_at: datetime) -> QuoteOut:
        b = p.breakdown
        lines = [
            QuoteLine(
                line_no=i, item_id=line.item_id, name=line.name, quantity=line.quantity,
                unit_price=money_out(line.unit_price), options=[_option_dict(o) for o in line.options],
                line_total=money_out(line.line_total),
            )
            for i, line in enumerate(p.lines, 1)
        ]
        return QuoteOut(
            id=quote_id, store_id=p.request.store_id, currency=b.currency, lines=lines,
            subtotal=money_out(b.subtotal), fees=fee_lines(b), delivery_fee=money_out(b.delivery_fee),
            busy_area_fee=money_out(b.busy_area_fee), service_fee=money_out(b.service_fee),
            small_order_fee=money_out(b.small_order_fee), discount=money_out(b.discount), tax=money_out(b.tax),
            tax_inclusive=b.tax_inclusive, tip=money_out(b.tip), total=money_out(b.total),
            surge_multiplier=str(b.surge_multiplier), promo_code=p.promo.code if p.promo else None,
            distance_m=int(p.context.distance_m), promised_window=Window(*p.window),
            scheduled_for=p.request.scheduled_for, created_at=p.at, expires_at=expires_at,
        )

    async def _store_quote(self, conn: asyncpg.Connection, customer_id: str, p: Priced) -> QuoteOut:
        quote_id = new_id("quo")
        expires_at = p.at + timedelta(seconds=self.policy.quote_ttl_seconds)
        out = self._quote_out(quote_id, p, expires_at)
        await store.insert_quote(
            conn, quote_id=quote_id, customer_id=customer_id, store_id=p.request.store_id,
            request=msgspec.json.encode(p.request).decode(),
            priced=msgspec.json.encode({"quote": out, "pricing": breakdown_to_dict(p.breakdown),
                                        "promo_id": p.promo.id if p.promo else None}).decode(),
            total=p.breakdown.total.amount, currency=p.breakdown.currency, created_at=p.at, expires_at=expires_at,
        )
        return out

    # ---- commands ------------------------------------------------------------------------------

    async def create_quote(self, customer_id: str, req: QuoteRequest) -> QuoteOut:
        """Reads, then one INSERT: no transaction needed (checkout re-checks everything anyway)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            priced = await self._price(conn, customer_id, req, now)
            return await self._store_quote(conn, customer_id, priced)

    async def checkout(self, customer_id: str, idempotency_key: str, body: CheckoutRequest,
                       client: ClientContext | None = None) -> Placed:
        """Place the order for a quote. A retry with the same key returns the order the first
        attempt wrote, whatever happened in between (then `view` is None: read it). A quote pays
        for one order: another key ordering it again gets 409 `quote_already_used` naming that
        order, before any hold is placed."""
        if (body.payment_method_id is None) == (body.payment_intent is None):
            raise ValidationFailed("give exactly one of payment_method_id and payment_intent",
                                   param="payment_method_id" if body.payment_method_id is None else "payment_intent")
        now = self.clock.now()
        order_id = new_id("ord")
        requote: tuple[type[QuoteExpired] | type[PriceChanged], QuoteRequest] | None = None
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    row = await store.checkout_lookup(conn, body.quote_id, customer_id, idempotency_key, order_id)
                    if row["existing_order"] is not None:
                        return Placed(row["existing_order"], False)
                    if row["id"] is None:
                        raise QuoteNotFound("no such quote", param="quote_id")
                    if not row["claimed"]:
                        return await self._quote_taken(conn, row, body.quote_id, customer_id, idempotency_key)
                    req = _quote_request_decoder.decode(row["request"])
                    if now >= row["expires_at"]:
                        requote = (QuoteExpired, req)
                        raise _Requote
                    # The quoted surge holds for the quote's life: a level that moved (or a surge
                    # read that timed out) since is no reason to refuse the price the customer saw.
                    quoted_surge = Fraction(row["surge"]) if row["surge"] else None
                    priced = await self._price(conn, customer_id, req, now, surge=quoted_surge)
                    if priced.breakdown.total.amount != row["total"]:
                        requote = (PriceChanged, req)
                        raise _Requote
                    risk = _risk(client, first_order=row["first_order"], promo=priced.promo)
                    view = await self._place(conn, customer_id, idempotency_key, body, row["id"], priced, order_id,
                                             risk)
                    return Placed(view["id"], True, view, priced.breakdown)
            except _Requote:
                pass
            except asyncpg.UniqueViolationError:
                # The same key committed an order concurrently (a retry racing a slow first try).
                existing = await conn.fetchval(
                    "SELECT id FROM orders WHERE customer_id = $1 AND idempotency_key = $2",
                    customer_id, idempotency_key,
                )
                if existing is None:
                    raise
                return Placed(existing, False)
            assert requote is not None
            error, req = requote
            fresh = await self._store_quote(conn, customer_id, await self._price(conn, customer_id, req, now))
        message = ("the quote has expired; here is a new one" if error is QuoteExpired
                   else "the price changed since the quote; here is the new quote")
        raise error(message, param="quote_id", extra={"quote": msgspec.to_builtins(fresh)})

    @staticmethod
    async def _quote_taken(conn: asyncpg.Connection, row: asyncpg.Record, quote_id: str, customer_id: str,
                           key: str) -> Placed:
        """The claim did not take: the quote pays for an order already. This key's own order (a
        retry that waited for its first try's commit) is returned; another's is a 409 naming it."""
        used_by = row["used_by"]
        if used_by is None:  # taken by a checkout that committed while this one waited for it
            taken = await store.quote_taken(conn, quote_id, customer_id, key)
            if taken["existing_order"] is not None:
                return Placed(taken["existing_order"], False)
            used_by = taken["used_by"]
        raise QuoteAlreadyUsed(used_by)

    async def _place(
        self, conn: asyncpg.Connection, customer_id: str, key: str, body: CheckoutRequest, quote_id: str,
        p: Priced, order_id: str, risk: RiskContext,
    ) -> asyncpg.Record:
        ctx, b = p.context, p.breakdown
        if p.promo is not None and b.discount.amount:
            ok = await store.redeem_promo(conn, promo_id=p.promo.id, order_id=order_id, customer_id=customer_id,
                                          discount=b.discount.amount, at=p.at)
            if not ok:
                raise PromoRejected("this promo code has run out", param="promo_code", code="promo_budget_exhausted")
        wanted: dict[str, int] = {}
        for line in p.lines:
            wanted[line.item_id] = wanted.get(line.item_id, 0) + line.quantity
        await self.catalog.reserve(conn, order_id, sorted(wanted.items()))
        metadata = {"order_id": order_id, "store_id": ctx.store_id, "tenant_id": ctx.tenant_id}
        if body.payment_intent is not None:  # a hold the customer authorized apart (3-D Secure)
            hold = await self.payments.attach_authorized(
                conn, intent_id=body.payment_intent, customer_id=customer_id, amount=b.total, reference=order_id,
                metadata=metadata,
            )
        else:
            assert body.payment_method_id is not None  # checkout() let through exactly one of the two
            hold = await self.payments.authorize(
                conn, customer_id=customer_id, payment_method_id=body.payment_method_id, amount=b.total,
                reference=order_id, idempotency_key=f"checkout:{customer_id}:{key}", metadata=metadata, risk=risk,
            )
        start = p.request.scheduled_for or p.at
        accept_by = p.at + timedelta(seconds=ctx.accept_window_s)
        pickup = {"lat": ctx.lat, "lng": ctx.lng}
        dropoff = {"lat": p.request.dropoff.lat, "lng": p.request.dropoff.lng}
        pricing = breakdown_to_dict(b) | {"distance_m": int(ctx.distance_m),
                                          "promo_code": p.promo.code if p.promo else None,
                                          "hold": b.total.amount}
        order = {
            "id": order_id, "customer_id": customer_id, "idempotency_key": key, "quote_id": quote_id,
            "store_id": ctx.store_id, "tenant_id": ctx.tenant_id, "region": ctx.region, "status": Status.PLACED.value,
            "currency": b.currency, "total": b.total.amount, "pricing": json.dumps(pricing),
            "payment_method_id": body.payment_method_id or hold.payment_method_id, "intent_id": hold.intent_id,
            "promo_id": p.promo.id if p.promo and b.discount.amount else None,
            "pickup_lat": ctx.lat, "pickup_lng": ctx.lng, "dropoff_lat": dropoff["lat"],
            "dropoff_lng": dropoff["lng"], "address": p.request.address, "delivery_note": p.request.delivery_note,
            "prep_time_s": ctx.prep_time_default_s,
            "placed_at": p.at, "accept_by": accept_by, "scheduled_for": p.request.scheduled_for,
            "promised_from": p.window[0], "promised_to": p.window[1],
            "ready_at": start + timedelta(seconds=ctx.prep_time_default_s),
        }
        lines = [
            (i, line.item_id, line.name, line.quantity, line.unit_price.amount, line.line_total.amount,
             json.dumps([_option_dict(o) for o in line.options]))
            for i, line in enumerate(p.lines, 1)
        ]
        event = make_event("order.placed", {
            "order_id": order_id, "customer_id": customer_id, "store_id": ctx.store_id,
            "tenant_id": ctx.tenant_id, "region": ctx.region, "status": Status.PLACED.value,
            "pickup": pickup, "dropoff": dropoff, "total": {"amount": b.total.amount, "currency": b.currency},
            "placed_at": p.at.isoformat(), "accept_by": accept_by.isoformat(),
            "promised_at": p.window[1].isoformat(),
            "scheduled_for": p.request.scheduled_for.isoformat() if p.request.scheduled_for else None,
            "lines": [{"name": line.name, "quantity": line.quantity} for line in p.lines],
        }, aggregate_id=order_id)
        return await store.insert_order(conn, order, lines, [event])

    async def order_parties(self, order_id: str) -> OrderParties | None:
        """The committed order's owner, tenant and status (None: no such order)."""
        async with self.pool.acquire() as conn:
            row = await store.order_parties(conn, order_id)
        if row is None:
            return None
        return OrderParties(row["id"], row["customer_id"], row["tenant_id"], row["region"], row["status"],
                            row["courier_id"], row["at"])

    async def create_promo(self, scope: str | None, values: dict[str, Any]) -> Any:
        """A store's promo belongs to the store's tenant (its code unique within that tenant); a
        platform-wide one (no store, operators only) to none. `scope`: `tenancy.tenant_scope`."""
        from orders.errors import PromoCodeTaken
        from orders.tenancy import store_owner

        if scope is not None and values.get("store_id") is None:
            raise Forbidden("restaurants create promos for one of their stores; platform-wide promos are operators'")
        try:
            async with self.pool.acquire() as conn:
                owner = None
                if values.get("store_id") is not None:
                    owner = await store_owner(conn, self.catalog, values["store_id"], scope)
                return await store.insert_promo(conn, {"id": new_id("pro"), **values, "tenant_id": owner})
        except asyncpg.UniqueViolationError:
            raise PromoCodeTaken("a promo with this code exists", param="code") from None


class _Requote(Exception):
    """Internal: leave the checkout transaction, then price again outside it."""


def promo_from_row(row: Any) -> Promo:
    return Promo(
        id=row["id"], code=row["code"], kind=PromoKind(row["kind"]), percent_bps=row["percent_bps"],
        amount=row["amount"], currency=row["currency"], max_discount=row["max_discount"],
        min_subtotal=row["min_subtotal"], first_order_only=row["first_order_only"],
        per_customer_limit=row["per_customer_limit"], budget=row["budget"], budget_used=row["budget_used"],
        valid_from=row["valid_from"], valid_until=row["valid_until"], store_id=row["store_id"], active=row["active"],
    )
