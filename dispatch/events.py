"""The "dispatch" consumer: keeps the pool from order.* events and acts on couriers' answers.

Each handler runs in the consumer's transaction (deduplicated by event id), so a state change and
the event it writes commit together. Redis work (clearing an offer's live keys, frames to the
courier) happens inside it, before the commit: it is idempotent, and a failed commit brings the
event back to do it again.

- `courier.offer_response`: judged by `dispatch.offers.judge_response`. Accept -> the offer's
  orders are assigned and `dispatch.assigned` is written. Decline -> the orders go back to the
  pool with that courier excluded. An answer for an unknown or lapsed offer, or from another
  courier, gets an `error` frame on the sender's channel and changes nothing.
- `courier.status_changed` to offline/stale: a pending offer is withdrawn; orders of an accepted
  bundle, or given to the courier by hand, not picked up yet go back to the pool with `dispatch.unassigned`.
- `order.cancelled` / `rejected` / `expired` withdraw a pending offer holding the order.
- `order.courier_assigned` (an operator's assignment by hand): the order leaves the pool for good; a
  pending offer holding it is withdrawn, an accepted one of another courier lets go of it.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from dispatch import store
from dispatch.event_types import DispatchAssigned, DispatchUnassigned
from dispatch.live import DispatchKeys, LiveOffers, OfferKeys, courier_channel
from dispatch.messages import ErrorFrame, OfferCancelled, encoder
from dispatch.offers import ERROR_MESSAGES, OfferStatus, OfferView, Verdict, judge_response
from dispatch.service import Counters
from kernel.eventbus import EventHandler
from kernel.fanout import Publisher
from kernel.outbox import Event, announce, on
from orders.event_types import (
    OrderAccepted,
    OrderCancelled,
    OrderCourierAssigned,
    OrderDelivered,
    OrderEnded,
    OrderExpired,
    OrderPickedUp,
    OrderPlaced,
    OrderPrepTimeChanged,
    OrderReady,
    OrderRejected,
)
from tracking.event_types import CourierOfferResponse, CourierStatusChanged

GONE = {"offline", "stale"}


class DispatchEvents:
    def __init__(self, redis: aioredis.Redis, prefix: str, default_region: str, counters: Counters,
                 prep_alpha: float = 0.2) -> None:
        self.redis = redis
        self.prefix = prefix
        self.region = default_region
        self.counters = counters
        self.prep_alpha = prep_alpha

    def handlers(self) -> dict[str, EventHandler]:
        return dict([
            on(OrderPlaced, self.placed),
            on(OrderAccepted, self.accepted),
            on(OrderPrepTimeChanged, self.prep_time_changed),
            on(OrderReady, self.ready),
            on(OrderPickedUp, self.picked_up),
            on(OrderDelivered, self.delivered),
            on(OrderCancelled, self.ended),
            on(OrderRejected, self.ended),
            on(OrderExpired, self.ended),
            on(CourierOfferResponse, self.offer_response),
            on(CourierStatusChanged, self.status_changed),
            on(OrderCourierAssigned, self.courier_assigned),
        ])

    def _live(self, region: str) -> LiveOffers:
        return LiveOffers(self.redis, DispatchKeys(self.prefix, region))

    async def _send(self, courier_id: str, frame: ErrorFrame | OfferCancelled) -> None:
        await Publisher(self.redis).publish(courier_channel(self.prefix, courier_id), encoder.encode(frame))

    # -- orders ------------------------------------------------------------------------------

    async def placed(self, conn: asyncpg.Connection, event: Event, placed: OrderPlaced) -> None:
        await store.record_placed(conn, placed, self.region)

    async def accepted(self, conn: asyncpg.Connection, event: Event, accepted: OrderAccepted) -> None:
        await store.record_accepted(conn, accepted, self.region, event.occurred_at)

    async def prep_time_changed(self, conn: asyncpg.Connection, event: Event, changed: OrderPrepTimeChanged) -> None:
        await store.restate_ready(conn, changed.order_id, changed.ready_at)

    async def ready(self, conn: asyncpg.Connection, event: Event, ready: OrderReady) -> None:
        await store.mark_ready(conn, ready.order_id, ready.ready_at, self.prep_alpha)

    async def picked_up(self, conn: asyncpg.Connection, event: Event, picked_up: OrderPickedUp) -> None:
        await store.set_order_status(conn, picked_up.order_id, "picked_up")

    async def delivered(self, conn: asyncpg.Connection, event: Event, delivered: OrderDelivered) -> None:
        before = await store.set_order_status(conn, delivered.order_id, "delivered")
        if before is not None and before["offer_id"]:
            await self._complete_if_done(conn, before["offer_id"], event.occurred_at)

    async def ended(self, conn: asyncpg.Connection, event: Event, ended: OrderEnded) -> None:
        before = await store.set_order_status(conn, ended.order_id, "ended")
        if before is None or not before["offer_id"]:
            return
        offer = await store.offer_for_update(conn, before["offer_id"])
        if offer is None:
            return
        if before["status"] == "offered" and await store.set_offer_status(
                conn, offer.offer_id, OfferStatus.CANCELLED, event.occurred_at, only_from="pending"):
            await store.reopen(conn, offer.order_ids, exclude=None)  # the others wait for the next round
            await self._live(offer.region).clear([OfferKeys(offer.offer_id, offer.courier_id, offer.order_ids)])
            await self._send(offer.courier_id, OfferCancelled(offer.offer_id, "order_cancelled"))
        else:
            await self._complete_if_done(conn, offer.offer_id, event.occurred_at)

    async def courier_assigned(self, conn: asyncpg.Connection, event: Event, assigned: OrderCourierAssigned) -> None:
        """An operator gave the order to a courier by hand: it leaves the pool and is never offered again. A
        pending offer holding it is withdrawn (its courier is told; the offer's other orders go back to the
        pool); an accepted offer of another courier no longer holds it (empty, it frees that courier). The
        apps hear of the assignment itself from tracking."""
        order_id = assigned.order_id
        before = await store.hand_over(conn, assigned, self.region)
        if before is None or not before["offer_id"]:
            return
        offer = await store.offer_for_update(conn, before["offer_id"])
        if offer is None:
            return
        if before["status"] == "offered" and await store.set_offer_status(
                conn, offer.offer_id, OfferStatus.CANCELLED, event.occurred_at, only_from="pending"):
            await store.reopen(conn, [o for o in offer.order_ids if o != order_id], exclude=None)
            await self._live(offer.region).clear([OfferKeys(offer.offer_id, offer.courier_id, offer.order_ids)])
            await self._send(offer.courier_id, OfferCancelled(offer.offer_id, "order_reassigned"))
        elif before["status"] == "assigned" and offer.courier_id != assigned.courier_id and \
                not await store.offer_orders(conn, offer.offer_id):
            await store.set_offer_status(conn, offer.offer_id, OfferStatus.UNASSIGNED, event.occurred_at,
                                         only_from="accepted")

    async def _complete_if_done(self, conn: asyncpg.Connection, offer_id: str, at: datetime) -> None:
        rows = await store.offer_orders(conn, offer_id)
        if all(r["status"] in ("delivered", "ended") for r in rows):
            await store.set_offer_status(conn, offer_id, OfferStatus.COMPLETED, at, only_from="accepted")

    # -- couriers ----------------------------------------------------------------------------

    async def offer_response(self, conn: asyncpg.Connection, event: Event, response: CourierOfferResponse) -> None:
        courier_id, offer_id, at = response.courier_id, response.offer_id, response.at
        offer = await store.offer_for_update(conn, offer_id)
        view = None if offer is None else OfferView(offer.offer_id, offer.courier_id, OfferStatus(offer.status),
                                                     offer.expires_at.timestamp())
        verdict = judge_response(view, courier_id, response.accepted, at.timestamp())
        if verdict in ERROR_MESSAGES:
            await self._send(courier_id, ErrorFrame(verdict.value, ERROR_MESSAGES[verdict], offer_id))
            return
        assert offer is not None
        keys = [OfferKeys(offer.offer_id, offer.courier_id, offer.order_ids)]
        if verdict is Verdict.ACCEPT:
            await store.set_offer_status(conn, offer_id, OfferStatus.ACCEPTED, at, only_from="pending")
            await store.assign_orders(conn, offer)
            await announce(conn, DispatchAssigned(offer_id=offer_id, courier_id=courier_id,
                                                  order_ids=tuple(offer.order_ids), at=at), offer_id)
            self.counters.offers_accepted += 1
        else:
            await store.set_offer_status(conn, offer_id, OfferStatus.DECLINED, at, only_from="pending")
            await store.reopen(conn, offer.order_ids, exclude=courier_id)
            self.counters.offers_declined += 1
        await self._live(offer.region).clear(keys)

    async def status_changed(self, conn: asyncpg.Connection, event: Event, changed: CourierStatusChanged) -> None:
        courier_id, status = changed.courier_id, changed.status
        if status not in GONE:
            return
        for offer in await store.courier_offers(conn, courier_id):
            keys = [OfferKeys(offer.offer_id, offer.courier_id, offer.order_ids)]
            if offer.status == OfferStatus.PENDING:
                await store.set_offer_status(conn, offer.offer_id, OfferStatus.CANCELLED, event.occurred_at,
                                             only_from="pending")
                await store.reopen(conn, offer.order_ids, exclude=courier_id)
                await self._live(offer.region).clear(keys)
                await self._send(courier_id, OfferCancelled(offer.offer_id, f"courier_{status}"))
                continue
            rows = await store.offer_orders(conn, offer.offer_id)
            waiting = [r["order_id"] for r in rows if r["status"] == "assigned"]
            if not waiting:
                continue  # everything is in the courier's bag: only the courier can finish it
            back = await store.reopen(conn, waiting, exclude=courier_id)
            if len(back) == len(rows):
                await store.set_offer_status(conn, offer.offer_id, OfferStatus.UNASSIGNED, event.occurred_at,
                                             only_from="accepted")
            await announce(conn, DispatchUnassigned(courier_id=courier_id, order_ids=tuple(back),
                                                    reason=f"courier_{status}"), offer.offer_id)
        # Orders an operator gave the courier by hand go back to the pool the same way.
        back = await store.reopen(conn, await store.held_by_hand(conn, courier_id), exclude=courier_id)
        if back:
            await announce(conn, DispatchUnassigned(courier_id=courier_id, order_ids=tuple(back),
                                                    reason=f"courier_{status}"), courier_id)
