"""Merchant-initiated refunds: a restaurant gives a customer money back for one of its orders (all
that is left, an amount, or the value of some lines), for a reason from a fixed list, within limits
(the share of the order's charge refunded in all, the age of the order; the reason codes are
`merchant_messages.RefundReason`), and pays for it from its
balance. There is one money path: the refund is `OrderMoney.refund` (as for missing items after
delivery), which asks payments to refund the card with the restaurant as the bearer
(`restaurant_payable` is debited instead of `platform_refunds`) and counts it on the order
(`refunded`, `order.refunded`) in the same transaction. See docs/MONEY.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

import asyncpg

from kernel.clock import Clock
from kernel.errors import InvalidTransition, ValidationFailed
from kernel.ids import new_id
from kernel.money import Money, round_half_even
from orders import money_store, store
from orders.errors import OrderNotFound
from orders.model import Caller, can_see
from orders.money import OrderMoney
from orders.ports import Payments
from orders.pricing import Refund, breakdown_from_dict, missing_item_refund
from payments import Charge


@dataclass(frozen=True, slots=True)
class RefundLimits:
    max_share_bps: int = 10_000  # of what the order's charges captured, refunded in all (every bearer)
    max_age_days: int = 7  # since delivery (or the order's end, for a cancellation fee)
    # A tenant's own limits, by contract: (tenant id, max_share_bps, max_age_days).
    per_tenant: tuple[tuple[str, int, int], ...] = ()

    def of(self, tenant_id: str) -> RefundLimits:
        """The limits that apply to `tenant_id`'s refunds: its own where its contract sets them."""
        for tenant, share_bps, age_days in self.per_tenant:
            if tenant == tenant_id:
                return RefundLimits(share_bps, age_days)
        return self


@dataclass(frozen=True, slots=True)
class MerchantRefund:
    order_id: str
    amount: Money
    reason: str
    refund_ids: list[str]
    order_refunded: int


def check_limits(charges: Sequence[Charge], amount: int, since: datetime, now: datetime,
                 limits: RefundLimits) -> None:
    """Refuse a refund over what is left, over the share limit or of an order too old. Pure."""
    if now - since > timedelta(days=limits.max_age_days):
        raise InvalidTransition(f"orders older than {limits.max_age_days} days cannot be refunded by the restaurant",
                                code="refund_window_closed")
    captured = sum(c.captured for c in charges)
    refunded = sum(c.refunded for c in charges)
    if amount <= 0 or amount > captured - refunded:
        raise ValidationFailed(f"a refund must be between 1 and what is left to refund ({captured - refunded})",
                               param="amount", code="amount_too_large")
    cap = round_half_even(Fraction(captured * limits.max_share_bps, 10_000))
    if refunded + amount > cap:
        raise ValidationFailed(f"refunds of this order may total at most {cap} ({limits.max_share_bps} bps of "
                               f"its charge); {refunded} is refunded already", param="amount",
                               code="refund_limit_exceeded")


def allocate(amount: int, charges: Sequence[Charge]) -> list[tuple[str, int]]:
    """Which intents pay a refund of `amount`: the order's hold first, then its tip charges. Pure."""
    out, left = [], amount
    for c in charges:
        part = min(left, c.refundable)
        if part > 0:
            out.append((c.intent_id, part))
            left -= part
    return out


class MerchantRefunds:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, payments: Payments, money: OrderMoney,
                 limits: RefundLimits) -> None:
        self.pool = pool
        self.clock = clock
        self.payments = payments
        self.money = money
        self.limits = limits

    async def refund(self, order_id: str, caller: Caller, *, amount: int | None, lines: dict[int, int],
                     reason: str, key: str | None) -> MerchantRefund:
        key = key or new_id("mrf")
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.lock_order(conn, order_id)
            if row is None or not can_see(caller, row["customer_id"], row["tenant_id"], row["store_id"],
                                          row["courier_id"]):
                raise OrderNotFound("no such order", param="order_id")
            since = row["delivered_at"] or row["ended_at"]
            if not row["captured"] or since is None or await self.money.collection_pending(conn, order_id):
                raise InvalidTransition("only an order whose charge was collected can be refunded",
                                        code="order_not_refundable", extra={"status": row["status"]})
            paid = await money_store.payments_of(conn, order_id)
            ids = [row["intent_id"], *(p["intent_id"] for p in paid if p["intent_id"])]
            charges = [c for c in await self.payments.charges(conn, ids) if c.captured > 0]
            cur = row["currency"]
            if lines:
                amount = await self._lines_value(conn, row, lines)
            elif amount is None:
                amount = sum(c.refundable for c in charges)
            check_limits(charges, amount, since, self.clock.now(), self.limits.of(row["tenant_id"]))
            refund_ids = []
            for intent_id, part in allocate(amount, charges):
                refund_ids.append(await self.money.refund(
                    conn, row, Money(part, cur), reason, f"merchant:{key}:{intent_id}", intent_id=intent_id,
                    actor=caller.account_id or "system", borne_by=row["tenant_id"]))
            after = await store.lock_order(conn, order_id)
            return MerchantRefund(order_id, Money(amount, cur), reason, refund_ids,
                                  after["refunded"] if after else 0)

    async def _lines_value(self, conn: asyncpg.Connection, row: asyncpg.Record, lines: dict[int, int]) -> int:
        """What the lines' food (and the tax on it, where added on top) came to, as for missing items."""
        b = breakdown_from_dict(json.loads(row["pricing"]))
        ordered = {r["line_no"]: r for r in await store.lines_of(conn, row["id"])}
        earlier, _ = await self.money.missing_refunds(conn, row["id"], b.currency)
        given: list[Refund] = list(earlier)
        total = 0
        for i, (line_no, qty) in enumerate(lines.items()):
            line = ordered.get(line_no)
            if line is None:
                raise ValidationFailed("no such line", param=f"lines[{i}].line_no")
            if qty > line["quantity"]:
                raise ValidationFailed("more than ordered", param=f"lines[{i}].quantity")
            share = Money(line["line_total"], b.currency).times(Fraction(qty, line["quantity"]))
            refund = missing_item_refund(share, b, given)
            given.append(refund)
            total += refund.total.amount
        return total
