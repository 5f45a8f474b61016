"""The courier socket end to end: real app, real Redis, real websocket clients."""

from __future__ import annotations

import h3
from tracking_helpers import BERLIN, closed_with, point, wait_acked

from fooddispatch.keys import SETTINGS
from geo.live import CourierIndex


async def test_streamed_points_are_found_by_geosearch_in_their_cell(client, make_courier, redis):
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        lat, lng = BERLIN
        for seq in range(1, 6):
            await ws.send_json({"type": "location", **point(seq, lat + seq * 0.0001, lng)})
        await wait_acked(ws, 5)
    settings = client.app[SETTINGS]
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    found = await index.search_available(BERLIN[0], BERLIN[1], 1000, count=10)
    assert [c.courier_id for c in found] == [courier_id]
    assert abs(found[0].lat - (lat + 0.0005)) < 1e-5
    cell = h3.latlng_to_cell(lat + 0.0005, lng, 9)
    assert await redis.smembers(index.keys.cell(cell)) == {courier_id.encode()}
    assert await index.available_counts([cell]) == {cell: 1}
    nearest = await index.nearest_available(BERLIN[0], BERLIN[1], k=3)
    assert [c.courier_id for c in nearest] == [courier_id]
    state = (await index.courier_states([courier_id]))[courier_id].state
    assert state is not None and state.seq == 5 and state.status == "online" and state.cell == cell


async def test_hello_frame_authenticates_and_silence_closes_4401(client, make_courier):
    _courier_id, headers = await make_courier()
    token = headers["Authorization"].split(" ", 1)[1]
    async with client.ws_connect("/v1/courier/ws") as ws:
        await ws.send_json({"type": "hello", "token": token, "vehicle": "bicycle"})
        await wait_acked(ws, 0)
    async with client.ws_connect("/v1/courier/ws") as ws:
        assert await closed_with(ws) == 4401
    async with client.ws_connect("/v1/courier/ws") as ws:
        await ws.send_json({"type": "hello", "token": "not-a-token"})
        assert await closed_with(ws) == 4401
