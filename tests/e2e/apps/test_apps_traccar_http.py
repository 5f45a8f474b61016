"""Real tracker apps: an operator issues a courier a device key; fixes in the OsmAnd protocol (Traccar
Client's query string, and the JSON body newer versions send) land in the live index through the same
validation as the courier socket; revoked and unknown keys are refused."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiohttp import web
from apps_helpers import STORE, ok

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from geo.live import CourierIndex
from tracking.osmand import KNOT_MPS


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, components=("catalog", "payments", "tracking", "orders", "apps"))


async def _stored(redis, settings: Settings, courier_id: str):
    return await CourierIndex(redis, settings.redis_prefix, settings.region).stored_state(courier_id)


async def test_a_traccar_fix_lands_in_the_live_index_and_a_revoked_key_is_refused(
        client, make_principal, redis, settings: Settings, db) -> None:
    _, operator = await make_principal("operator")
    courier, _ = await make_principal("courier", name="Ada Lovelace")
    issued = await ok(await client.post(f"/v1/couriers/{courier.account_id}/device_keys", headers=operator,
                                        json={"name": "Ada's phone"}), 201)
    key = issued["key"]
    assert key.startswith("fdd_") and issued["courier_id"] == courier.account_id

    now = int(time.time())
    fix = {"id": key, "lat": str(STORE[0]), "lon": str(STORE[1]), "timestamp": str(now - 2), "speed": "10",
           "bearing": "90", "accuracy": "6", "altitude": "35", "batt": "81"}
    resp = await client.get("/osmand", params=fix)
    assert (await ok(resp)) == {"accepted": 1, "duplicates": 0, "rejected": []}
    state = await _stored(redis, settings, courier.account_id)
    assert state is not None and (state.lat, state.lng) == (STORE[0], STORE[1])
    assert state.speed == pytest.approx(10 * KNOT_MPS) and state.heading == 90 and state.accuracy == 6
    assert state.status == "online" and state.ts == now - 2

    # The same fix again (the app did not hear our answer) is a duplicate, not a second point.
    assert (await ok(await client.get("/osmand", params=fix)))["duplicates"] == 1

    # Newer Traccar Client: a JSON body, speed in m/s, time in ISO 8601.
    moved = STORE[0] + 0.0005
    body = {"device_id": key, "location": {
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "coords": {"latitude": moved, "longitude": STORE[1], "speed": 4.5, "heading": 10, "accuracy": 5,
                   "altitude": 36}, "is_moving": True, "battery": {"level": 0.8, "is_charging": False}}}
    assert (await ok(await client.post("/osmand", json=body)))["accepted"] == 1
    state = await _stored(redis, settings, courier.account_id)
    assert state.lat == moved and state.speed == 4.5 and state.seq == 2

    # Same validation as the socket: a jump no courier can make is rejected (answered, so the app moves on).
    far = {**fix, "lat": str(STORE[0] + 1.0), "timestamp": str(now + 1)}
    result = await ok(await client.get("/osmand", params=far))
    assert result["accepted"] == 0 and result["rejected"] == [{"index": 0, "reason": "teleport"}]
    assert (await _stored(redis, settings, courier.account_id)).lat == moved

    # Two requests of one device at once are applied one after the other (never the same seq twice).
    near = [{**fix, "lat": str(moved + 0.0001 * i), "timestamp": str(now + 2 + i)} for i in (1, 2)]
    both = await asyncio.gather(*(client.get("/osmand", params=p) for p in near))
    results = [await ok(r) for r in both]
    applied = sum(r["accepted"] for r in results)
    assert applied >= 1 and applied + sum(r["duplicates"] for r in results) == 2
    assert (await _stored(redis, settings, courier.account_id)).seq == 2 + applied

    # Older apps POST the same parameters as a form.
    form = {**fix, "lat": str(moved + 0.0003), "timestamp": str(now + 6)}
    assert (await ok(await client.post("/osmand", data=form)))["accepted"] == 1
    assert (await _stored(redis, settings, courier.account_id)).lat == moved + 0.0003

    # History keeps the accepted fixes.
    async def history() -> int:
        async with db.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM courier_locations WHERE courier_id = $1",
                                       courier.account_id)

    from apps_helpers import eventually
    await eventually(lambda: _at_least(history, 2))

    listed = await ok(await client.get(f"/v1/couriers/{courier.account_id}/device_keys", headers=operator))
    assert [k["id"] for k in listed["items"]] == [issued["id"]] and listed["items"][0]["key"] is None
    assert listed["items"][0]["last_used_at"] is not None
    await ok(await client.delete(f"/v1/device_keys/{issued['id']}", headers=operator), 204)
    refused = await client.get("/osmand", params={**fix, "timestamp": str(now + 2)})
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "device_key_revoked"
    unknown = await client.get("/osmand", params={**fix, "id": "fdd_nobody"})
    assert unknown.status == 401 and (await unknown.json())["error"]["code"] == "invalid_device_key"
    bad = await client.get("/osmand", params={"id": key, "lat": "north", "lon": "13.4"})
    assert bad.status == 422 and (await bad.json())["error"]["param"] == "lat"
    # Only operators issue keys.
    _, courier_headers = await make_principal("courier")
    assert (await client.post(f"/v1/couriers/{courier.account_id}/device_keys", headers=courier_headers,
                              json={})).status == 403


async def _at_least(read, n: int) -> bool:
    return await read() >= n
