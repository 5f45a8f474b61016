"""Fixtures for the live dispatcher against real Postgres and Redis: dispatchers on a manual
clock, orders fed through the consumer's handlers, couriers written into the live index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from dispatch.events import DispatchEvents
from dispatch.service import Counters, Dispatcher, DispatcherConfig
from fooddispatch.config import Settings
from geo.h3cells import cell_of
from geo.live import CourierIndex, CourierUpdate, LiveState
from kernel.clock import ManualClock
from kernel.outbox import Event, PointData, make_event
from orders.event_types import OrderAccepted

REGION = "test-region"
STORE = (52.5200, 13.4050)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def make_dispatcher(db: asyncpg.Pool, redis: aioredis.Redis, settings: Settings,
                    clock: ManualClock) -> Callable[..., Dispatcher]:
    def make(owner: str, **changes: Any) -> Dispatcher:
        values: dict[str, Any] = {"region": REGION, "interval_s": 0.2, "offer_ttl_s": 30.0, "lease_ttl_ms": 2000}
        values.update(changes)
        return Dispatcher(db, redis, settings.redis_prefix, clock, DispatcherConfig(**values), owner)

    return make


@pytest.fixture
def events(redis: aioredis.Redis, settings: Settings) -> DispatchEvents:
    return DispatchEvents(redis, settings.redis_prefix, REGION, Counters())


@pytest.fixture
def deliver(db: asyncpg.Pool, events: DispatchEvents) -> Callable[..., Any]:
    """Hand one event to the dispatch consumer's handler, in a transaction like the consumer."""
    handlers = events.handlers()

    async def run(type_: str, data: dict[str, Any], occurred_at: datetime | None = None) -> Event:
        event = make_event(type_, data)
        if occurred_at is not None:
            event = Event(id=event.id, type=event.type, occurred_at=occurred_at, data=event.data)
        async with db.acquire() as conn, conn.transaction():
            await handlers[type_](conn, event)
        return event

    return run


@pytest.fixture
def add_order(deliver: Callable[..., Any], clock: ManualClock) -> Callable[..., Any]:
    async def add(order_id: str, *, store_id: str = "sto_1", pickup: tuple[float, float] = STORE,
                  ready_in: float = 0.0, promise_in: float = 1800.0) -> None:
        now = clock.now()
        accepted = OrderAccepted(
            order_id=order_id, store_id=store_id, tenant_id="ten_1", customer_id="cus_1", status="accepted",
            region=REGION, pickup=PointData(*pickup), dropoff=PointData(pickup[0] + 0.01, pickup[1] + 0.01),
            placed_at=now, ready_at=now + timedelta(seconds=ready_in), promised_at=now + timedelta(seconds=promise_in),
            courier_id=None,
        )
        await deliver(accepted.event_type, accepted.to_data(), occurred_at=now)

    return add


@pytest.fixture
def put_couriers(redis: aioredis.Redis, settings: Settings, clock: ManualClock) -> Callable[..., Any]:
    async def put(couriers: dict[str, tuple[float, float]], status: str = "online") -> None:
        index = CourierIndex(redis, settings.redis_prefix, REGION)
        seen = clock.now().timestamp()
        await index.flush([
            CourierUpdate(cid, status == "online",
                          LiveState(status=status, seen=seen, lat=lat, lng=lng, cell=cell_of(lat, lng), vehicle="car"),
                          lat, lng, cell_of(lat, lng))
            for cid, (lat, lng) in couriers.items()
        ])

    return put
