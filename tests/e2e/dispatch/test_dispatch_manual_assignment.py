"""An operator's assignment by hand (`POST /v1/orders/{id}/courier`) reaches everyone, over the real app with
its dispatcher: the courier who had the order (by an accepted offer, or a pending one) is told it left them,
the new courier's app gets it, dispatch never offers it again, and the customer's tracking shows the new
courier and never the old one again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dispatch.service import DispatcherConfig
from fooddispatch.app import create_app
from fooddispatch.components.dispatch import DISPATCH_CONFIG
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from tracking.service import TrackingConfig

STORE = (52.5200, 13.4050)
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "items": [{"id": "itm_fries", "name": "Fries", "price": 400}]}]}


@pytest.fixture
def app(settings: Settings) -> web.Application:
    app = create_app(settings)
    app[DISPATCH_CONFIG] = DispatcherConfig(region=settings.region, interval_s=0.2, offer_ttl_s=30.0,
                                            lease_ttl_ms=2000)
    app[TRACKING_CONFIG] = TrackingConfig(region=settings.region, auth_timeout=0.5, sweep_interval=0.2,
                                          history_interval=0.2)
    return app


async def ok(resp: aiohttp.ClientResponse, status: int = 200) -> Any:
    body = await resp.json()
    assert resp.status == status, (resp.status, body)
    return body


async def eventually(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


class Courier:
    """A courier's app on the real socket: online, streaming fixes around a spot, keeping every frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, account_id: str, first_name: str,
                 spot: tuple[float, float]) -> None:
        self.ws, self.id, self.first_name, self.spot = ws, account_id, first_name, spot
        self.frames: list[dict[str, Any]] = []
        self.seq = 0

    async def read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))

    async def stream(self) -> None:
        while True:
            self.seq += 1
            wobble = (self.seq % 2) * 0.00005  # a moving courier: its position is published to its orders
            await self.ws.send_json({"type": "location", "lat": self.spot[0] + wobble, "lng": self.spot[1],
                                     "ts": time.time(), "seq": self.seq, "accuracy": 5.0})
            await asyncio.sleep(0.3)

    async def frame(self, match: Callable[[dict[str, Any]], bool], within: float = 20.0) -> dict[str, Any]:
        return await eventually(lambda: _first(self.frames, match), within)

    async def action(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send_json(frame)
        return await self.frame(lambda f: f.get("id") == frame["id"] and f["type"] in ("ack", "error"))


async def _read_into(ws: aiohttp.ClientWebSocketResponse, frames: list[dict[str, Any]]) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT:
            frames.append(json.loads(msg.data))


async def _after(frames: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> int | None:
    """Where the frames after the first match start (never 0, so `eventually` sees a match)."""
    return next((i + 1 for i, f in enumerate(frames) if match(f)), None)


async def _first(frames: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    return next((f for f in frames if match(f)), None)


@contextlib.asynccontextmanager
async def couriers_online(client: Any, make_principal: Any,
                          wrap: Callable[[Any], Any] = lambda ws: ws) -> AsyncIterator[tuple[Courier, Courier]]:
    """Anna near the restaurant, Ben a little farther: dispatch offers Anna the order first. `wrap` may
    stand in front of each socket (the AsyncAPI test records every frame through it)."""
    apps = []
    tasks: list[asyncio.Task[None]] = []
    for name, spot in (("Anna K.", (STORE[0] + 0.001, STORE[1])), ("Ben L.", (STORE[0] + 0.012, STORE[1]))):
        who, headers = await make_principal("courier", name=name)
        ws = wrap(await client.ws_connect("/v1/courier/ws", headers=headers))
        courier = Courier(ws, who.account_id, name.split()[0], spot)
        tasks.append(asyncio.create_task(courier.read()))
        await ws.send_json({"type": "hello", "vehicle": "bicycle"})
        assert (await courier.action({"type": "status", "status": "online", "id": "on"}))["type"] == "ack"
        tasks.append(asyncio.create_task(courier.stream()))
        apps.append(courier)
    try:
        yield apps[0], apps[1]
    finally:
        for task in tasks:
            task.cancel()
        for courier in apps:
            await courier.ws.close()


async def _city(client: Any, make_principal: Any) -> dict[str, Any]:
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": "Burger Bros"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Burger Bros Mitte", "lat": STORE[0], "lng": STORE[1], "timezone": "Europe/Berlin",
        "currency": "EUR", "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
    _, buyer = await make_principal("customer", name="Carla Customer")
    card = await ok(await client.post("/v1/payment_methods", headers={**buyer, "Idempotency-Key": "pm"}, json={
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    return {"operator": operator, "staff": staff, "store": sid, "buyer": buyer, "card": card["id"]}


async def _accepted_order(client: Any, city: dict[str, Any], key: str) -> str:
    quote = await ok(await client.post("/v1/quotes", headers=city["buyer"], json={
        "store_id": city["store"], "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
        "lines": [{"item_id": "itm_fries", "quantity": 1}]}), 201)
    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": city["card"]},
                                       headers={**city["buyer"], "Idempotency-Key": key}), 201)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=city["staff"]))
    await ok(await client.post(f"/v1/orders/{order['id']}/ready", json={}, headers=city["staff"]))  # offered now
    return str(order["id"])


async def _offers_of(db: Any, order_id: str) -> list[dict[str, Any]]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload->'data' AS d FROM outbox WHERE type = 'dispatch.offered' ORDER BY seq")
    return [d for d in (json.loads(r["d"]) for r in rows) if order_id in d["order_ids"]]


async def _pool_entry(client: Any, city: dict[str, Any], region: str, order_id: str) -> dict[str, Any]:
    pool = await ok(await client.get(f"/v1/dispatch/regions/{region}/pool", headers=city["operator"]))
    return next(o for o in pool["orders"] if o["order_id"] == order_id) | {"live_offers": pool["offers"]}


async def test_reassigning_an_assigned_order_tells_both_couriers_and_the_customer_sees_only_the_new_one(
        client, make_principal, db, settings: Settings) -> None:
    city = await _city(client, make_principal)
    async with couriers_online(client, make_principal) as (anna, ben):
        order_id = await _accepted_order(client, city, "o1")
        offer = await anna.frame(lambda f: f["type"] == "offer" and order_id in f["order_ids"])
        assert (await anna.action({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": True,
                                   "id": "yes"}))["type"] == "ack"

        async def courier_of_order() -> str | None:
            return (await ok(await client.get(f"/v1/orders/{order_id}", headers=city["operator"])))["courier_id"]

        await eventually(lambda: _is(courier_of_order, anna.id))
        link = await ok(await client.post(f"/v1/orders/{order_id}/tracking_links", headers=city["buyer"]), 201)

        async def view() -> dict[str, Any]:
            return await ok(await client.get(f"/v1/orders/{order_id}/tracking",
                                             headers={"X-Tracking-Token": link["token"]}))

        async def shows(first_name: str) -> bool:
            courier = (await view())["courier"]
            return courier is not None and courier["first_name"] == first_name

        await eventually(lambda: shows("Anna"))
        async with client.ws_connect(f"/v1/orders/{order_id}/tracking/ws?token={link['token']}") as page:
            page_frames: list[dict[str, Any]] = []
            reader = asyncio.create_task(_read_into(page, page_frames))
            # The operator gives the order to Ben.
            out = await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": ben.id},
                                             headers=city["operator"]))
            assert out["courier_id"] == ben.id
            gone = await anna.frame(lambda f: f["type"] == "unassigned")
            assert gone == {"type": "unassigned", "order_id": order_id, "reason": "reassigned"}
            mine = await ben.frame(lambda f: f["type"] == "assigned")
            assert mine["order_id"] == order_id and mine["by"] == "operator"
            assert mine["pickup"] == {"lat": STORE[0], "lng": STORE[1]} and mine["dropoff"]["lat"] == 52.53
            # The customer's page: after the change is announced, positions are Ben's only.
            announced = await eventually(
                lambda: _after(page_frames, lambda f: f.get("event") == "order.courier_assigned"))
            await eventually(lambda: _first(page_frames[announced:], lambda f: f["type"] == "courier_position"))
            await eventually(lambda: shows("Ben"))
            # Dispatch rounds go on (every 0.2 s): the order is never offered again, the JSON view never shows Anna.
            for _ in range(10):
                courier = (await view())["courier"]
                assert courier is None or courier["first_name"] == "Ben", courier
                await asyncio.sleep(0.2)
            after = [f for f in page_frames[announced:] if f["type"] == "courier_position"]
            assert after and all(f["courier"]["first_name"] == "Ben" for f in after), after
            reader.cancel()
        assert len(await _offers_of(db, order_id)) == 1
        entry = await _pool_entry(client, city, settings.region, order_id)
        assert entry["status"] == "assigned" and entry["courier_id"] == ben.id and entry["offer_id"] is None
        assert offer["offer_id"] not in [o["offer_id"] for o in entry["live_offers"]]  # Anna is free again
        assert await courier_of_order() == ben.id
        # Ben carries it: he picks it up on his socket.
        assert (await ben.action({"type": "picked_up", "order_id": order_id, "id": "up"}))["type"] == "ack"
        assert (await anna.action({"type": "picked_up", "order_id": order_id, "id": "no"}))["type"] == "error"


async def test_assigning_an_offered_order_withdraws_the_offer_and_dispatch_leaves_it_alone(
        client, make_principal, db, settings: Settings) -> None:
    city = await _city(client, make_principal)
    async with couriers_online(client, make_principal) as (anna, ben):
        order_id = await _accepted_order(client, city, "o2")
        offer = await anna.frame(lambda f: f["type"] == "offer" and order_id in f["order_ids"])
        await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": ben.id},
                                   headers=city["operator"]))
        withdrawn = await anna.frame(lambda f: f["type"] == "offer_cancelled")
        assert withdrawn["offer_id"] == offer["offer_id"]
        await ben.frame(lambda f: f["type"] == "assigned" and f["order_id"] == order_id)
        # Anna answers too late: refused, and the order stays Ben's.
        late = await anna.action({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": True,
                                  "id": "late"})
        assert late["type"] == "ack"  # recorded by tracking; dispatch refuses it
        await anna.frame(lambda f: f["type"] == "error" and f.get("offer_id") == offer["offer_id"])
        assert not any(f["type"] == "unassigned" for f in ben.frames)
        await asyncio.sleep(1.5)  # several dispatch rounds, with Anna idle next to the restaurant
        assert len(await _offers_of(db, order_id)) == 1
        entry = await _pool_entry(client, city, settings.region, order_id)
        assert entry["status"] == "assigned" and entry["courier_id"] == ben.id
        order = await ok(await client.get(f"/v1/orders/{order_id}", headers=city["operator"]))
        assert order["courier_id"] == ben.id
        # Assigning Ben again changes nothing and announces nothing.
        await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": ben.id},
                                   headers=city["operator"]))
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'order.courier_assigned'") == 1
        bad = await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": ""}, headers=city["operator"])
        assert bad.status == 422 and (await bad.json())["error"]["param"] == "courier_id"


async def _is(read: Callable[[], Any], expected: Any) -> bool:
    return bool(await read() == expected)


async def test_an_order_held_by_hand_goes_back_to_the_pool_when_its_courier_goes_offline(
        client, make_principal, db) -> None:
    city = await _city(client, make_principal)
    async with couriers_online(client, make_principal) as (anna, ben):
        order_id = await _accepted_order(client, city, "o3")
        first = await anna.frame(lambda f: f["type"] == "offer" and order_id in f["order_ids"])
        await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": ben.id},
                                   headers=city["operator"]))
        await ben.frame(lambda f: f["type"] == "assigned" and f["order_id"] == order_id)
        # Ben's shift ends with the food still at the restaurant: like an accepted bundle, it goes back.
        await ok(await client.post(f"/v1/couriers/{ben.id}/offline", json={},
                                   headers={**city["operator"], "Idempotency-Key": "off"}))
        again = await anna.frame(lambda f: f["type"] == "offer" and order_id in f["order_ids"]
                                 and f["offer_id"] != first["offer_id"])
        assert (await anna.action({"type": "offer_response", "offer_id": again["offer_id"], "accepted": True,
                                   "id": "yes"}))["type"] == "ack"

        async def courier_of_order() -> str | None:
            return (await ok(await client.get(f"/v1/orders/{order_id}", headers=city["operator"])))["courier_id"]

        await eventually(lambda: _is(courier_of_order, anna.id))
        async with db.acquire() as conn:
            unassigned = await conn.fetch("SELECT payload->'data' AS d FROM outbox WHERE type = 'dispatch.unassigned'")
        assert [json.loads(r["d"])["order_ids"] for r in unassigned] == [[order_id]]
