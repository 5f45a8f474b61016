"""The orders consumer group ("orders") on the event stream.

- `dispatch.assigned` / `dispatch.unassigned`: record which courier carries an order.
- `courier.picked_up` / `courier.delivered` (from tracking): the matching transitions, only
  for the courier dispatch assigned; a repeat or a stale event is ignored. The courier's socket
  applies the step itself (through tracking's `CourierSteps` port) in the transaction that writes
  the event, so an event whose step the order already took is skipped quietly.
- our own `order.*` events: enqueue merchant webhooks and push a frame to the tablets.
- `store.opened` (from catalog: opened by hand, or a pause ended): the automatic pause counts
  expiries from there again, so expiries from before the reopen never pause the store anew.
- catalog's store events a merchant may see (`store.paused` by hand or automatically, `store.opened`,
  `menu.published`, `item.sold_out`): merchant webhooks and the events API, like order events.
- payments' money events a merchant may see (`refund.created` of its orders, `payout.created` / `.paid` /
  `.failed` of its restaurant payouts): merchant webhooks and the events API, when they name a tenant.

Each handler runs inside the consumer's transaction (which also records the event id,
so a redelivery is skipped); domain refusals are logged, never retried forever.
"""

from __future__ import annotations

import logging
from typing import get_args

import asyncpg
import msgspec
import redis.asyncio as aioredis

from catalog.event_types import ItemSoldOut, MenuPublished, StoreFacts, StoreOpened, StorePaused
from dispatch.event_types import DispatchAssigned, DispatchUnassigned
from kernel.errors import DomainError
from kernel.eventbus import EventHandler
from kernel.outbox import Event, on
from orders import store
from orders.event_types import OrderEvent
from orders.lifecycle import OrderLifecycle
from orders.live import publish_frame
from orders.messages import FeedFrame, feed_encoder
from orders.model import SYSTEM, Action
from orders.webhooks import Webhooks
from payments.event_types import PaymentRefunded, PayoutCreated, PayoutFailed, PayoutPaid, RefundCreated
from tracking.event_types import CourierDelivered, CourierPickedUp, CourierStep

log = logging.getLogger(__name__)

# Our own events about an order: each becomes merchant webhooks and a frame to the tablets.
ORDER_EVENTS: tuple[type[OrderEvent], ...] = get_args(OrderEvent)
# Catalog's events about a store that its merchant sees too (webhooks and the events API); store.opened
# has a handler of its own, which does this as well.
STORE_EVENTS: tuple[type[StoreFacts], ...] = (StorePaused, MenuPublished, ItemSoldOut)
# Payments' events about a tenant's money that its merchant sees (webhooks and the events API).
MONEY_EVENTS: tuple[type[RefundCreated | PayoutCreated | PayoutPaid | PayoutFailed], ...] = (
    RefundCreated, PayoutCreated, PayoutPaid, PayoutFailed)


# The states an order is in once a courier step was applied (the socket applies it as it records it).
_DONE_BY = {Action.PICK_UP: ("picked_up", "delivered"), Action.DELIVER: ("delivered",)}


class OrderEvents:
    def __init__(self, lifecycle: OrderLifecycle, webhooks: Webhooks, redis: aioredis.Redis, prefix: str) -> None:
        self.lifecycle = lifecycle
        self.webhooks = webhooks
        self.redis = redis
        self.prefix = prefix

    def handlers(self) -> dict[str, EventHandler]:
        return dict([
            on(DispatchAssigned, self.on_assigned),
            on(DispatchUnassigned, self.on_unassigned),
            on(CourierPickedUp, self.on_picked_up),
            on(CourierDelivered, self.on_delivered),
            on(StoreOpened, self.on_store_opened),
            *(on(kind, self.on_store_event) for kind in STORE_EVENTS),
            *(on(kind, self.on_order_event) for kind in ORDER_EVENTS),
            *(on(kind, self.on_money_event) for kind in MONEY_EVENTS),
            on(PaymentRefunded, self.on_payment_refunded),
        ])

    async def on_assigned(self, conn: asyncpg.Connection, event: Event, assigned: DispatchAssigned) -> None:
        await store.assign_courier(conn, list(assigned.order_ids), assigned.courier_id)

    async def on_unassigned(self, conn: asyncpg.Connection, event: Event, unassigned: DispatchUnassigned) -> None:
        await store.unassign_courier(conn, list(unassigned.order_ids), unassigned.courier_id)

    async def on_picked_up(self, conn: asyncpg.Connection, event: Event, step: CourierPickedUp) -> None:
        await self._courier_step(conn, event, step, Action.PICK_UP)

    async def on_delivered(self, conn: asyncpg.Connection, event: Event, step: CourierDelivered) -> None:
        await self._courier_step(conn, event, step, Action.DELIVER)

    async def _courier_step(self, conn: asyncpg.Connection, event: Event, step: CourierStep, action: Action) -> None:
        order_id, courier_id = step.order_id, step.courier_id
        if not order_id or not courier_id:
            log.warning("%s without order or courier: %s", event.type, event.id)
            return
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes only this handler's work
                assigned, status = await store.courier_and_status(conn, order_id)
                if assigned != courier_id:
                    log.warning("%s for order %s by courier %s, assigned is %s: ignored",
                                event.type, order_id, courier_id, assigned)
                    return
                if status in _DONE_BY[action]:
                    return  # the courier's socket moved the order when it recorded this event
                proof = msgspec.to_builtins(step.proof) if step.proof is not None else None
                await self.lifecycle.act(order_id, SYSTEM, action, proof=proof, reason=event.type, conn=conn)
        except DomainError as exc:
            log.info("%s for order %s ignored: %s", event.type, order_id, exc.message)

    async def on_store_opened(self, conn: asyncpg.Connection, event: Event, opened: StoreOpened) -> None:
        if opened.store_id:
            await store.reset_expiry_streak(conn, opened.store_id)
        await self.on_store_event(conn, event, opened)

    async def on_store_event(self, conn: asyncpg.Connection, event: Event, facts: StoreFacts) -> None:
        """The store's merchant hears of it: webhooks and the events API carry the data as written."""
        if facts.tenant_id:
            await self.webhooks.enqueue(conn, facts.tenant_id, event)

    async def on_money_event(self, conn: asyncpg.Connection, event: Event,
                             money: RefundCreated | PayoutCreated | PayoutPaid | PayoutFailed) -> None:
        """A refund of the tenant's order or a payout of its balance: its merchant hears of it (a courier's
        payout, or a refund of an intent that pays for no restaurant's order, names no tenant)."""
        if money.tenant_id:
            await self.webhooks.enqueue(conn, money.tenant_id, event)

    async def on_order_event(self, conn: asyncpg.Connection, event: Event, order: OrderEvent) -> None:
        """Merchant webhooks and the tablets' frame carry the event's data as it was written."""
        if not order.tenant_id:
            return
        await self.webhooks.enqueue(conn, order.tenant_id, event)
        frame = FeedFrame(event_id=event.id, event_type=event.type, order_id=order.order_id, status=order.status,
                          at=event.occurred_at, data=event.data)
        try:
            await publish_frame(self.redis, self.prefix, order.tenant_id, feed_encoder.encode(frame))
        except (OSError, aioredis.RedisError) as exc:  # live fan-out is best effort
            log.warning("tablet feed publish failed: %s", exc)

    async def on_payment_refunded(self, conn: asyncpg.Connection, event: Event, refund: PaymentRefunded) -> None:
        """A refund of one of an order's intents (an operator's `POST /v1/refunds`, or one orders made
        and counted already): counted on the order once, by its refund id (see `orders.money`)."""
        await self.lifecycle.money.on_payment_refunded(conn, refund)
