"""The live dispatcher through the whole app: an order accepted (a real outbox event), a courier
online on the real courier socket, an offer on that socket, accept -> `dispatch.assigned`."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dispatch.service import DispatcherConfig
from fooddispatch.app import create_app
from fooddispatch.components.dispatch import DISPATCH_CONFIG
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from kernel.outbox import PointData, announce
from orders.event_types import OrderAccepted
from tracking.service import TrackingConfig

STORE = (52.5200, 13.4050)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    app = create_app(settings)
    app[DISPATCH_CONFIG] = DispatcherConfig(region=settings.region, interval_s=0.2, offer_ttl_s=30.0,
                                            lease_ttl_ms=2000)
    app[TRACKING_CONFIG] = TrackingConfig(region=settings.region, auth_timeout=0.5, sweep_interval=0.2,
                                          history_interval=0.2)
    return app


async def frame_of_type(ws: aiohttp.ClientWebSocketResponse, type_: str) -> dict[str, Any]:
    async with asyncio.timeout(10.0):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, f"socket ended: {msg.type} {msg.data}"
            frame = json.loads(msg.data)
            if frame["type"] == type_:
                return frame


async def events_of(db, type_: str) -> list[dict[str, Any]]:
    async with asyncio.timeout(10.0):
        while True:
            async with db.acquire() as conn:
                rows = await conn.fetch("SELECT payload::text AS p FROM outbox WHERE type = $1 ORDER BY seq", type_)
            if rows:
                return [json.loads(r["p"])["data"] for r in rows]
            await asyncio.sleep(0.05)


async def test_an_accepted_order_reaches_a_courier_socket_as_an_offer_and_accepting_assigns_it(
        client, make_principal, db, settings: Settings) -> None:
    courier, headers = await make_principal("courier", name="Grace Hopper")
    async with client.ws_connect("/v1/courier/ws", headers=headers) as ws:
        await ws.send_json({"type": "location", "lat": STORE[0] + 0.001, "lng": STORE[1], "ts": time.time(),
                            "seq": 1, "accuracy": 8.0, "speed": 3.0, "heading": 0.0})
        now = datetime.now(UTC)
        async with db.acquire() as conn, conn.transaction():
            await announce(conn, OrderAccepted(
                order_id="ord_e2e_1", store_id="sto_e2e", tenant_id="ten_e2e", customer_id="cus_1",
                status="accepted", region=settings.region, pickup=PointData(*STORE),
                dropoff=PointData(STORE[0] + 0.01, STORE[1] + 0.01), placed_at=now, ready_at=now,
                promised_at=now + timedelta(minutes=30), courier_id=None,
            ), "ord_e2e_1")
        offer = await frame_of_type(ws, "offer")
        assert offer["order_ids"] == ["ord_e2e_1"]
        assert offer["pickup"]["store_id"] == "sto_e2e"
        assert [d["order_id"] for d in offer["dropoffs"]] == ["ord_e2e_1"]
        assert offer["payout"]["amount"] > 0 and offer["payout"]["currency"] == "EUR"
        assert datetime.fromisoformat(offer["expires_at"]) > datetime.now(UTC)
        [offered] = await events_of(db, "dispatch.offered")
        assert offered["offer_id"] == offer["offer_id"] and offered["courier_id"] == courier.account_id
        await ws.send_json({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": True, "id": "a1"})
        await frame_of_type(ws, "ack")
        [assigned] = await events_of(db, "dispatch.assigned")
        assert assigned["offer_id"] == offer["offer_id"]
        assert assigned["courier_id"] == courier.account_id and assigned["order_ids"] == ["ord_e2e_1"]
        # Answering the same offer again changes nothing and says why.
        await ws.send_json({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": False})
        error = await frame_of_type(ws, "error")
        assert error["code"] == "offer_expired" and error["offer_id"] == offer["offer_id"]
    stats = await client.get(f"/v1/dispatch/regions/{settings.region}/rounds",
                             headers=(await make_principal("operator"))[1])
    assert stats.status == 200
    body = await stats.json()
    assert body["this_process_leads"] and body["offers_sent"] == 1 and body["offers_accepted"] == 1
