""""Sold out today" over HTTP, as merchants and customers use it: an item sold out at 22:00 in Berlin is
unavailable at 23:59 and back at 00:00 the next local day, also on the nights clocks change; the
customer menu, the merchant menu and checkout's quote (orders -> catalog, from its cached menu) flip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from tests.e2e.orders.orders_helpers import make_shop, ok

BERLIN = ZoneInfo("Europe/Berlin")
MENU = {"categories": [{"name": "Mains", "items": [
    {"id": "itm_soup", "name": "Soup of the day", "price": 650},
    {"id": "itm_bread", "name": "Bread", "price": 200}]}]}


@pytest.fixture
def make_world(aiohttp_client, settings, make_principal):
    async def build(start: datetime):
        clock = ManualClock(start)
        client = await aiohttp_client(create_app(settings, clock=clock, components=("catalog", "payments", "orders")))
        shop = await make_shop(client, make_principal)  # open all week, one zone around the point below
        _, customer = await make_principal("customer")
        sid, staff = shop.store_id, shop.staff
        await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
        return client, clock, sid, staff, customer

    return build


def quote_body(store_id: str) -> dict:
    return {"store_id": store_id, "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
            "lines": [{"item_id": "itm_soup", "quantity": 1}]}


@pytest.mark.parametrize(("day", "day_ends"), [
    ((2026, 3, 29), "2026-03-29T22:00:00Z"),  # 23 hours: clocks jump 02:00 -> 03:00 that morning
    ((2026, 10, 25), "2026-10-25T23:00:00Z"),  # 25 hours: clocks fall back 03:00 -> 02:00
])
async def test_sold_out_at_22_is_back_at_local_midnight(make_world, db, day, day_ends) -> None:
    sold_at = datetime(*day, 22, 0, tzinfo=BERLIN).astimezone(UTC)
    client, clock, sid, staff, customer = await make_world(sold_at)
    await ok(await client.post("/v1/quotes", json=quote_body(sid), headers=customer), 201)  # menu now cached

    item = (await ok(await client.patch(f"/v1/merchant/stores/{sid}/items/itm_soup", headers=staff,
                                        json={"availability": "sold_out"})))["item"]
    assert (item["availability"], item["sold_out_until"]) == ("sold_out", day_ends)

    async def state() -> tuple[int, bool, tuple[str, str | None]]:
        quote = await client.post("/v1/quotes", json=quote_body(sid), headers=customer)
        if quote.status == 422:
            error = (await quote.json())["error"]
            assert (error["code"], error["param"]) == ("item_unavailable", "lines[0].item_id")
        menu = await ok(await client.get(f"/v1/stores/{sid}/menu"))
        flag = next(i["sold_out"] for i in menu["categories"][0]["items"] if i["id"] == "itm_soup")
        merchant = await ok(await client.get(f"/v1/merchant/stores/{sid}/menu", headers=staff))
        mine = next(i for i in merchant["categories"][0]["items"] if i["id"] == "itm_soup")
        return quote.status, flag, (mine["availability"], mine["sold_out_until"])

    assert await state() == (422, True, ("sold_out", day_ends))
    clock.advance((datetime(*day, 23, 59, tzinfo=BERLIN).astimezone(UTC) - sold_at).total_seconds())
    assert await state() == (422, True, ("sold_out", day_ends))
    clock.advance(60)
    midnight = clock.now().astimezone(BERLIN)
    assert (midnight.date() - datetime(*day).date(), midnight.time().isoformat()) == (timedelta(days=1), "00:00:00")
    assert await state() == (201, False, ("in_stock", None))

    async with db.acquire() as conn:
        [payload] = await conn.fetch("SELECT payload::text FROM outbox WHERE type = 'item.sold_out'")
    data = msgspec.json.decode(payload[0])["data"]
    assert (data["item_id"], data["reason"], data["sold_out_until"]) == ("itm_soup", "merchant",
                                                                         day_ends.replace("Z", "+00:00"))


async def test_merchant_may_give_an_end_and_bad_ends_are_422(make_world) -> None:
    now = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)
    client, clock, sid, staff, _ = await make_world(now)
    url = f"/v1/merchant/stores/{sid}/items/itm_bread"
    for body, param in [
        ({"availability": "sold_out", "sold_out_until": "2026-06-03T09:00:00Z"}, "sold_out_until"),
        ({"availability": "sold_out", "sold_out_until": "2026-07-04T09:00:00Z"}, "sold_out_until"),
        ({"availability": "sold_out", "sold_out_until": "2026-06-04T09:00:00"}, "sold_out_until"),  # no offset
        ({"sold_out_until": "2026-06-04T09:00:00Z"}, "sold_out_until"),  # the bread is in stock
    ]:
        error = (await ok(await client.patch(url, headers=staff, json=body), 422))["error"]
        assert error["param"] == param, (body, error)
    resp = await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json={"categories": [
        {"name": "Mains", "items": [{"name": "X", "price": 1, "sold_out_until": "2026-06-04T09:00:00Z"}]}]})
    assert (await ok(resp, 422))["error"]["param"] == "categories[0].items[0].sold_out_until"

    item = (await ok(await client.patch(url, headers=staff, json={
        "availability": "sold_out", "sold_out_until": "2026-06-05T11:30:00+02:00"})))["item"]
    assert item["sold_out_until"] == "2026-06-05T09:30:00Z"
    clock.advance(timedelta(days=1, hours=23).total_seconds())  # past the first midnight: still sold out
    menu = await ok(await client.get(f"/v1/stores/{sid}/menu"))
    assert [i["sold_out"] for i in menu["categories"][0]["items"]] == [False, True]
    clock.advance(30 * 60)
    menu = await ok(await client.get(f"/v1/stores/{sid}/menu"))
    assert [i["sold_out"] for i in menu["categories"][0]["items"]] == [False, False]
