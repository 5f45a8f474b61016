"""The read side: an order as its viewer sees it, cursor-paginated lists, and who an order belongs
to. Reads through `store.py` and answers with `views.py`; it never imports the write side (the
checkout, the lifecycle, the service facade).
"""

from __future__ import annotations

import asyncpg

from kernel.errors import ValidationFailed
from orders import store
from orders.errors import OrderNotFound
from orders.messages import OrderListQuery, OrderOut, OrderPage
from orders.model import ACTIVE, Actor, Caller, Status, can_see
from orders.order import Order, OrderParties
from orders.pricing import FeePolicy
from orders.views import order_out, order_summary


def parse_statuses(raw: str | None) -> list[str] | None:
    """`status=` of a list: one status, a comma list, or "active" for every open one."""
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


class OrderQueries:
    def __init__(self, pool: asyncpg.Pool, policy: FeePolicy) -> None:
        self.pool = pool
        self.policy = policy  # an order shows what cancelling it would cost now

    def view(self, order: Order, caller: Caller) -> OrderOut:
        """`order` as `caller` sees it (checkout shows the order it just placed this way)."""
        return order_out(order, caller, self.policy)

    async def order(self, order_id: str, caller: Caller) -> OrderOut:
        async with self.pool.acquire() as conn:
            order = await store.order_view(conn, order_id)
        if order is None or not can_see(caller, order.customer_id, order.tenant_id, order.store_id, order.courier_id):
            raise OrderNotFound("no such order", param="order_id")
        return self.view(order, caller)

    async def orders(self, caller: Caller, q: OrderListQuery, store_id: str | None = None) -> OrderPage:
        """The caller's orders, newest first: a customer's own, a restaurant's tenant's (of one store
        when `store_id` is given: the caller checked it may act for it), any for an operator."""
        customer = caller.account_id if caller.actor is Actor.CUSTOMER else None
        tenant = caller.tenant_id if caller.actor is Actor.RESTAURANT else None
        async with self.pool.acquire() as conn:
            found = await store.list_orders(conn, customer_id=customer, store_id=store_id, tenant_id=tenant,
                                            statuses=parse_statuses(q.status), cursor=q.cursor, limit=q.limit + 1)
        items = [order_summary(o) for o in found[: q.limit]]
        more = len(found) > q.limit
        return OrderPage(items=items, next_cursor=items[-1].id if more else None, has_more=more)

    async def parties(self, order_id: str) -> OrderParties | None:
        """The committed order's owner, tenant and status (None: no such order)."""
        async with self.pool.acquire() as conn:
            return await store.order_parties(conn, order_id)
