"""The read side: an order as its viewer sees it, and cursor-paginated lists."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kernel.errors import ValidationFailed
from kernel.money import Money
from orders import store
from orders.errors import OrderNotFound
from orders.lifecycle import Caller, can_see
from orders.messages import (
    CancelTerms,
    MoneyOut,
    OrderLineOut,
    OrderListQuery,
    OrderOut,
    OrderPage,
    OrderSummary,
    Point,
    StatusChange,
    Window,
)
from orders.model import ACTIVE, Actor, Status, allowed_actions, tip_change_deadline
from orders.pricing import PriceBreakdown, breakdown_from_dict, cancellation_fee
from orders.service import OrdersService, fee_lines, money_out


def _m(amount: int, cur: str) -> MoneyOut:
    return MoneyOut(amount, cur)


def order_out(row: Any, caller: Caller, service: OrdersService, now: datetime,
              breakdown: PriceBreakdown | None = None) -> OrderOut:
    """The order as `caller` sees it; `breakdown`: its pricing when the caller has it (checkout
    just computed it), else it is read from the row."""
    cur = row["currency"]
    b = breakdown if breakdown is not None else breakdown_from_dict(json.loads(row["pricing"]))
    status = Status(row["status"])
    lines = [
        OrderLineOut(line_no=ln["line_no"], item_id=ln["item_id"], name=ln["name"], quantity=ln["quantity"],
                     unit_price=_m(ln["unit_price"], cur), options=ln["options"],
                     line_total=_m(ln["line_total"], cur), missing_quantity=ln["missing_quantity"])
        for ln in json.loads(row["lines"])
    ]
    history = [
        StatusChange(h["from_status"], h["to_status"], h["actor"], h["reason"], datetime.fromisoformat(h["at"]))
        for h in json.loads(row["history"])
    ]
    may_cancel = status in (Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY)
    fee = cancellation_fee(status, Actor.CUSTOMER, b, service.policy) if may_cancel else Money.zero(cur)
    eta = row["delivered_at"] or row["promised_to"]
    return OrderOut(
        id=row["id"], status=status.value, customer_id=row["customer_id"], store_id=row["store_id"],
        tenant_id=row["tenant_id"], region=row["region"], currency=cur, lines=lines, subtotal=money_out(b.subtotal),
        fees=fee_lines(b), total=_m(row["total"], cur), refunded=_m(row["refunded"], cur),
        captured=_m(row["captured"], cur), cancel_fee=_m(row["cancel_fee"], cur),
        pickup=Point(row["pickup_lat"], row["pickup_lng"]), dropoff=Point(row["dropoff_lat"], row["dropoff_lng"]),
        address=row["address"], placed_at=row["placed_at"], accept_by=row["accept_by"],
        accepted_at=row["accepted_at"], prep_time_s=row["prep_time_s"], ready_at=row["ready_at"],
        picked_up_at=row["picked_up_at"], delivered_at=row["delivered_at"],
        promised_window=Window(row["promised_from"], row["promised_to"]),
        eta=None if status in (Status.REJECTED, Status.CANCELLED, Status.EXPIRED) else eta,
        courier_id=row["courier_id"], end_reason=row["end_reason"],
        cancel=CancelTerms(allowed=may_cancel, fee=money_out(fee),
                           fee_from=row["accept_by"] if status is Status.PLACED else None),
        tip_changeable_until=tip_change_deadline(row["delivered_at"]), rating=row["rating"], history=history,
        allowed_actions=[a.value for a in allowed_actions(status, caller.actor)],
        delivery_note=row["delivery_note"],
    )


async def get_order(service: OrdersService, order_id: str, caller: Caller) -> OrderOut:
    async with service.pool.acquire() as conn:
        row = await store.order_view(conn, order_id)
    if row is None or not can_see(row, caller):
        raise OrderNotFound("no such order", param="order_id")
    return order_out(row, caller, service, service.clock.now())


def parse_statuses(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    if raw == "active":
        return sorted(s.value for s in ACTIVE)
    out = [s.strip() for s in raw.split(",") if s.strip()]
    valid = {s.value for s in Status}
    for s in out:
        if s not in valid:
            raise ValidationFailed(f"unknown status {s!r}", param="status")
    return out


async def list_orders(service: OrdersService, caller: Caller, q: OrderListQuery,
                      store_id: str | None = None) -> OrderPage:
    customer = caller.account_id if caller.actor is Actor.CUSTOMER else None
    tenant = caller.tenant_id if caller.actor is Actor.RESTAURANT else None
    async with service.pool.acquire() as conn:
        rows = await store.list_orders(conn, customer_id=customer, store_id=store_id, tenant_id=tenant,
                                       statuses=parse_statuses(q.status), cursor=q.cursor, limit=q.limit + 1)
    items = [
        OrderSummary(id=r["id"], status=r["status"], store_id=r["store_id"], customer_id=r["customer_id"],
                     total=_m(r["total"], r["currency"]), placed_at=r["placed_at"], accept_by=r["accept_by"],
                     ready_at=r["ready_at"], courier_id=r["courier_id"])
        for r in rows[: q.limit]
    ]
    return OrderPage(items=items, next_cursor=items[-1].id if len(rows) > q.limit else None)
