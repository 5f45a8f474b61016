"""Customer discovery over HTTP: points inside, outside and on the edge of zones, distance limit,
hours and pauses, sorting and cursor pagination; the customer menu."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fooddispatch.app import create_app
from kernel.clock import ManualClock

NOW = datetime(2024, 6, 3, 13, 0, tzinfo=UTC)  # Monday 15:00 in Berlin


def square(lat0: float, lng0: float, lat1: float, lng1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[lng0, lat0], [lng1, lat0], [lng1, lat1], [lng0, lat1], [lng0, lat0]]]}


@pytest.fixture
async def world(aiohttp_client, settings, make_principal):
    client = await aiohttp_client(create_app(settings, clock=ManualClock(NOW), components=("catalog",)))
    _, op = await make_principal("operator")
    tenant = (await (await client.post("/v1/tenants", json={"name": "T"}, headers=op)).json())["id"]
    _, staff = await make_principal("staff", tenant_id=tenant)

    async def store(name: str, lat: float, lng: float, zone: dict, hours=("00:00", "24:00"),
                    max_m: int = 20_000) -> str:
        resp = await client.post(f"/v1/tenants/{tenant}/stores", headers=staff, json={
            "name": name, "lat": lat, "lng": lng, "timezone": "Europe/Berlin", "currency": "EUR"})
        store_id = (await resp.json())["id"]
        await client.put(f"/v1/merchant/stores/{store_id}/hours", headers=staff, json={
            "periods": [{"weekday": d, "opens": hours[0], "closes": hours[1]} for d in range(7)]})
        resp = await client.put(f"/v1/merchant/stores/{store_id}/zones", headers=staff, json={
            "zones": [zone], "max_delivery_m": max_m,
            "fee_bands": [{"up_to_m": 2000, "fee": 100}, {"up_to_m": max_m, "fee": 300}]})
        assert resp.status == 200, await resp.text()
        return store_id

    return client, staff, store


async def found(client, lat: float, lng: float, **params) -> list[dict]:
    resp = await client.get("/v1/stores", params={"lat": str(lat), "lng": str(lng), **params})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


async def test_inside_outside_and_on_the_edge(world) -> None:
    client, _, store = world
    s = await store("Edge", 52.52, 13.40, square(52.50, 13.38, 52.54, 13.42))
    assert [c["id"] for c in await found(client, 52.52, 13.40)] == [s]
    assert [c["id"] for c in await found(client, 52.50, 13.40)] == [s]  # on the southern edge
    assert [c["id"] for c in await found(client, 52.54, 13.42)] == [s]  # on a corner
    assert await found(client, 52.4995, 13.40) == []  # 55 m outside
    assert await found(client, 48.85, 2.35) == []  # another city


async def test_max_delivery_distance_limits_a_large_zone(world) -> None:
    client, _, store = world
    await store("Short reach", 52.52, 13.40, square(52.40, 13.20, 52.64, 13.60), max_m=3000)
    assert len(await found(client, 52.53, 13.40)) == 1  # ~1.1 km
    assert await found(client, 52.60, 13.40) == []  # ~8.9 km, inside the zone but too far


async def test_closed_paused_and_later_today(world) -> None:
    client, staff, store = world
    zone = square(52.50, 13.38, 52.54, 13.42)
    open_now = await store("Open", 52.52, 13.40, zone)
    later = await store("Dinner", 52.52, 13.40, zone, hours=("17:30", "22:00"))
    await store("Breakfast", 52.52, 13.40, zone, hours=("07:00", "10:00"))  # done for today
    paused = await store("Paused", 52.52, 13.40, zone)
    await client.post(f"/v1/merchant/stores/{paused}/pause", json={}, headers=staff)
    closed = await store("Closed", 52.52, 13.40, zone)
    await client.post(f"/v1/merchant/stores/{closed}/close", headers=staff)
    cards = {c["id"]: c for c in await found(client, 52.52, 13.40)}
    assert set(cards) == {open_now, later}
    assert cards[open_now]["open_now"] and cards[open_now]["opens_at"] is None
    assert not cards[later]["open_now"] and cards[later]["opens_at"].startswith("2024-06-03T15:30:00")
    assert cards[later]["eta_s"] > cards[open_now]["eta_s"] + 2 * 3600


async def test_sorted_by_distance_or_eta_and_paginated_with_cursors(world) -> None:
    client, _, store = world
    zone = square(52.45, 13.30, 52.60, 13.50)
    ids = [await store(f"S{i}", 52.52 + 0.005 * i, 13.40, zone) for i in range(5)]
    cards = await found(client, 52.52, 13.40, sort="distance")
    assert [c["id"] for c in cards] == ids
    assert [c["delivery_fee"]["amount"] for c in cards] == [100, 100, 100, 100, 300]
    assert [c["id"] for c in await found(client, 52.52, 13.40, sort="eta")] == ids
    seen, cursor = [], None
    while True:
        params = {"lat": "52.52", "lng": "13.40", "sort": "distance", "limit": "2",
                  **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/v1/stores", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_bad_coordinates_are_422_and_a_bad_cursor_400_cursor_invalid(world) -> None:
    client, _, _ = world
    resp = await client.get("/v1/stores", params={"lat": "95", "lng": "13"})
    assert resp.status == 422 and (await resp.json())["error"]["param"] == "lat"
    for garbage in ("garbage", "garbage!"):  # base64url that holds no key; not base64url at all
        resp = await client.get("/v1/stores", params={"lat": "52", "lng": "13", "cursor": garbage})
        error = (await resp.json())["error"]
        assert (resp.status, error["code"], error["param"]) == (400, "cursor_invalid", "cursor")


async def test_customer_menu_hides_hidden_items_and_flags_sold_out(world) -> None:
    client, staff, store = world
    s = await store("Menu", 52.52, 13.40, square(52.50, 13.38, 52.54, 13.42))
    resp = await client.put(f"/v1/merchant/stores/{s}/menu", headers=staff, json={"categories": [
        {"name": "C", "items": [{"id": "itm_a", "name": "A", "price": 1},
                                {"id": "itm_b", "name": "B", "price": 1, "availability": "hidden"},
                                {"id": "itm_c", "name": "C", "price": 1}]}]})
    assert resp.status == 200
    await client.put(f"/v1/merchant/stores/{s}/stock/itm_c", json={"count": 0}, headers=staff)
    menu = await (await client.get(f"/v1/stores/{s}/menu")).json()
    assert [(i["id"], i["sold_out"]) for i in menu["categories"][0]["items"]] == [("itm_a", False), ("itm_c", True)]
    assert (await client.get("/v1/stores/sto_nope/menu")).status == 404
