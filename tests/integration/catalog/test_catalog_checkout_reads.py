"""Catalog's checkout path in one statement each (`cart_quote`, `reserve`, `release`), against real Postgres:
round trips counted with asyncpg's query logger, and the guarantees the one-statement forms must keep
(all or nothing, exactly once, no oversell under concurrent multi-item orders, no stale store state)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from catalog import CartLineInput, CatalogService, OutOfStock, SelectedOption
from catalog.messages import HoursIn, MenuIn, PauseIn, Period, StoreCreate, ZonesIn
from kernel.clock import ManualClock
from kernel.errors import NotFound
from kernel.http import Principal
from kernel.outbox import decode_event
from tests.statement_counter import Statements

OPERATOR = Principal("opr_test", "operator")
NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # a Monday, 12:00 in Berlin
SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58],
                                              [13.30, 52.58], [13.30, 52.45]]]}
MENU = {"categories": [{"name": "Mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 900, "modifier_groups": [
        {"id": "grp_sauce", "name": "Sauces", "min": 0, "max": 1, "options": [
            {"id": "opt_bbq", "name": "BBQ", "price": 40}]}]},
    {"id": "itm_a", "name": "A", "price": 100},
    {"id": "itm_b", "name": "B", "price": 200},
]}]}


def new_service(db: asyncpg.Pool) -> CatalogService:
    return CatalogService(db, ManualClock(NOW), default_region="berlin")


@pytest.fixture
async def shop(db):
    service = new_service(db)
    tenant = await service.merchant.create_tenant(OPERATOR, "Group")
    store = await service.merchant.create_store(OPERATOR, tenant["id"], StoreCreate(
        name="Mitte", lat=52.52, lng=13.40, timezone="Europe/Berlin", currency="EUR", tax_rate_bps=700))
    await service.merchant.set_hours(OPERATOR, store["id"], HoursIn(
        periods=[Period(d, "11:00", "23:00") for d in range(7)]))
    await service.merchant.set_zones(OPERATOR, store["id"], msgspec.convert(
        {"zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}, ZonesIn))
    await service.merchant.publish_menu(OPERATOR, store["id"], msgspec.convert(MENU, MenuIn))
    await service.merchant.set_stock(OPERATOR, store["id"], "itm_a", 30)
    await service.merchant.set_stock(OPERATOR, store["id"], "itm_b", 50)
    return service, store, tenant


async def stock(conn: asyncpg.Connection, item_id: str) -> int | None:
    return await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = $1", item_id)


async def test_cart_quote_reads_store_specials_menu_and_stock_in_one_statement(shop, db) -> None:
    service, store, tenant = shop
    cart = [CartLineInput("itm_burger", 2, [SelectedOption("opt_bbq")]), CartLineInput("itm_a", 3)]
    async with db.acquire() as conn:
        await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, cart)  # caches the rules and the menu
        seen = Statements(conn)
        quoted = await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, cart)
        assert await seen.count() == 1
    ctx = quoted.context
    assert ctx.open_at_time and ctx.deliverable and ctx.status == "online" and ctx.tenant_id == tenant["id"]
    assert ctx.delivery_fee.amount == 299 and ctx.region == "berlin"
    assert dict(quoted.stock) == {"itm_a": 30}
    lines = quoted.lines()
    assert [(line.item_id, line.line_total.amount) for line in lines] == [("itm_burger", 1880), ("itm_a", 300)]


async def test_cart_quote_sees_another_process_change_at_once(shop, db) -> None:
    service, store, _ = shop
    other = new_service(db)  # another app process: this service's caches know nothing of its writes
    async with db.acquire() as conn:
        assert (await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [])).context.open_at_time
        await other.merchant.set_hours(OPERATOR, store["id"], HoursIn(
            periods=[Period(d, "13:00", "23:00") for d in range(7)]))
        assert not (await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [])).context.open_at_time
        await other.merchant.set_hours(OPERATOR, store["id"], HoursIn(
            periods=[Period(d, "11:00", "23:00") for d in range(7)]))
        await other.merchant.pause(OPERATOR, store["id"], PauseIn(reason="busy"))
        paused = (await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [])).context
        assert paused.status == "paused" and not paused.open_at_time
        await other.merchant.set_stock(OPERATOR, store["id"], "itm_a", 1)
        quoted = await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [CartLineInput("itm_a", 2)])
        assert dict(quoted.stock) == {"itm_a": 1}


async def test_cart_quote_rereads_rules_when_the_cache_moved_on_during_the_read(shop, db) -> None:
    service, store, _ = shop
    async with db.acquire() as conn:
        await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [])
        version = service.rules.version_of(store["id"])
        row = await conn.fetchrow("SELECT id, version FROM catalog_stores WHERE id = $1", store["id"])
        assert version == row["version"]
        service.rules._entries.clear()  # as a full cache does between sending the read and its answer
        real = service.rules.version_of
        service.rules.version_of = lambda _store_id: version  # type: ignore[method-assign]
        try:
            ctx = (await service.cart_quote(conn, store["id"], 52.525, 13.405, NOW, [])).context
        finally:
            service.rules.version_of = real  # type: ignore[method-assign]
    assert ctx.open_at_time and ctx.deliverable and ctx.delivery_fee.amount == 299


async def test_cart_quote_of_unknown_store_is_not_found(shop, db) -> None:
    service, _, _ = shop
    async with db.acquire() as conn:
        with pytest.raises(NotFound):
            await service.cart_quote(conn, "sto_nope", 52.5, 13.4, NOW, [CartLineInput("itm_a", 1)])


async def test_reserve_is_one_statement_and_release_gives_back_once(shop, db) -> None:
    service, _, _ = shop
    async with db.acquire() as conn:
        async with conn.transaction():  # the first use on a connection also asks for type information
            await service.reserve(conn, "ord_warm", [("itm_burger", 1)])
        seen = Statements(conn)
        async with conn.transaction():
            await service.reserve(conn, "ord_1", [("itm_b", 2), ("itm_a", 3), ("itm_burger", 1), ("itm_a", 1)])
        assert await seen.count() == 3  # BEGIN, the reservation, COMMIT
        assert (await stock(conn, "itm_a"), await stock(conn, "itm_b")) == (26, 48)
        rows = await conn.fetch("SELECT item_id, quantity FROM catalog_reservations WHERE order_id = 'ord_1' "
                                "ORDER BY item_id")
        assert [tuple(r) for r in rows] == [("itm_a", 4), ("itm_b", 2)]  # untracked items are not recorded
        async with conn.transaction():
            await service.reserve(conn, "ord_1", [("itm_a", 5)])  # again for the same order: nothing happens
        assert await stock(conn, "itm_a") == 26
        await seen.reset()
        assert await service.release(conn, "ord_warm") is False  # nothing counted: nothing reserved
        await seen.reset()
        assert await service.release(conn, "ord_1") is True
        assert await seen.count() == 1
        assert await service.release(conn, "ord_1") is False
        assert (await stock(conn, "itm_a"), await stock(conn, "itm_b")) == (30, 50)


async def test_one_short_line_takes_nothing_and_names_the_item(shop, db) -> None:
    service, _, _ = shop
    async with db.acquire() as conn, conn.transaction():
        with pytest.raises(OutOfStock) as err:
            await service.reserve(conn, "ord_2", [("itm_a", 3), ("itm_b", 51)])
        assert err.value.param == "itm_b"
        # The caller's transaction is still usable and nothing was taken or recorded.
        assert (await stock(conn, "itm_a"), await stock(conn, "itm_b")) == (30, 50)
        assert await conn.fetchval("SELECT count(*) FROM catalog_reservations") == 0
        await service.reserve(conn, "ord_2", [("itm_a", 3)])
        assert await stock(conn, "itm_a") == 27


async def test_taking_the_last_unit_writes_one_sold_out_event_in_the_same_statement(shop, db) -> None:
    service, store, tenant = shop
    async with db.acquire() as conn:
        async with conn.transaction():
            await service.reserve(conn, "ord_3", [("itm_a", 30), ("itm_b", 1)])
        [raw] = await conn.fetch("SELECT event_id, type, aggregate_id, payload::text AS payload FROM outbox "
                                 "WHERE type = 'item.sold_out'")
        event = decode_event(raw["payload"])
        assert event.id == raw["event_id"] and event.type == "item.sold_out" and event.aggregate_id == store["id"]
        assert event.data == {"store_id": store["id"], "tenant_id": tenant["id"], "item_id": "itm_a",
                              "reason": "stock", "sold_out_until": None}
        tx = conn.transaction()  # rolled back: the event goes with the reservation
        await tx.start()
        await service.reserve(conn, "ord_4", [("itm_b", 49)])
        await tx.rollback()
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'item.sold_out'") == 1
        assert await stock(conn, "itm_b") == 49


async def test_concurrent_multi_item_orders_in_both_orders_never_oversell_or_deadlock(shop, database_url) -> None:
    service, _, _ = shop
    pool = await asyncpg.create_pool(database_url, min_size=20, max_size=20)
    try:
        async def one(i: int) -> bool:
            items = [("itm_a", 1), ("itm_b", 2)] if i % 2 else [("itm_b", 2), ("itm_a", 1)]
            async with pool.acquire() as conn, conn.transaction():
                try:
                    await service.reserve(conn, f"ord_c{i}", items)
                    return True
                except OutOfStock:
                    return False

        results = await asyncio.gather(*(one(i) for i in range(120)))
        async with pool.acquire() as conn:
            a, b = await stock(conn, "itm_a"), await stock(conn, "itm_b")
            held = await conn.fetchval("SELECT count(DISTINCT order_id) FROM catalog_reservations")
            events = await conn.fetch("SELECT payload->'data'->>'item_id' AS item FROM outbox "
                                      "WHERE type = 'item.sold_out'")
    finally:
        await pool.close()
    # b (50 units, 2 per order) runs out after 25 orders, before a (30 units).
    assert sum(results) == 25 == held
    assert (a, b) == (5, 0)
    assert [e["item"] for e in events] == ["itm_b"]


async def test_concurrent_releases_give_back_exactly_once(shop, database_url) -> None:
    service, _, _ = shop
    pool = await asyncpg.create_pool(database_url, min_size=10, max_size=10)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await service.reserve(conn, "ord_r", [("itm_a", 10), ("itm_b", 10)])

        async def one() -> bool:
            async with pool.acquire() as conn, conn.transaction():
                return await service.release(conn, "ord_r")

        results = await asyncio.gather(*(one() for _ in range(10)))
        async with pool.acquire() as conn:
            a, b = await stock(conn, "itm_a"), await stock(conn, "itm_b")
    finally:
        await pool.close()
    assert sum(results) == 1
    assert (a, b) == (30, 50)
