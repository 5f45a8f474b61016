"""Discovery answers from memory; a store change made by another process (here: another service on
the same database, or plain SQL) shows up once the index has looked again, by version."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from catalog import CatalogService
from catalog.messages import DiscoveryQuery, HoursIn, PauseIn, Period, StoreCreate, ZonesIn
from kernel.clock import ManualClock
from kernel.http import Principal

OPERATOR = Principal("opr_test", "operator")
NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # Monday 12:00 in Berlin
SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58],
                                              [13.30, 52.58], [13.30, 52.45]]]}
HERE = DiscoveryQuery(lat=52.52, lng=13.40)


async def ids(service: CatalogService) -> list[str]:
    return [c.id for c in (await service.customer.discover(HERE, NOW)).items]


async def test_another_process_sees_pause_zone_and_new_store_after_its_poll(db) -> None:
    clock = ManualClock(NOW)
    writer = CatalogService(db, clock)
    reader = CatalogService(db, clock)  # another process: shares only the database
    reader.customer.poll_s = 5.0
    tenant = await writer.merchant.create_tenant(OPERATOR, "T")

    async def new_store(name: str) -> str:
        store = await writer.merchant.create_store(OPERATOR, tenant["id"], StoreCreate(
            name=name, lat=52.52, lng=13.40, timezone="Europe/Berlin", currency="EUR"))
        await writer.merchant.set_hours(OPERATOR, store["id"], HoursIn(periods=[Period(d, "09:00", "23:00")
                                                                                  for d in range(7)]))
        await writer.merchant.set_zones(OPERATOR, store["id"], msgspec.convert(
            {"zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": []}, ZonesIn))
        return store["id"]

    first = await new_store("First")
    assert await ids(reader) == [first] and await ids(writer) == [first]
    second = await new_store("Second")
    await writer.merchant.pause(OPERATOR, first, PauseIn())
    assert await ids(writer) == [second]  # the writing process sees its own change at once
    assert await ids(reader) == [first]  # the other one answers from memory until it looks again
    clock.advance(6)
    assert await ids(reader) == [second]
    async with db.acquire() as conn:  # a change by plain SQL counts too: it bumps the version
        await conn.execute("UPDATE catalog_stores SET status = 'online', version = version + 1, "
                           "updated_at = now() WHERE id = $1", first)
    clock.advance(6)
    assert sorted(await ids(reader)) == sorted([first, second])
