"""In-memory fakes of orders' ports (orders/ports.py): catalog, payments and the surge signal.

They keep the behaviour orders relies on and nothing else: the catalog answers a cart with a real
`catalog.CartQuote` over an in-memory menu (so lines are resolved and priced by catalog's own pure
code) and reserves counted stock all or nothing; payments places holds keyed by idempotency key,
declines or challenges the cards it is told to, and attaches an authorized intent only for its
customer and exact amount. Every call is recorded for the tests to look at. No fake of PostgreSQL
or Redis: these stand in for our own packages' interfaces only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fractions import Fraction
from typing import Any

import msgspec

from catalog import CartLineInput, CartQuote, OutOfStock, QuoteContext
from catalog.errors import StoreNotFound
from catalog.menu import index_menu
from catalog.messages import MenuIn
from kernel.money import Money
from payments import Authorization, PaymentDeclined, PaymentRequiresAction, RiskContext
from payments.errors import IntentAmountMismatch, ResourceMissing

MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1000, "modifier_groups": [
        {"id": "grp_extras", "name": "Extras", "min": 0, "max": 2, "options": [
            {"id": "opt_cheese", "name": "Cheese", "price": 150},
            {"id": "opt_bacon", "name": "Bacon", "price": 250}]}]},
    {"id": "itm_fries", "name": "Fries", "price": 400},
]}]}


def store_context(**changes: Any) -> QuoteContext:
    """An online, open store in Berlin that delivers to the drop-off, 1.2 km away."""
    base = QuoteContext(
        store_id="sto_1", tenant_id="ten_1", name="Mitte", currency="EUR", timezone="Europe/Berlin",
        tax_rate_bps=700, tax_inclusive=False, prep_time_default_s=600, accept_window_s=300, lat=52.52,
        lng=13.405, status="online", open_at_time=True, deliverable=True, distance_m=1200,
        delivery_fee=Money(299, "EUR"), region="berlin",
    )
    return replace(base, **changes)


class FakeCatalog:
    """Stores by id, each with a menu and stock counts (an item without a count is not limited)."""

    def __init__(self) -> None:
        self.stores: dict[str, tuple[QuoteContext, MenuIn]] = {}
        self.stock: dict[str, int] = {}
        self.reservations: dict[str, list[tuple[str, int]]] = {}
        self.calls: list[tuple[str, Any]] = []

    def add_store(self, context: QuoteContext | None = None, menu: dict | None = None) -> QuoteContext:
        ctx = context or store_context()
        self.stores[ctx.store_id] = (ctx, msgspec.convert(menu or MENU, MenuIn))
        return ctx

    async def cart_quote(self, conn: object, store_id: str, lat: float, lng: float, at: datetime,
                         lines: Sequence[CartLineInput]) -> CartQuote:
        self.calls.append(("cart_quote", (store_id, at)))
        if store_id not in self.stores:
            raise StoreNotFound("no such store")
        ctx, menu = self.stores[store_id]
        return CartQuote(ctx, index_menu(menu, 1, ctx.currency), dict(self.stock), list(lines), at)

    async def store_tenant(self, conn: object, store_id: str) -> str | None:
        found = self.stores.get(store_id)
        return None if found is None else found[0].tenant_id

    async def reserve(self, conn: object, order_id: str, items: Sequence[tuple[str, int]]) -> None:
        self.calls.append(("reserve", (order_id, list(items))))
        if order_id in self.reservations:
            return
        for item_id, quantity in items:
            if self.stock.get(item_id, quantity) < quantity:
                raise OutOfStock(f"not enough stock left for item {item_id}", param=item_id)
        for item_id, quantity in items:
            if item_id in self.stock:
                self.stock[item_id] -= quantity
        self.reservations[order_id] = list(items)

    async def release(self, conn: object, order_id: str) -> bool:
        items = self.reservations.pop(order_id, None)
        for item_id, quantity in items or ():
            if item_id in self.stock:
                self.stock[item_id] += quantity
        return items is not None


@dataclass
class FakePayments:
    """Holds by idempotency key. `declined` / `challenged`: payment methods the processor declines or
    asks 3-D Secure for; `authorized_apart`: intents the customer confirmed apart, by id, as
    (customer id, amount)."""

    declined: set[str] = field(default_factory=set)
    challenged: set[str] = field(default_factory=set)
    authorized_apart: dict[str, tuple[str, Money]] = field(default_factory=dict)
    holds: dict[str, Authorization] = field(default_factory=dict)  # by idempotency key
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def authorize(self, conn: object, *, customer_id: str, payment_method_id: str, amount: Money,
                        reference: str, idempotency_key: str, metadata: dict[str, Any] | None = None,
                        risk: RiskContext | None = None, conversion_quote: str | None = None) -> Authorization:
        self.calls.append(("authorize", {"customer_id": customer_id, "payment_method_id": payment_method_id,
                                         "amount": amount, "reference": reference,
                                         "idempotency_key": idempotency_key, "metadata": metadata, "risk": risk}))
        if idempotency_key in self.holds:
            return self.holds[idempotency_key]
        intent_id = f"pi_{len(self.calls)}"
        if payment_method_id in self.declined:
            raise PaymentDeclined("Your card was declined.", decline_code="generic_decline", payment_intent=intent_id)
        if payment_method_id in self.challenged:
            raise PaymentRequiresAction(intent_id, {"type": "use_stripe_sdk"})
        hold = Authorization(intent_id, "requires_capture", amount, payment_method_id)
        self.holds[idempotency_key] = hold
        return hold

    async def attach_authorized(self, conn: object, *, intent_id: str, customer_id: str, amount: Money,
                                reference: str, metadata: dict[str, Any] | None = None) -> Authorization:
        self.calls.append(("attach_authorized", {"intent_id": intent_id, "customer_id": customer_id,
                                                 "amount": amount, "reference": reference, "metadata": metadata}))
        owner, authorized = self.authorized_apart.get(intent_id, (None, None))
        if owner != customer_id:
            raise ResourceMissing("No such payment_intent", param="payment_intent")
        if authorized != amount:
            raise IntentAmountMismatch("the payment intent is for another amount", payment_intent=intent_id)
        return Authorization(intent_id, "requires_capture", amount, "pm_apart")

    async def capture(self, conn: object, intent_id: str, amount: Money) -> None:
        self.calls.append(("capture", {"intent_id": intent_id, "amount": amount}))

    async def void(self, conn: object, intent_id: str, reason: str) -> None:
        self.calls.append(("void", {"intent_id": intent_id, "reason": reason}))

    async def refund(self, conn: object, intent_id: str, amount: Money, reason: str, *,
                     idempotency_key: str | None = None, actor: str = "system", borne_by: str | None = None) -> str:
        self.calls.append(("refund", {"intent_id": intent_id, "amount": amount, "reason": reason}))
        return f"re_{len(self.calls)}"

    async def post_split(self, conn: object, *, reference: str, split: Any) -> None:
        self.calls.append(("post_split", {"reference": reference, "split": split}))

    def called(self, name: str) -> list[dict[str, Any]]:
        return [args for called, args in self.calls if called == name]


@dataclass
class FakeSurge:
    """One level everywhere; counts the reads."""

    level: Fraction = Fraction(1)
    reads: int = 0

    async def multiplier(self, lat: float, lng: float) -> Fraction:
        self.reads += 1
        return self.level
