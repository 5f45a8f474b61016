"""An order's money after checkout: what delivery collects (and the sweep that collects later what
delivery could not), what an ending (reject, expire, cancel) releases or keeps as a fee, and the
refunds the order counts.

The order's figures agree with payments' by construction:

- `captured` is what the order's intents captured: delivery's capture of the hold and of tip
  top-up holds, a cancellation fee, a tip raised after delivery. Nothing else captures an order's
  intent: payments refuses to capture or cancel it through the API (the order alone knows what is
  due), so the order's capture and void always find the hold where the order left it.
- `refunded` is what the customer got back from the bill: missing items reported before delivery
  (never charged: delivery captures that much less, and the processor refunds nothing), plus every
  refund payments made on the order's intents, counted once by its refund id (`order_refunds`):
  in the transaction that refunded when orders started it (missing items after delivery), or by
  the orders consumer of `payment.refunded` when an operator did (`POST /v1/refunds`). A refund
  orders started is already counted when its event comes back, so it is not counted twice.
- Each addition to `refunded` writes `order.refunded` (and so a merchant webhook) with its amount,
  reason and refund id (null for missing items before delivery), so the webhooks add up to the
  order's figure, and those with a refund id to the intents' `amount_refunded` and the ledger's
  refund entries.

Delivery and money that cannot be collected: the food is at the door whatever the processor says,
so a delivery always stands (as at DoorDash, where a failed charge never un-delivers an order).
Its money (the captures and the split) runs in a savepoint; when payments cannot do it (the
processor is down, or refuses: a charge it does not know), the savepoint is undone, the order is
delivered with nothing captured yet and its collection is recorded (`order_collections`). The
sweep (`collect_due`, every few seconds in the orders component) tries again with the same
idempotency keys (a capture the processor made before an answer was lost is found, not repeated):
an outage (503) is retried with back-off; a refusal will not change by itself, so the sweep gives
up at once and leaves the order for an operator (`failed_at`, `last_error`, and a log line).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from kernel.clock import Clock
from kernel.errors import DomainError
from kernel.money import Money
from kernel.outbox import MoneyData, write_events
from orders import money_store, store
from orders.event_types import OrderRefunded
from orders.model import Status
from orders.ports import Catalog, Payments, SplitFactory
from orders.pricing import (
    FeePolicy,
    PriceBreakdown,
    Refund,
    SplitAmounts,
    breakdown_from_dict,
    cancellation_split,
    delivery_split,
)
from payments.event_types import PaymentRefunded

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionPolicy:
    """How the sweep retries a delivery's collection that failed on a processor outage."""

    base_delay_s: float = 30.0
    max_delay_s: float = 3600.0
    give_up_after: int = 30  # tries (about a day at the longest delay)


def order_facts(row: Any, status: Status) -> dict[str, Any]:
    """What every order event after `order.placed` starts with (`orders.event_types.OrderFacts`),
    from the order's row and its status after the change: `OrderReady(**order_facts(row, s), ...)`."""
    return {"order_id": row["id"], "store_id": row["store_id"], "tenant_id": row["tenant_id"],
            "customer_id": row["customer_id"], "status": status.value}


def order_of(reference: str | None) -> str | None:
    """The order an intent pays for, from the reference orders gave it: the order id, or
    `<order id>:tip:<n>` for a tip's own intent. None for an intent made through the API."""
    if not reference or not reference.startswith("ord_"):
        return None
    return reference.split(":", 1)[0]


class OrderMoney:
    """An order's money after checkout, on the caller's connection (the lifecycle's transaction),
    except for the collection sweep, which opens its own."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, catalog: Catalog, payments: Payments, split: SplitFactory,
                 fees: FeePolicy, collection: CollectionPolicy | None = None) -> None:
        self.pool = pool
        self.clock = clock
        self.catalog = catalog  # an ending gives the order's stock back
        self.payments = payments
        self.split = split
        self.fees = fees
        self.collection = collection or CollectionPolicy()

    # ---- refunds ----------------------------------------------------------------------------------

    async def count_refund(self, conn: asyncpg.Connection, row: Any, *, refund_id: str | None, intent_id: str | None,
                           amount: Money, reason: str | None) -> bool:
        """Add a refund to the order's `refunded` and announce it with `order.refunded`, once:
        a refund id counted before is skipped (False). `refund_id` None: missing items before
        delivery, which delivery will not capture (no payments refund, nothing to dedupe)."""
        total: int | None
        if refund_id is None:
            total = await money_store.add_withheld(conn, row["id"], amount.amount)
        else:
            total = await money_store.count_refund(conn, refund_id=refund_id, order_id=row["id"],
                                                   intent_id=intent_id or "", amount=amount.amount, reason=reason,
                                                   at=self.clock.now())
            if total is None:
                return False
        cur = amount.currency
        await write_events(conn, [OrderRefunded(
            **order_facts(row, Status(row["status"])), amount=MoneyData(amount.amount, cur), reason=reason,
            refund_id=refund_id, payment_intent=intent_id, refunded=MoneyData(total, cur),
        ).event(row["id"])])
        return True

    async def on_payment_refunded(self, conn: asyncpg.Connection, refund: PaymentRefunded) -> None:
        """The orders consumer of `payment.refunded`: a refund of one of an order's intents
        (an operator's `POST /v1/refunds`, or one orders made and has counted already)."""
        order_id = order_of(refund.reference)
        if order_id is None:
            return
        row = await store.lock_order(conn, order_id)
        if row is None:
            log.warning("payment.refunded %s names order %s, which does not exist", refund.refund_id, order_id)
            return
        await self.count_refund(conn, row, refund_id=refund.refund_id, intent_id=refund.intent_id,
                                amount=Money(refund.amount.amount, refund.amount.currency), reason=refund.reason)

    async def refund(self, conn: asyncpg.Connection, row: Any, amount: Money, reason: str, key: str, *,
                     intent_id: str | None = None, actor: str = "system", borne_by: str | None = None) -> str:
        """Refund `amount` of the order's captured charge now (the order's transaction; `key` makes a
        retry find the same refund) and count it on the order in the same transaction. `intent_id`:
        one of the order's intents (default its hold's); `borne_by`: the restaurant tenant paying it."""
        intent = intent_id or row["intent_id"]
        refund_id = str(await self.payments.refund(conn, intent, amount, reason, idempotency_key=key, actor=actor,
                                                   borne_by=borne_by))
        await self.count_refund(conn, row, refund_id=refund_id, intent_id=intent, amount=amount, reason=reason)
        return refund_id

    # ---- ending before pickup ---------------------------------------------------------------------

    async def end(self, conn: asyncpg.Connection, row: Any, fee: Money | None, reason: str) -> int:
        """Reject / expire / cancel before pickup: void the hold, or capture the cancellation fee
        and post its split. Stock and promo redemption are given back. Returns what was captured."""
        extra = [p for p in await money_store.payments_of(conn, row["id"])
                 if p["kind"] == "tip_hold" and not p["settled"]]
        captured = 0
        if fee is not None and fee.amount > 0:
            await self.payments.capture(conn, row["intent_id"], fee)
            fees = self.fees.for_tenant(row["tenant_id"])
            await self.post_split(conn, f"{row['id']}:cancel", row, cancellation_split(fee, fees))
            captured = fee.amount
        else:
            await self.payments.void(conn, row["intent_id"], reason)
        for p in extra:
            await self.payments.void(conn, p["intent_id"], reason)
        await money_store.settle_payments(conn, row["id"], "tip_hold")
        await self.catalog.release(conn, row["id"])
        if row["promo_id"] is not None:
            await store.release_promo(conn, row["id"], self.clock.now())
        return captured

    # ---- delivery ---------------------------------------------------------------------------------

    async def missing_refunds(self, conn: asyncpg.Connection, order_id: str, cur: str) -> tuple[list[Refund], list]:
        payments = await money_store.payments_of(conn, order_id)
        refunds = [Refund(Money(p["amount"], cur), Money(p["tax"], cur))
                   for p in payments if p["kind"] == "missing_refund"]
        return refunds, payments

    async def deliver(self, conn: asyncpg.Connection, row: Any, b: PriceBreakdown) -> int:
        """Collect the delivered order's money; returns what was captured. When payments cannot
        (see the module's docstring), nothing is captured now, the collection is recorded for
        the sweep and the delivery stands (0)."""
        try:
            async with conn.transaction():  # a savepoint: a failed collection undoes only its own writes
                return await self._collect(conn, row, b)
        except DomainError as exc:
            await self._defer(conn, row["id"], exc, tries=0)
            return 0

    async def _collect(self, conn: asyncpg.Connection, row: Any, b: PriceBreakdown) -> int:
        """Capture what is due now (tip changes and missing-item refunds included) from the hold,
        then from tip top-up holds; void what is left; post the split."""
        refunds, payments = await self.missing_refunds(conn, row["id"], b.currency)
        split = delivery_split(b, refunds, self.fees.for_tenant(row["tenant_id"]))
        due = split.customer_charged.amount
        hold = json.loads(row["pricing"]).get("hold", b.total.amount)
        take = min(due, hold)
        if take > 0:
            await self.payments.capture(conn, row["intent_id"], Money(take, b.currency))
        else:
            await self.payments.void(conn, row["intent_id"], "nothing due")
        left = due - take
        for p in payments:
            if p["kind"] != "tip_hold" or p["settled"]:
                continue
            part = min(left, p["amount"])
            if part > 0:
                await self.payments.capture(conn, p["intent_id"], Money(part, b.currency))
            else:
                await self.payments.void(conn, p["intent_id"], "tip not needed")
            left -= part
        await money_store.settle_payments(conn, row["id"], "tip_hold")
        await self.post_split(conn, row["id"], row, split)
        return due

    async def _defer(self, conn: asyncpg.Connection, order_id: str, exc: DomainError, tries: int) -> None:
        """Record a failed collection: retried with back-off when payments was unavailable (503),
        given up at once when it refused (a retry would be refused the same way)."""
        now = self.clock.now()
        retry = exc.status == 503 and tries + 1 < self.collection.give_up_after
        delay = min(self.collection.max_delay_s, self.collection.base_delay_s * 2 ** tries)
        await money_store.defer_collection(conn, order_id, error=f"{exc.code}: {exc.message}",
                                           next_attempt_at=now + timedelta(seconds=delay), give_up=not retry, now=now)
        if retry:
            log.warning("order %s delivered, money not collected yet (%s); retried later", order_id, exc.code)
        else:
            log.error("order %s delivered, money not collected (%s: %s); left for an operator", order_id, exc.code,
                      exc.message)

    async def collection_pending(self, conn: asyncpg.Connection, order_id: str) -> bool:
        """Whether delivery left the order's money to collect (the sweep still tries, or gave up)."""
        return await money_store.collection_of(conn, order_id) is not None

    async def collect_due(self, limit: int = 50) -> int:
        """Retry the collections that are due; returns how many succeeded."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            ids = await money_store.due_collections(conn, now, limit)
        collected = 0
        for order_id in ids:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await store.lock_order(conn, order_id)
                due = None if row is None else await money_store.lock_collection(conn, order_id, now)
                if row is None or due is None:
                    continue
                b = breakdown_from_dict(json.loads(row["pricing"]))
                try:
                    async with conn.transaction():
                        captured = await self._collect(conn, row, b)
                except DomainError as exc:
                    await self._defer(conn, order_id, exc, tries=due["attempts"])
                    continue
                await money_store.finish_collection(conn, order_id)
                await money_store.add_captured(conn, order_id, captured)
                collected += 1
                log.info("order %s: money collected after %d failed tries", order_id, due["attempts"])
        return collected

    async def post_split(self, conn: asyncpg.Connection, reference: str, row: Any, s: SplitAmounts) -> None:
        courier, platform = s.courier_earnings.amount, s.platform_revenue.amount
        courier_id = row["courier_id"]
        if courier_id is None and courier:
            platform, courier = platform + courier, 0  # delivered without a known courier (operator)
        await self.payments.post_split(conn, reference=reference, split=self.split(
            currency=s.customer_charged.currency, customer_charged=s.customer_charged.amount,
            restaurant_payable=s.restaurant_payable.amount, restaurant_id=row["tenant_id"],
            courier_earnings=courier, courier_id=courier_id if courier else None,
            platform_revenue=platform, tax_payable=s.tax_payable.amount,
            platform_funded=s.platform_funded.amount if s.platform_funded else 0,
        ))
        cur = s.customer_charged.currency
        await money_store.record_settlement(
            conn, reference=reference, order_id=row["id"], tenant_id=row["tenant_id"], currency=cur,
            commission=(s.commission or Money.zero(cur)).amount, commission_bps=s.commission_bps,
            tip=(s.tip or Money.zero(cur)).amount, at=self.clock.now())
