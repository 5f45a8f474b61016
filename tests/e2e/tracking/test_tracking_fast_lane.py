"""The courier socket's fast lane (tracking/lane.py): on with the installed aiohttp,
frames applied in the order the courier sent them, and the socket works the same with it off."""

from __future__ import annotations

import asyncio
import json

import pytest
from tracking_helpers import BERLIN, point, tracking_app, wait_acked

from fooddispatch.keys import SETTINGS
from geo.live import CourierIndex
from tracking.service import TRACKING


async def test_location_frames_take_the_lane_and_are_stored(client, make_courier, redis):
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        session = client.app[TRACKING].couriers[courier_id]
        lane = session.ws.lane
        assert lane is not None, "the fast lane is off with this aiohttp: see tracking/lane.py"
        assert lane.sink is session
        for seq in range(1, 4):
            await ws.send_json({"type": "location", **point(seq, BERLIN[0] + seq * 0.0001)})
            await wait_acked(ws, seq)
        assert lane.taken == 3
        await ws.send_str("not json")  # anything the lane can't apply goes to the handler, which answers
        error = json.loads((await ws.receive()).data)
        assert error["type"] == "error" and error["code"] == "malformed_frame"
        assert lane.taken == 3
    settings = client.app[SETTINGS]
    state = (await CourierIndex(redis, settings.redis_prefix, settings.region).courier_states([courier_id]))
    assert state[courier_id].state.seq == 3


async def test_a_location_sent_behind_an_action_is_applied_after_it(client, make_courier, db):
    """While the handler waits for an action's event to commit, a location frame that
    follows it must not overtake it through the lane. The test holds the action's row
    locked (an uncommitted insert of the same key), so the action waits as long as it likes."""
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        async with db.acquire() as blocker:
            holding = blocker.transaction()
            await holding.start()
            await blocker.execute("INSERT INTO tracking_courier_actions (courier_id, action_id, type) "
                                  "VALUES ($1, 'act_1', 'courier.offer_response')", courier_id)
            await ws.send_json({"type": "offer_response", "offer_id": "off_1", "accepted": False, "id": "act_1"})
            await asyncio.sleep(0.1)  # the handler has taken the action and waits on the row
            await ws.send_json({"type": "location", **point(1)})
            with pytest.raises(TimeoutError):
                await ws.receive(timeout=0.3)  # nothing is acked while the action waits
            await holding.rollback()
        acks = [json.loads((await ws.receive(timeout=5)).data) for _ in range(2)]
        assert acks == [{"type": "ack", "id": "act_1"}, {"type": "ack", "seq": 1}]


async def test_with_the_lane_off_frames_take_the_queue_and_are_stored(aiohttp_client, settings, make_principal,
                                                                       redis):
    client = await aiohttp_client(tracking_app(settings, fast_lane=False))
    who, headers = await make_principal("courier", name="Grace Hopper")
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        assert client.app[TRACKING].couriers[who.account_id].ws.lane is None
        for seq in range(1, 4):
            await ws.send_json({"type": "location", **point(seq)})
        await wait_acked(ws, 3)
        await ws.send_str("not json")
        error = json.loads((await ws.receive()).data)
        assert error["code"] == "malformed_frame"
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    assert (await index.courier_states([who.account_id]))[who.account_id].state.seq == 3
