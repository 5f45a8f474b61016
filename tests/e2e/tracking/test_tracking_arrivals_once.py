"""An arrival is recorded once per order and courier, whoever reports it first: the geofence, the app's own
`arrived` frame (with or without an action id, resent under a new id after a reload), or the geofence of a
new socket after a reconnect (which forgot what the old one saw)."""

from __future__ import annotations

import asyncio
import json
import time

from tracking_helpers import (
    BERLIN,
    Collector,
    courier_assigned,
    emit,
    open_track,
    order_accepted,
    point,
    receive_until,
    wait_acked,
)

from kernel.ids import new_id

PICKUP = (BERLIN[0] + 0.001, BERLIN[1])


async def arrivals(db, order_id: str) -> list[tuple[str, str]]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT type, payload->'data' AS d FROM outbox WHERE type LIKE 'courier.arrived_%' "
                                "ORDER BY seq")
    return [(r["type"], json.loads(r["d"])["courier_id"]) for r in rows if json.loads(r["d"])["order_id"] == order_id]


async def at_pickup(ws, first_seq: int) -> None:
    now = time.time()
    await ws.send_json({"type": "location", "points": [
        point(first_seq, PICKUP[0] + 0.0002, PICKUP[1], ts=now - 2), point(first_seq + 1, *PICKUP, ts=now - 1),
        point(first_seq + 2, *PICKUP, ts=now)]})
    await wait_acked(ws, first_seq + 2)


async def acked(ws, frame: dict) -> None:
    await ws.send_json(frame)
    reply = await receive_until(ws, lambda f: f["type"] in ("ack", "error") and f.get("id") == frame.get("id"))
    assert reply["type"] == "ack", reply


async def test_an_arrival_reported_by_the_geofence_the_app_and_a_new_socket_is_recorded_once(
    client, db, make_courier, make_principal
):
    customer, customer_headers = await make_principal("customer")
    courier_id, courier_headers = await make_courier()
    order_id = new_id("ord")
    await emit(db, order_accepted(order_id, customer.account_id, pickup=PICKUP), order_id)
    await emit(db, courier_assigned("o1", courier_id, order_id))
    watcher = Collector(await open_track(client, order_id, customer_headers))
    await watcher.wait_for(lambda f: f["type"] == "status" and f.get("courier_id") == courier_id)
    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as ws:
        await at_pickup(ws, 1)  # the geofence reports it first
        await watcher.wait_for(lambda f: f.get("event") == "courier.arrived_pickup", within=10)
        assert await arrivals(db, order_id) == [("courier.arrived_pickup", courier_id)]
        # The app's own button, then again after a reload (a new action id), then without an id: acked, not kept.
        for frame_id in ("tap-1", "tap-2", None):
            await acked(ws, {"type": "arrived", "order_id": order_id, "where": "pickup", "id": frame_id})
        # The door: the app reports it first, twice.
        await acked(ws, {"type": "arrived", "order_id": order_id, "where": "dropoff", "id": "door-1"})
        await acked(ws, {"type": "arrived", "order_id": order_id, "where": "dropoff", "id": "door-2"})
    # A new socket's geofence sees the courier at the restaurant again.
    async with client.ws_connect("/v1/courier/ws", headers=courier_headers) as again:
        await at_pickup(again, 10)
        await asyncio.sleep(1.0)  # the geofence's record is a side job: give it the time it takes
    assert await arrivals(db, order_id) == [("courier.arrived_pickup", courier_id),
                                            ("courier.arrived_dropoff", courier_id)]
    notices = [f for f in watcher.frames if f.get("event", "").startswith("courier.arrived_")]
    assert [f["event"] for f in notices] == ["courier.arrived_pickup", "courier.arrived_dropoff"]  # told once each
    await watcher.stop()
