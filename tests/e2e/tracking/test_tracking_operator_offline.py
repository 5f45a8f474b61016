"""An operator takes a courier offline (`POST /v1/couriers/{courier_id}/offline`): the same
status change and event as a courier going offline itself, wherever its socket is."""

from __future__ import annotations

import asyncio
import json

from tracking_helpers import BERLIN, point, receive_until, tracking_app, wait_acked

from fooddispatch.keys import SETTINGS
from geo.live import CourierIndex
from tracking.web import TRACKING


async def status_events(db, courier_id: str) -> list[str]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload::text AS p FROM outbox WHERE type = 'courier.status_changed' "
                                "ORDER BY seq")
    return [d["status"] for d in (json.loads(r["p"])["data"] for r in rows) if d["courier_id"] == courier_id]


async def take_offline(client, courier_id: str, headers: dict[str, str], key: str):
    return await client.post(f"/v1/couriers/{courier_id}/offline", json={},
                             headers={**headers, "Idempotency-Key": key})


async def test_operator_takes_a_connected_courier_offline_once_per_change(client, make_courier, make_principal,
                                                                         redis, db):
    _operator, ops = await make_principal("operator")
    courier_id, headers = await make_courier()
    settings = client.app[SETTINGS]
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await ws.send_json({"type": "location", **point(1)})
        await wait_acked(ws, 1)
        assert len(await index.search_available(BERLIN[0], BERLIN[1], 500)) == 1

        response = await take_offline(client, courier_id, ops, "k1")
        assert response.status == 200
        body = await response.json()
        assert body == {"courier_id": courier_id, "status": "offline", "changed": True, "connected": True}
        told = await receive_until(ws, lambda f: f["type"] == "status")
        assert told == {"type": "status", "status": "offline", "by": "operator"}
        assert await index.search_available(BERLIN[0], BERLIN[1], 500) == []
        state = (await index.courier_states([courier_id]))[courier_id].state
        assert state is not None and state.status == "offline"

        replay = await take_offline(client, courier_id, ops, "k1")  # same key: the first answer again
        assert replay.headers.get("Idempotent-Replayed") == "true" and await replay.json() == body
        again = await take_offline(client, courier_id, ops, "k2")  # new key, already offline: nothing new
        assert (await again.json())["changed"] is False

        await ws.send_json({"type": "location", **point(2, BERLIN[0] + 1e-4)})
        await wait_acked(ws, 2)
        assert await index.search_available(BERLIN[0], BERLIN[1], 500) == []  # a ping does not bring it back
        await ws.send_json({"type": "status", "status": "online", "id": "s1"})
        await receive_until(ws, lambda f: f.get("id") == "s1")
        await ws.send_json({"type": "location", **point(3, BERLIN[0] + 2e-4)})
        await wait_acked(ws, 3)
        assert len(await index.search_available(BERLIN[0], BERLIN[1], 500)) == 1  # the courier's own choice
    assert await status_events(db, courier_id) == ["offline", "online"]


async def test_a_courier_connected_to_another_process_is_taken_offline_there_too(
    client, aiohttp_client, settings, make_courier, make_principal, redis, db
):
    other = await aiohttp_client(tracking_app(settings))
    _operator, ops = await make_principal("operator")
    courier_id, headers = await make_courier()
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    async with other.ws_connect("/v1/courier/ws", headers=headers) as on_b:  # the socket is on B
        await on_b.send_json({"type": "location", **point(1)})
        await wait_acked(on_b, 1)
        response = await take_offline(client, courier_id, ops, "k1")  # the operator asks A
        assert await response.json() == {"courier_id": courier_id, "status": "offline", "changed": True,
                                         "connected": False}
        await receive_until(on_b, lambda f: f["type"] == "status" and f["status"] == "offline")
        await on_b.send_json({"type": "location", **point(2, BERLIN[0] + 1e-4)})
        await wait_acked(on_b, 2)  # B stored the next ping with the status it was told
        state = (await index.courier_states([courier_id]))[courier_id].state
        assert state is not None and state.status == "offline" and state.seq == 2
        assert await index.search_available(BERLIN[0], BERLIN[1], 500) == []
    assert await status_events(db, courier_id) == ["offline"]


async def test_a_disconnected_courier_leaves_the_index_and_only_operators_may_ask(
    client, make_courier, make_principal, redis, db
):
    _operator, ops = await make_principal("operator")
    _customer, customer = await make_principal("customer")
    courier_id, headers = await make_courier()
    settings = client.app[SETTINGS]
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await ws.send_json({"type": "location", **point(1)})
        await wait_acked(ws, 1)
    async with asyncio.timeout(5):  # the server let the socket go; the courier stays in the index until stale
        while courier_id in client.app[TRACKING].couriers:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert len(await index.search_available(BERLIN[0], BERLIN[1], 500)) == 1
    assert (await take_offline(client, courier_id, customer, "k1")).status == 403
    assert (await take_offline(client, courier_id, headers, "k1")).status == 403
    missing = await client.post(f"/v1/couriers/{courier_id}/offline", json={}, headers=ops)
    assert missing.status == 400 and (await missing.json())["error"]["code"] == "idempotency_key_missing"
    unknown = await take_offline(client, "cou_nobody", ops, "k2")
    assert unknown.status == 404
    response = await take_offline(client, courier_id, ops, "k3")
    assert await response.json() == {"courier_id": courier_id, "status": "offline", "changed": True,
                                     "connected": False}
    assert await index.search_available(BERLIN[0], BERLIN[1], 500) == []
    assert await status_events(db, courier_id) == ["offline"]


async def test_the_ops_console_finds_the_route_for_its_take_offline_button(client, make_principal):
    _operator, ops = await make_principal("operator")
    found = await (await client.get("/v1/ops/routes", headers=ops)).json()
    assert found["courier_offline"] == {"method": "POST", "path": "/v1/couriers/{courier_id}/offline"}
