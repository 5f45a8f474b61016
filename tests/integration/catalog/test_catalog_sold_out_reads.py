""""Sold out today" against real Postgres: the merchant's commands give a sold-out item its end, and
every read (checkout's cached quote path, `resolve_cart`, the menus) decides with its own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest

from catalog import CartLineInput, CatalogService, ItemUnavailable
from catalog.messages import HoursIn, ItemPatch, MenuIn, Period, StoreCreate, ZonesIn
from kernel.clock import ManualClock
from kernel.errors import ValidationFailed
from kernel.http import Principal
from tests.statement_counter import Statements

OPERATOR = Principal("opr_test", "operator")
SOLD_AT = datetime(2026, 10, 25, 21, 0, tzinfo=UTC)  # 22:00 in Berlin on a 25-hour day
DAY_ENDS = datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # 00:00 CET on the 26th
SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58],
                                              [13.30, 52.58], [13.30, 52.45]]]}
MENU = {"categories": [{"name": "Mains", "items": [
    {"id": "itm_soup", "name": "Soup of the day", "price": 650},
    {"id": "itm_bread", "name": "Bread", "price": 200},
]}]}
CART = [CartLineInput("itm_soup", 1)]


def advance_to(clock: ManualClock, at: datetime) -> None:
    clock.advance((at - clock.now()).total_seconds())


@pytest.fixture
async def shop(db: asyncpg.Pool):
    clock = ManualClock(SOLD_AT)
    service = CatalogService(db, clock, default_region="berlin")
    tenant = await service.merchant.create_tenant(OPERATOR, "Group")
    store = await service.merchant.create_store(OPERATOR, tenant["id"], StoreCreate(
        name="Kiez", lat=52.52, lng=13.40, timezone="Europe/Berlin", currency="EUR"))
    await service.merchant.set_hours(OPERATOR, store["id"], HoursIn(
        periods=[Period(d, "00:00", "24:00") for d in range(7)]))
    await service.merchant.set_zones(OPERATOR, store["id"], msgspec.convert(
        {"zones": [SQUARE], "max_delivery_m": 8000}, ZonesIn))
    await service.merchant.publish_menu(OPERATOR, store["id"], msgspec.convert(MENU, MenuIn))
    return service, clock, store["id"]


async def test_checkout_quote_rejects_until_local_midnight_then_accepts_from_the_cached_menu(shop, db) -> None:
    service, _, store_id = shop
    async with db.acquire() as conn:
        assert (await service.cart_quote(conn, store_id, 52.52, 13.40, SOLD_AT, CART)).lines()
        _, item = await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(availability="sold_out"))
        assert item.sold_out_until == DAY_ENDS
        for at in (SOLD_AT, DAY_ENDS - timedelta(minutes=1), DAY_ENDS - timedelta(microseconds=1)):
            quoted = await service.cart_quote(conn, store_id, 52.52, 13.40, at, CART)
            with pytest.raises(ItemUnavailable, match="sold out") as err:
                quoted.lines()
            assert err.value.param == "lines[0].item_id"
        seen = Statements(conn)
        quoted = await service.cart_quote(conn, store_id, 52.52, 13.40, DAY_ENDS, CART)
        assert await seen.count() == 1  # the menu came from the cache, read while the item was sold out
        [line] = quoted.lines()
        assert (line.item_id, line.line_total.amount) == ("itm_soup", 650)


async def test_resolve_cart_decides_at_the_service_clock(shop, db) -> None:
    service, clock, store_id = shop
    await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(availability="sold_out"))
    async with db.acquire() as conn:
        advance_to(clock, DAY_ENDS - timedelta(seconds=1))
        with pytest.raises(ItemUnavailable):
            await service.resolve_cart(conn, store_id, CART)
        advance_to(clock, DAY_ENDS)
        assert [line.item_id for line in await service.resolve_cart(conn, store_id, CART)] == ["itm_soup"]
        with pytest.raises(ItemUnavailable):  # an explicit instant still wins
            await service.resolve_cart(conn, store_id, CART, at=SOLD_AT)


async def test_menus_flip_at_midnight_for_customers_and_merchants(shop) -> None:
    service, clock, store_id = shop
    await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(availability="sold_out"))

    async def customer_flag() -> bool:
        menu = await service.customer.menu(store_id)
        return next(i.sold_out for c in menu.categories for i in c.items if i.id == "itm_soup")

    async def merchant_view() -> tuple[str, datetime | None]:
        _, menu, _ = await service.merchant.current_menu(OPERATOR, store_id)
        item = next(i for c in menu.categories for i in c.items if i.id == "itm_soup")
        return item.availability, item.sold_out_until

    advance_to(clock, DAY_ENDS - timedelta(minutes=1))
    assert await customer_flag() is True
    assert await merchant_view() == ("sold_out", DAY_ENDS)
    advance_to(clock, DAY_ENDS)
    assert await customer_flag() is False
    assert await merchant_view() == ("in_stock", None)


async def test_the_end_is_stored_with_the_item_and_sent_with_the_event(shop, db) -> None:
    service, _, store_id = shop
    await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(availability="sold_out"))
    async with db.acquire() as conn:
        stored = await conn.fetch("SELECT id, availability, sold_out_until FROM catalog_items ORDER BY id")
        events = [msgspec.json.decode(p[0])["data"] for p in await conn.fetch(
            "SELECT payload::text FROM outbox WHERE type = 'item.sold_out' ORDER BY seq")]
    assert [tuple(r) for r in stored] == [("itm_bread", "in_stock", None), ("itm_soup", "sold_out", DAY_ENDS)]
    assert [(e["item_id"], e["reason"], e["sold_out_until"]) for e in events] \
        == [("itm_soup", "merchant", "2026-10-25T23:00:00+00:00")]


async def test_selling_out_again_keeps_the_end_and_in_stock_drops_it(shop, db) -> None:
    service, clock, store_id = shop
    friday = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)
    _, item = await service.merchant.patch_item(OPERATOR, store_id, "itm_soup",
                                                ItemPatch(availability="sold_out", sold_out_until=friday))
    assert item.sold_out_until == friday
    clock.advance(3600)
    _, item = await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(price=700))
    assert (item.availability, item.sold_out_until, item.price) == ("sold_out", friday, 700)
    # a whole-menu upsert from a client that knows no ends: the item keeps Friday, a new one gets tonight
    upsert = {"categories": [{"name": "Mains", "items": [
        {"id": "itm_soup", "name": "Soup of the day", "price": 700, "availability": "sold_out"},
        {"id": "itm_bread", "name": "Bread", "price": 200, "availability": "sold_out"}]}]}
    _, menu, _ = await service.merchant.publish_menu(OPERATOR, store_id, msgspec.convert(upsert, MenuIn))
    ends = {i.id: i.sold_out_until for c in menu.categories for i in c.items}
    assert ends == {"itm_soup": friday, "itm_bread": DAY_ENDS}
    _, item = await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", ItemPatch(availability="in_stock"))
    assert (item.availability, item.sold_out_until) == ("in_stock", None)
    async with db.acquire() as conn:
        events = [msgspec.json.decode(p[0])["data"] for p in await conn.fetch(
            "SELECT payload::text FROM outbox WHERE type = 'item.sold_out' ORDER BY seq")]
    # the price change and the upsert that kept Friday were no new sell-outs; the bread was
    assert [(e["item_id"], e["sold_out_until"]) for e in events] == [
        ("itm_soup", "2026-10-30T12:00:00+00:00"), ("itm_bread", "2026-10-25T23:00:00+00:00")]


@pytest.mark.parametrize(("patch", "message"), [
    (ItemPatch(availability="sold_out", sold_out_until=SOLD_AT), "in the future"),
    (ItemPatch(availability="sold_out", sold_out_until=SOLD_AT + timedelta(days=31)), "at most 30 days"),
    (ItemPatch(sold_out_until=SOLD_AT + timedelta(hours=1)), "only a sold_out item"),
])
async def test_a_bad_end_is_422_on_the_patch_field_and_changes_nothing(shop, db, patch, message) -> None:
    service, _, store_id = shop
    with pytest.raises(ValidationFailed, match=message) as err:
        await service.merchant.patch_item(OPERATOR, store_id, "itm_soup", patch)
    assert err.value.param == "sold_out_until" and err.value.status == 422
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT menu_version FROM catalog_stores WHERE id = $1", store_id) == 1
