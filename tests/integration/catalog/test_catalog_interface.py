"""The interface orders/ uses, against real Postgres: quote context, cart resolution, stock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from catalog import CartLineInput, CatalogService, OutOfStock, SelectedOption
from catalog.messages import HoursIn, MenuIn, Period, StoreCreate, ZonesIn
from kernel.clock import ManualClock
from kernel.errors import NotFound, ValidationFailed
from kernel.http import Principal
from kernel.money import Money

OPERATOR = Principal("opr_test", "operator")
SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58],
                                              [13.30, 52.58], [13.30, 52.45]]]}
MENU = {"categories": [{"name": "Burgers", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 900, "modifier_groups": [
        {"id": "grp_size", "name": "Size", "min": 1, "max": 1, "options": [
            {"id": "opt_regular", "name": "Regular"},
            {"id": "opt_large", "name": "Large", "price": 200, "modifier_groups": [
                {"name": "Side", "min": 1, "max": 1, "options": [
                    {"id": "opt_fries", "name": "Fries", "price": 100, "modifier_groups": [
                        {"name": "Dip", "min": 0, "max": 2, "options": [
                            {"id": "opt_mayo", "name": "Mayo", "price": 50, "max_quantity": 2}]}]},
                    {"id": "opt_salad", "name": "Salad"}]}]}]},
        {"id": "grp_sauce", "name": "Sauces", "min": 0, "max": 2, "options": [
            {"id": "opt_ketchup", "name": "Ketchup", "price": 30, "max_quantity": 2},
            {"id": "opt_bbq", "name": "BBQ", "price": 40}]}]},
    {"id": "itm_special", "name": "Daily special", "price": 1200},
    {"id": "itm_hidden", "name": "Secret", "price": 100, "availability": "hidden"},
]}]}


@pytest.fixture
async def setup(db):
    import msgspec

    service = CatalogService(db, ManualClock(datetime(2024, 6, 3, 10, 0, tzinfo=UTC)), default_region="berlin")
    tenant = await service.merchant.create_tenant(OPERATOR, "Burger Group")
    store = await service.merchant.create_store(OPERATOR, tenant["id"], StoreCreate(
        name="Burger Mitte", lat=52.52, lng=13.40, timezone="Europe/Berlin", currency="EUR", tax_rate_bps=700))
    await service.merchant.set_hours(OPERATOR, store["id"], HoursIn(
        periods=[Period(d, "11:00", "23:00") for d in range(7)]))
    await service.merchant.set_zones(OPERATOR, store["id"], msgspec.convert(
        {"zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 2000, "fee": 199},
                                                                 {"up_to_m": 8000, "fee": 399}]}, ZonesIn))
    await service.merchant.publish_menu(OPERATOR, store["id"], msgspec.convert(MENU, MenuIn))
    await service.merchant.set_stock(OPERATOR, store["id"], "itm_special", 50)
    return service, store


async def test_quote_context_reports_open_deliverable_and_fee_band(setup, db) -> None:
    service, store = setup
    at = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Berlin (CEST)
    async with db.acquire() as conn:
        near = await service.quote_context(conn, store["id"], 52.525, 13.405, at)
        far = await service.quote_context(conn, store["id"], 52.57, 13.45, at)
        outside = await service.quote_context(conn, store["id"], 52.60, 13.40, at)
        night = await service.quote_context(conn, store["id"], 52.525, 13.405, datetime(2024, 6, 3, 22, 0, tzinfo=UTC))
    assert near.open_at_time and near.deliverable and near.status == "online"
    assert near.delivery_fee == Money(199, "EUR") and near.region == "berlin" and near.tax_rate_bps == 700
    assert far.deliverable and far.delivery_fee == Money(399, "EUR")
    assert not outside.deliverable
    assert not night.open_at_time


async def test_quote_context_for_unknown_store_is_not_found(setup, db) -> None:
    service, _ = setup
    async with db.acquire() as conn:
        with pytest.raises(NotFound):
            await service.quote_context(conn, "sto_nope", 52.5, 13.4, datetime.now(UTC))


async def test_resolve_cart_prices_nested_options(setup, db) -> None:
    service, store = setup
    lines = [CartLineInput("itm_burger", 2, [
        SelectedOption("opt_large", 1, [SelectedOption("opt_fries", 1, [SelectedOption("opt_mayo", 2)])]),
        SelectedOption("opt_ketchup", 2),
    ])]
    async with db.acquire() as conn:
        [line] = await service.resolve_cart(conn, store["id"], lines)
    # 900 + large (200 + fries (100 + 2 x mayo 50)) + 2 x ketchup 30 = 1360
    assert line.unit_price == Money(1360, "EUR")
    assert line.line_total == Money(2720, "EUR")
    assert [o.option_id for o in line.options] == ["opt_large", "opt_ketchup"]
    assert line.options[0].unit_price == Money(400, "EUR")


@pytest.mark.parametrize(("lines", "param"), [
    ([CartLineInput("itm_burger", 1, [])], "lines[0].options"),  # size is required
    ([CartLineInput("itm_burger", 1, [SelectedOption("opt_regular"), SelectedOption("opt_nope")])],
     "lines[0].options[1].option_id"),
    ([CartLineInput("itm_burger", 1, [SelectedOption("opt_regular"), SelectedOption("opt_ketchup", 3)])],
     "lines[0].options[1].quantity"),
    ([CartLineInput("itm_burger", 1, [SelectedOption("opt_large", 1, [])])], "lines[0].options[0].options"),
    ([CartLineInput("itm_special", 1), CartLineInput("itm_hidden", 1)], "lines[1].item_id"),
    ([CartLineInput("itm_unknown", 1)], "lines[0].item_id"),
])
async def test_resolve_cart_rejects_rule_breaks_with_the_path(setup, db, lines, param) -> None:
    service, store = setup
    async with db.acquire() as conn:
        with pytest.raises(ValidationFailed) as err:
            await service.resolve_cart(conn, store["id"], lines)
    assert err.value.param == param


async def test_reserve_and_release_give_stock_back_exactly_once(setup, db) -> None:
    service, _ = setup
    async with db.acquire() as conn, conn.transaction():
        await service.reserve(conn, "ord_1", [("itm_special", 3), ("itm_burger", 1)])
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_special'") == 47
        assert await service.release(conn, "ord_1") is True
        assert await service.release(conn, "ord_1") is False
        assert await service.release(conn, "ord_never") is False
        assert await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_special'") == 50


async def test_out_of_stock_leaves_nothing_taken(setup, db) -> None:
    service, _ = setup
    async with db.acquire() as conn, conn.transaction():
        with pytest.raises(OutOfStock) as err:
            await service.reserve(conn, "ord_2", [("itm_special", 51)])
        assert err.value.param == "itm_special" and err.value.code == "out_of_stock"
        assert await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_special'") == 50


async def test_200_concurrent_reservations_for_50_units_exactly_50_succeed(setup, database_url) -> None:
    import asyncpg

    service, _ = setup
    pool = await asyncpg.create_pool(database_url, min_size=20, max_size=20)
    try:
        async def one(i: int) -> bool:
            async with pool.acquire() as conn, conn.transaction():
                try:
                    await service.reserve(conn, f"ord_c{i}", [("itm_special", 1)])
                    return True
                except OutOfStock:
                    return False

        results = await asyncio.gather(*(one(i) for i in range(200)))
        async with pool.acquire() as conn:
            left = await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_special'")
            sold_out = await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'item.sold_out'")
    finally:
        await pool.close()
    assert sum(results) == 50
    assert left == 0
    assert sold_out == 1
