"""A payload that does not fit its event type is a decode error in the real dispatch consumer: retried,
parked as a dead letter naming the field, while the well-formed events around it flow."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis

from dispatch.events import DispatchEvents
from kernel import eventstore
from kernel.eventbus import OutboxRelay, StreamConsumer
from kernel.outbox import MoneyData, PointData, make_event, write_events
from orders.event_types import OrderPlaced

STREAM = "fdtest:typed-events"


def placed(order_id: str) -> OrderPlaced:
    now = datetime.now(UTC)
    return OrderPlaced(
        order_id=order_id, customer_id="cus_1", store_id="sto_1", tenant_id="ten_1", region="test-region",
        status="placed", pickup=PointData(52.52, 13.405), dropoff=PointData(52.53, 13.41),
        total=MoneyData(2350, "EUR"), placed_at=now, accept_by=now + timedelta(minutes=5),
        promised_at=now + timedelta(minutes=40), scheduled_for=None, lines=[],
    )


async def test_a_misfit_payload_is_parked_by_the_dispatch_consumer_and_the_next_events_flow(
        db: asyncpg.Pool, redis: aioredis.Redis, events: DispatchEvents) -> None:
    consumer = StreamConsumer(db, redis, STREAM, "dispatch", "c1", events.handlers(), block_ms=10,
                              max_attempts=2, retry_backoff=0.01)
    await consumer.register()
    await consumer.ensure_group()
    before, after = placed("ord_before").event("ord_before"), placed("ord_after").event("ord_after")
    # A producer bug: the pickup's latitude written as text (dispatch used to fail on it with a ValueError).
    misfit = make_event("order.placed", {**placed("ord_misfit").to_data(), "pickup": {"lat": "north", "lng": 13.4}},
                        "ord_misfit")
    async with db.acquire() as conn, conn.transaction():
        await write_events(conn, [before, misfit, after])
    await OutboxRelay(db, redis, STREAM).step()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while consumer.parked < 1:
        assert loop.time() < deadline, "the misfit event was never parked"
        await consumer.poll_once()
        await asyncio.sleep(0.02)

    [letter] = await eventstore.dead_letters(db, group="dispatch")
    assert (letter.event_id, letter.event_type, letter.attempts) == (misfit.id, "order.placed", 2)
    assert letter.error.startswith("ValidationError") and "$.pickup.lat" in letter.error
    pool = await db.fetch("SELECT order_id, store_id, status FROM dispatch_orders ORDER BY order_id")
    assert [tuple(r) for r in pool] == [("ord_after", "sto_1", "placed"), ("ord_before", "sto_1", "placed")]
    assert (await redis.xpending(STREAM, "dispatch"))["pending"] == 0  # acknowledged: the group goes on
