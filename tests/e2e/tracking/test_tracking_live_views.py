"""Customer and restaurant live views: the tracking window, reassignment, geofence
arrivals, two app instances sharing positions, and a slow watcher dropped alone."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import aiohttp
import pytest
from tracking_helpers import (
    AT,
    BERLIN,
    Collector,
    closed_with,
    courier_assigned,
    emit,
    open_track,
    order_accepted,
    order_placed,
    point,
    tracking_app,
    wait_acked,
)

from dispatch.event_types import DispatchUnassigned
from fooddispatch.keys import SETTINGS
from kernel.ids import new_id
from orders.event_types import OrderDelivered


def is_status(status: str | None = None, event: str | None = None):
    def match(frame: dict) -> bool:
        return frame["type"] == "status" and (status is None or frame.get("status") == status) and (
            event is None or frame.get("event") == event)

    return match


async def stream(ws, seqs, lat: float = BERLIN[0]) -> None:
    for seq in seqs:
        await ws.send_json({"type": "location", **point(seq, lat + seq * 1e-5)})
    await wait_acked(ws, seqs[-1])


async def test_customer_sees_positions_only_between_assignment_and_delivery(
    client, db, redis, make_courier, make_principal
):
    customer, customer_headers = await make_principal("customer")
    courier_id, courier_headers = await make_courier("Ada Lovelace")
    order_id = new_id("ord")
    await emit(db, order_placed(order_id, customer.account_id), order_id)
    watcher = Collector(await open_track(client, order_id, customer_headers))
    await watcher.wait_for(is_status("placed"))
    async with client.ws_connect("/v1/courier/ws?vehicle=bicycle", headers=courier_headers) as courier:
        await stream(courier, [1, 2])
        await asyncio.sleep(0.3)
        assert watcher.positions() == []  # before assignment: nothing

        await emit(db, courier_assigned("off_1", courier_id, order_id))
        await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == courier_id)
        await stream(courier, [3, 4])
        position = await watcher.wait_for(lambda f: f["type"] == "courier_position")
        assert position["courier_id"] == courier_id and position["order_id"] == order_id
        assert position["courier"] == {"first_name": "Ada", "vehicle": "bicycle"}
        assert position["eta_to"] == "pickup" and position["eta_seconds"] > 0
        assert abs(position["lat"] - BERLIN[0]) < 0.001

        await emit(db, OrderDelivered(order_id=order_id, store_id="sto_1", tenant_id="ten_1",
                                      customer_id=customer.account_id, status="delivered", courier_id=courier_id,
                                      at=AT + timedelta(minutes=30), proof=None))
        await watcher.wait_for(is_status("delivered"))
        seen = len(watcher.positions())
        await stream(courier, [5, 6])
        # Even a position published straight onto the order channel is not passed on now.
        prefix = client.app[SETTINGS].redis_prefix
        await redis.publish(f"{prefix}order:{order_id}", json.dumps({
            "type": "courier_position", "order_id": order_id, "courier_id": courier_id, "lat": 1.0, "lng": 1.0,
            "at": "2026-01-01T12:00:00Z"}))
        await asyncio.sleep(0.4)
        assert len(watcher.positions()) == seen
        statuses = [i for i, f in enumerate(watcher.frames) if f["type"] == "status" and f.get("status")]
        delivered_at = next(i for i in statuses if watcher.frames[i]["status"] == "delivered")
        assert all(i < delivered_at for i, f in enumerate(watcher.frames) if f["type"] == "courier_position")
    await watcher.stop()


async def test_only_the_orders_customer_and_its_restaurant_may_watch(client, db, make_principal):
    customer, customer_headers = await make_principal("customer")
    _other, other_headers = await make_principal("customer")
    _staff, staff_headers = await make_principal("staff", tenant_id="ten_1")
    _rival, rival_headers = await make_principal("staff", tenant_id="ten_2")
    order_id = new_id("ord")
    await emit(db, order_placed(order_id, customer.account_id, tenant_id="ten_1"), order_id)
    mine = await open_track(client, order_id, customer_headers)
    await mine.close()
    restaurant = await open_track(client, order_id, staff_headers)
    await restaurant.close()
    for headers in (other_headers, rival_headers):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(f"/v1/orders/{order_id}/track", headers=headers)
        assert info.value.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(f"/v1/orders/{new_id('ord')}/track", headers=customer_headers)
    assert info.value.status == 404


async def test_after_reassignment_the_previous_courier_never_reaches_the_order(
    client, db, make_courier, make_principal
):
    customer, customer_headers = await make_principal("customer")
    first_id, first_headers = await make_courier("First Courier")
    second_id, second_headers = await make_courier("Second Courier")
    order_id = new_id("ord")
    await emit(db, order_accepted(order_id, customer.account_id), order_id)
    await emit(db, courier_assigned("o1", first_id, order_id))
    watcher = Collector(await open_track(client, order_id, customer_headers))
    async with client.ws_connect("/v1/courier/ws", headers=first_headers) as first, \
            client.ws_connect("/v1/courier/ws", headers=second_headers) as second:
        await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == first_id)
        await stream(first, [1])
        await watcher.wait_for(lambda f: f["type"] == "courier_position" and f["courier_id"] == first_id)
        await emit(db, DispatchUnassigned(courier_id=first_id, order_ids=(order_id,), reason="x"))
        await emit(db, courier_assigned("o2", second_id, order_id))
        await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == second_id)
        mark = len(watcher.frames)
        await stream(first, [2, 3, 4])
        await stream(second, [1, 2])
        await watcher.wait_for(lambda f: f["type"] == "courier_position" and f["courier_id"] == second_id)
        await asyncio.sleep(0.3)
        assert {f["courier_id"] for f in watcher.positions()[0:] if watcher.frames.index(f) >= mark} == {second_id}
    await watcher.stop()


async def test_arrival_at_the_restaurant_raises_an_event_and_tells_the_customer(
    client, db, make_courier, make_principal
):
    customer, customer_headers = await make_principal("customer")
    courier_id, courier_headers = await make_courier()
    order_id = new_id("ord")
    pickup = (BERLIN[0] + 0.001, BERLIN[1])
    await emit(db, order_accepted(order_id, customer.account_id, pickup=pickup), order_id)
    await emit(db, courier_assigned("o1", courier_id, order_id))
    watcher = Collector(await open_track(client, order_id, customer_headers))
    await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == courier_id)
    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as courier:
        now = time.time()
        await courier.send_json({"type": "location", "points": [
            point(1, pickup[0] + 0.0002, pickup[1], ts=now - 2), point(2, pickup[0], pickup[1], ts=now - 1),
            point(3, pickup[0], pickup[1], ts=now)]})
        await wait_acked(courier, 3)
        await watcher.wait_for(is_status(event="courier.arrived_pickup"))
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload->'data' AS d FROM outbox WHERE type = 'courier.arrived_pickup'")
    assert [json.loads(r["d"])["order_id"] for r in rows] == [order_id]
    await watcher.stop()


async def test_a_courier_waiting_at_the_restaurant_when_assigned_arrives_and_is_shown_at_once(
    client, db, make_courier, make_principal
):
    customer, customer_headers = await make_principal("customer")
    courier_id, courier_headers = await make_courier()
    order_id = new_id("ord")
    pickup = (BERLIN[0] + 0.001, BERLIN[1])
    await emit(db, order_accepted(order_id, customer.account_id, pickup=pickup), order_id)
    watcher = Collector(await open_track(client, order_id, customer_headers))
    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as courier:
        now = time.time()
        await courier.send_json({"type": "location", "points": [
            point(1, pickup[0], pickup[1], ts=now - 1), point(2, pickup[0] + 0.0001, pickup[1], ts=now)]})
        await wait_acked(courier, 2)
        # Assigned after its last points: no further point is needed to be seen or to arrive.
        await emit(db, courier_assigned("o1", courier_id, order_id))
        position = await watcher.wait_for(lambda f: f["type"] == "courier_position", within=10)
        assert position["courier_id"] == courier_id
        await watcher.wait_for(is_status(event="courier.arrived_pickup"), within=10)
    await watcher.stop()


async def test_two_app_instances_share_positions_offers_and_the_one_connection_rule(
    client, aiohttp_client, settings, db, redis, make_courier, make_principal
):
    other = await aiohttp_client(tracking_app(settings))
    customer, customer_headers = await make_principal("customer")
    courier_id, courier_headers = await make_courier()
    order_id = new_id("ord")
    await emit(db, order_accepted(order_id, customer.account_id), order_id)
    await emit(db, courier_assigned("o1", courier_id, order_id))
    watcher = Collector(await open_track(other, order_id, customer_headers))  # customer on B
    await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == courier_id)
    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as on_a:  # courier on A
        await stream(on_a, [1, 2])
        position = await watcher.wait_for(lambda f: f["type"] == "courier_position")
        assert position["courier_id"] == courier_id
        async with other.ws_connect("/v1/courier/ws", headers=courier_headers) as on_b:
            assert (await wait_acked(on_b, 0))["seq"] == 2  # B continues where A stopped
            assert await closed_with(on_a) == 4409
            await redis.publish(f"{settings.redis_prefix}courier:{courier_id}", '{"type":"offer_cancelled",'
                                '"offer_id":"off_9"}')
            msg = await on_b.receive(timeout=5)
            assert json.loads(msg.data) == {"type": "offer_cancelled", "offer_id": "off_9"}
            await stream(on_b, [3])
            await watcher.wait_for(lambda f: f["type"] == "courier_position" and f["at"] != position["at"])
    await watcher.stop()


async def test_a_slow_watcher_is_dropped_without_delaying_a_fast_one(client, db, redis, make_principal):
    customer, customer_headers = await make_principal("customer")
    order_id = new_id("ord")
    courier_id = "cou_fake"
    await emit(db, order_accepted(order_id, customer.account_id), order_id)
    await emit(db, courier_assigned("o1", courier_id, order_id))
    fast = Collector(await open_track(client, order_id, customer_headers))
    await fast.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == courier_id)
    slow = await open_track(client, order_id, customer_headers)  # never reads
    await asyncio.sleep(0.2)
    channel = f"{client.app[SETTINGS].redis_prefix}order:{order_id}"
    pad = "x" * 8000
    count = 3000
    pipe = redis.pipeline(transaction=False)
    for i in range(count):
        pipe.publish(channel, json.dumps({"type": "courier_position", "order_id": order_id, "courier_id": courier_id,
                                          "lat": 52.5, "lng": 13.4, "at": "2026-01-01T12:00:00Z", "n": i,
                                          "pad": pad}))
    started = time.monotonic()
    await pipe.execute()
    await fast.wait_for(lambda f: f.get("n") == count - 1, within=20)
    elapsed = time.monotonic() - started
    assert [f["n"] for f in fast.positions()] == list(range(count))  # every message, in order
    assert elapsed < 10
    codes = []
    async with asyncio.timeout(10):
        async for msg in slow:  # the slow one finds its close after what was buffered
            if msg.type == aiohttp.WSMsgType.CLOSE:
                codes.append(msg.data)
    assert codes in ([1013], [])  # 1013 if the close frame got through, else the connection was cut
    assert len(fast.positions()) == count and not fast.closed.is_set()
    await fast.stop()
