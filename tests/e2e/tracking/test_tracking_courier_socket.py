"""The courier socket end to end: real app, real Redis, real websocket clients."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import h3
from tracking_helpers import BERLIN, closed_with, point, receive_until, tracking_app, wait_acked

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


async def history_seqs(db, courier_id: str) -> list[int]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT seq FROM courier_locations WHERE courier_id = $1 ORDER BY seq", courier_id)
    return [r["seq"] for r in rows]


async def outbox_events(db, type_: str) -> list[dict]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload::text AS p FROM outbox WHERE type = $1 ORDER BY seq", type_)
    return [json.loads(r["p"])["data"] for r in rows]


async def test_replayed_points_after_a_reconnect_are_stored_once(client, make_courier, db):
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await ws.send_json({"type": "location", "points": [point(s, BERLIN[0] + s * 1e-4) for s in (1, 2, 3)]})
        await wait_acked(ws, 3)
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        assert (await wait_acked(ws, 0))["seq"] == 3  # the server says where it stands
        await ws.send_json({"type": "location", "points": [point(s, BERLIN[0] + s * 1e-4) for s in (2, 3, 4, 5)]})
        await wait_acked(ws, 5)
        await ws.send_json({"type": "location", **point(5)})  # a plain resend is acked, not stored
        assert (await wait_acked(ws, 5))["seq"] == 5
    await client.close()  # graceful shutdown flushes the history buffer
    assert await history_seqs(db, courier_id) == [1, 2, 3, 4, 5]


async def test_points_acked_before_a_graceful_shutdown_are_in_history(aiohttp_client, settings, make_courier, db):
    client = await aiohttp_client(tracking_app(settings, history_interval=60.0))  # only shutdown writes
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        for seq in range(1, 21):
            await ws.send_json({"type": "location", **point(seq, BERLIN[0] + seq * 1e-4)})
        await wait_acked(ws, 20)
        assert await history_seqs(db, courier_id) == []
    await client.close()
    assert await history_seqs(db, courier_id) == list(range(1, 21))


async def test_malformed_frames_get_error_codes_and_persistent_garbage_closes_1008(client, make_courier):
    _cid, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        await ws.send_str("{not json")
        assert (await receive_until(ws, lambda f: f["type"] == "error"))["code"] == "malformed_frame"
        await ws.send_json({"type": "location", "lat": "north"})
        assert (await receive_until(ws, lambda f: f["type"] == "error"))["code"] == "invalid_frame"
        await ws.send_json({"type": "location", **point(1, lat=95.0)})
        rejected = await receive_until(ws, lambda f: f["type"] == "error")
        assert (rejected["code"], rejected["message"], rejected["seq"]) == ("point_rejected", "out_of_range", 1)
        assert (await wait_acked(ws, 1))["seq"] == 1  # rejected points are done: acked, never resent
        for _ in range(5):
            await ws.send_str("garbage")
        assert await closed_with(ws) == 1008


async def test_a_frame_over_the_size_limit_closes_1009(client, make_courier):
    _cid, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        await ws.send_str('{"type":"hello","vehicle":"' + "x" * 70_000 + '"}')
        assert await closed_with(ws) == 1009


async def test_a_second_connection_replaces_the_first_with_4409(client, make_courier):
    _cid, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as first:
        await wait_acked(first, 0)
        async with client.ws_connect("/v1/courier/ws", headers=headers) as second:
            await wait_acked(second, 0)
            assert await closed_with(first) == 4409
            await second.send_json({"type": "location", **point(1)})
            await wait_acked(second, 1)


async def test_frames_on_the_courier_channel_are_forwarded_verbatim(client, make_courier, redis):
    courier_id, headers = await make_courier()
    prefix = client.app[SETTINGS].redis_prefix
    offer = '{"type":"offer","offer_id":"off_1","order_ids":["ord_1"],"expires_at":"2026-01-01T12:00:30Z"}'
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        await redis.publish(f"{prefix}courier:{courier_id}", offer)
        msg = await ws.receive(timeout=5)
        assert msg.data == offer


async def test_courier_actions_are_acked_after_their_event_commits_once_per_id(client, make_courier, db):
    courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await wait_acked(ws, 0)
        response = {"type": "offer_response", "offer_id": "off_1", "accepted": True, "id": "act_1"}
        for _ in range(2):
            await ws.send_json(response)
            assert await receive_until(ws, lambda f: f.get("id") == "act_1") == {"type": "ack", "id": "act_1"}
        # A delivery moves the order with it: one that is not this courier's is refused, not recorded.
        await ws.send_json({"type": "delivered", "order_id": "ord_1", "proof": {"code": "4711"}, "id": "act_2"})
        refused = await receive_until(ws, lambda f: f.get("id") == "act_2")
        assert (refused["type"], refused["code"]) == ("error", "resource_missing")
    offers = await outbox_events(db, "courier.offer_response")
    assert len(offers) == 1 and offers[0]["courier_id"] == courier_id and offers[0]["accepted"] is True
    assert await outbox_events(db, "courier.delivered") == []


async def test_going_on_break_leaves_the_index_and_a_silent_courier_goes_stale(
    aiohttp_client, settings, make_courier, redis, db
):
    client = await aiohttp_client(tracking_app(settings, stale_after=1.0))
    index = CourierIndex(redis, settings.redis_prefix, settings.region)
    _courier_id, headers = await make_courier()
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await ws.send_json({"type": "location", **point(1)})
        await wait_acked(ws, 1)
        assert len(await index.search_available(BERLIN[0], BERLIN[1], 500)) == 1
        await ws.send_json({"type": "status", "status": "break", "id": "s1"})
        await receive_until(ws, lambda f: f.get("id") == "s1")
        await ws.send_json({"type": "location", **point(2)})
        await wait_acked(ws, 2)
        assert await index.search_available(BERLIN[0], BERLIN[1], 500) == []
        await ws.send_json({"type": "status", "status": "online"})
        await ws.send_json({"type": "location", **point(3)})
        await wait_acked(ws, 3)
        assert len(await index.search_available(BERLIN[0], BERLIN[1], 500)) == 1
        async with asyncio.timeout(5):  # silent now: the sweeper marks it stale after 1 s
            while await index.search_available(BERLIN[0], BERLIN[1], 500):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    assert await index.available_counts() == {}
    # The sweeper drops the courier from the index before its transaction records the event: wait for it.
    async with asyncio.timeout(5):
        while len(statuses := [e["status"] for e in await outbox_events(db, "courier.status_changed")]) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    assert statuses == ["break", "online", "stale"]


async def test_a_courier_that_stops_answering_pings_is_dropped_and_one_that_answers_is_kept(
    aiohttp_client, settings, make_courier
):
    client = await aiohttp_client(tracking_app(settings, heartbeat=0.2))
    _quiet_id, quiet_headers = await make_courier("Quiet Courier")
    _live_id, live_headers = await make_courier("Live Courier")
    async with client.ws_connect("/v1/courier/ws", headers=quiet_headers, autoping=False) as quiet, \
            client.ws_connect("/v1/courier/ws", headers=live_headers) as live:
        await wait_acked(quiet, 0)
        await wait_acked(live, 0)
        async with asyncio.timeout(3):
            msg = await quiet.receive()
            while msg.type == aiohttp.WSMsgType.TEXT:
                msg = await quiet.receive()
            assert msg.type == aiohttp.WSMsgType.PING  # after 0.2 s of silence, never answered
            msg = await quiet.receive()
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
        await asyncio.sleep(0.6)  # several heartbeat rounds: the one that answers stays
        assert not live.closed
        pong = await client.ws_connect("/v1/courier/ws", headers=live_headers, autoping=False)  # replaces `live`
        await wait_acked(pong, 0)
        await pong.ping(b"hi")
        async with asyncio.timeout(3):  # the server answers the courier's own pings
            msg = await pong.receive()
            while msg.type != aiohttp.WSMsgType.PONG:
                msg = await pong.receive()
        assert msg.data == b"hi"
        await pong.close()


async def test_the_collector_is_tuned_while_the_app_runs_and_restored_after(aiohttp_client, settings):
    import gc

    from fooddispatch.app import GC_THRESHOLDS

    before = gc.get_threshold()
    client = await aiohttp_client(tracking_app(settings))
    assert gc.get_threshold() == GC_THRESHOLDS and gc.get_freeze_count() > 0
    await client.close()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
