"""The "tracking" consumer group: keeps the order projection (`tracking_orders`) from
order.* and dispatch.* events, tells the watchers of an order what changed, and tells the
process holding a courier's socket which orders it carries now (and the courier's app, when an
operator gave an order to it or took one from it: `order.courier_assigned`).

Each handler runs in the consumer's transaction (deduplicated by event id). Redis writes
and publishes happen inside it, before the commit: if the commit fails the event comes
back and they are repeated with the same content (at-least-once, idempotent)."""

from __future__ import annotations

import asyncpg

from dispatch.event_types import DispatchAssigned, DispatchUnassigned
from kernel.eventbus import EventHandler
from kernel.outbox import Event, TypedHandler, on
from orders.event_types import (
    OrderAccepted,
    OrderCancelled,
    OrderCourierAssigned,
    OrderDelivered,
    OrderExpired,
    OrderFacts,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    OrderRejected,
)
from tracking import store
from tracking.messages import Assigned, BundleChanged, LatLng, OrderStatus, Unassigned, encoder
from tracking.service import TrackingService


class Projection:
    def __init__(self, service: TrackingService) -> None:
        self.service = service

    def handlers(self) -> dict[str, EventHandler]:
        return dict([
            on(OrderPlaced, self.placed),
            on(OrderAccepted, self.accepted),
            on(DispatchAssigned, self.assigned),
            on(DispatchUnassigned, self.unassigned),
            on(OrderCourierAssigned, self.courier_assigned),
            on(OrderReady, self._status_handler("ready")),
            on(OrderPickedUp, self._status_handler("picked_up")),
            on(OrderDelivered, self._status_handler("delivered")),
            on(OrderCancelled, self._status_handler("cancelled")),
            on(OrderRejected, self._status_handler("rejected")),
            on(OrderExpired, self._status_handler("expired")),
        ])

    async def placed(self, conn: asyncpg.Connection, event: Event, placed: OrderPlaced) -> None:
        await self._publish(event, await store.record_order(conn, placed, "placed"))

    async def accepted(self, conn: asyncpg.Connection, event: Event, accepted: OrderAccepted) -> None:
        await self._publish(event, await store.record_order(conn, accepted, "accepted"))

    def _status_handler(self, status: str) -> TypedHandler[OrderFacts]:
        async def handle(conn: asyncpg.Connection, event: Event, order: OrderFacts) -> None:
            row = await store.set_status(conn, order.order_id, status)
            await self._publish(event, row)
            if row is not None and row.courier_id:
                # Picked up changes the next stop (ETA, geofence); the end of an order ends the bundle.
                await self._bundle_changed(conn, row.courier_id, row.region)

        return handle

    async def assigned(self, conn: asyncpg.Connection, event: Event, assigned: DispatchAssigned) -> None:
        courier_id = assigned.courier_id
        touched: dict[str, str | None] = {}
        for order_id in assigned.order_ids:
            row, previous = await store.set_courier(conn, order_id, courier_id)
            await self._publish(event, row)
            if row is not None:
                touched[courier_id] = row.region
                if previous and previous != courier_id:
                    touched[previous] = row.region  # reassigned: the old courier stops publishing here
            elif previous and previous != courier_id:  # an operator gave it to another courier first
                await self._tell(courier_id, Unassigned(order_id))
        for cid, region in touched.items():
            await self._bundle_changed(conn, cid, region)

    async def unassigned(self, conn: asyncpg.Connection, event: Event, unassigned: DispatchUnassigned) -> None:
        courier_id = unassigned.courier_id
        region: str | None = None
        changed = False
        for order_id in unassigned.order_ids:
            row, _previous = await store.set_courier(conn, order_id, None, only_if=courier_id)
            await self._publish(event, row)
            if row is not None:
                changed, region = True, row.region
        if changed:
            await self._bundle_changed(conn, courier_id, region)

    async def courier_assigned(self, conn: asyncpg.Connection, event: Event, assigned: OrderCourierAssigned) -> None:
        """An operator gave the order to a courier by hand: tracking's view follows (dispatch's assignments of
        it leave it so from now on), the order's watchers see the new courier (and no position of the old
        one), both couriers' sockets carry their new bundles, and both apps are told."""
        order_id, courier_id = assigned.order_id, assigned.courier_id
        row, previous = await store.hand_to(conn, order_id, courier_id)
        if row is None:
            return
        await self._publish(event, row)
        await self._bundle_changed(conn, courier_id, row.region)
        pickup, dropoff = assigned.pickup, assigned.dropoff
        await self._tell(courier_id, Assigned(order_id, LatLng(pickup.lat, pickup.lng),
                                              LatLng(dropoff.lat, dropoff.lng)))
        if previous and previous != courier_id:
            await self._bundle_changed(conn, previous, row.region)
            await self._tell(previous, Unassigned(order_id))

    async def _tell(self, courier_id: str, frame: Assigned | Unassigned) -> None:
        """A frame for the courier's app, on its channel (the process holding its socket forwards it)."""
        service = self.service
        await service.publisher.publish(service.channels.courier(courier_id), encoder.encode(frame))

    async def _publish(self, event: Event, row: store.TrackedOrder | None) -> None:
        if row is None:
            return
        service = self.service
        message = OrderStatus(row.order_id, row.updated_at, row.status, row.version, row.courier_id, event.type)
        await service.publisher.publish(service.channels.order(row.order_id), encoder.encode(message))

    async def _bundle_changed(self, conn: asyncpg.Connection, courier_id: str, region: str | None) -> None:
        service = self.service
        region = region or service.config.region
        orders = await store.courier_bundle(conn, courier_id)
        pipe = service.redis.pipeline(transaction=False)
        key = service.channels.bundles(region)
        if orders:
            pipe.hset(key, courier_id, encoder.encode(orders))
        else:
            pipe.hdel(key, courier_id)
        service.publisher.add(pipe, service.channels.control, encoder.encode(BundleChanged(courier_id, orders)))
        await pipe.execute()
        await service.index(region).set_bundle(courier_id, [o.order_id for o in orders])

