"""The AsyncAPI document (`GET /asyncapi.json`) says what the sockets really exchange: over the real app, a
city's day on every websocket (two couriers, offers, a reassignment, a delivery, the customer's and a tracking
link's views, the tablet feed, the ops console), and every frame the server sent and the client sent is
validated against the schema of its message in the document. A frame whose type the document does not list
for that socket and direction fails the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from dispatch.service import DispatcherConfig
from fooddispatch.app import create_app
from fooddispatch.apps.web import LINK_RECHECK
from fooddispatch.components.dispatch import DISPATCH_CONFIG
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from fooddispatch.openapi import _operations
from tests.e2e.dispatch.test_dispatch_manual_assignment import (
    STORE,
    Courier,
    _accepted_order,
    _city,
    couriers_online,
    eventually,
    ok,
)
from tracking.service import TrackingConfig

Seen = list[tuple[str, str, dict[str, Any]]]  # (channel, "send" | "receive" from the server's side, frame)


@pytest.fixture
def app(settings: Settings) -> web.Application:
    app = create_app(settings)
    app[DISPATCH_CONFIG] = DispatcherConfig(region=settings.region, interval_s=0.2, offer_ttl_s=30.0,
                                            lease_ttl_ms=2000)
    app[TRACKING_CONFIG] = TrackingConfig(region=settings.region, auth_timeout=0.5, sweep_interval=0.2,
                                          history_interval=0.2)
    app[LINK_RECHECK] = 0.2
    return app


class Recorded:
    """A client socket that keeps a copy of every JSON frame sent on it, and of every text frame received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, channel: str, seen: Seen) -> None:
        self.ws, self.channel, self.seen = ws, channel, seen

    async def send_json(self, frame: dict[str, Any]) -> None:
        self.seen.append((self.channel, "receive", frame))
        await self.ws.send_json(frame)

    def __aiter__(self) -> AsyncIterator[aiohttp.WSMessage]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[aiohttp.WSMessage]:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.seen.append((self.channel, "send", json.loads(msg.data)))
            yield msg

    async def close(self) -> bool:
        return await self.ws.close()


@contextlib.asynccontextmanager
async def watching(client: Any, seen: Seen, sockets: list[tuple[str, str, dict[str, str]]]) -> AsyncIterator[None]:
    """Listen on (channel, url, headers) sockets that only receive, recording what they get."""
    async with contextlib.AsyncExitStack() as stack:
        tasks = []
        for channel, url, headers in sockets:
            ws = Recorded(await stack.enter_async_context(client.ws_connect(url, headers=headers)), channel, seen)
            tasks.append(asyncio.create_task(_drain(ws)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


async def _drain(ws: Recorded) -> None:
    async for _msg in ws:
        pass


def two_couriers(client: Any, make_principal: Any, seen: Seen) -> Any:
    """Anna next to the restaurant and Ben farther away, online and streaming fixes, every frame recorded."""
    return couriers_online(client, make_principal, wrap=lambda ws: Recorded(ws, "courier", seen))


def frame_checker(doc: dict[str, Any]) -> Callable[[str, str, dict[str, Any]], None]:
    """Validates one frame against the messages the document lists for its channel and direction."""
    messages = doc["components"]["messages"]

    def check(channel: str, action: str, frame: dict[str, Any]) -> None:
        operation = doc["operations"].get(f"{channel}_{action}", {"messages": []})
        ids = [m["$ref"].rsplit("/", 1)[-1] for m in operation["messages"]]
        candidates = [i for i in ids if messages[i]["name"] == frame.get("type")]
        assert candidates, f"{channel}: a {action} frame of type {frame.get('type')!r} is not in /asyncapi.json"
        if frame["type"] == "error" and ("id" not in frame or "offer_id" in frame):  # a frame refused, not an action
            documented = {c["code"] for c in doc["channels"][channel].get("x-error-codes", [])}
            assert frame["code"] in documented, f"{channel}: error code {frame['code']!r} is not in /asyncapi.json"
        errors = []
        for message_id in candidates:
            schema = {"$ref": messages[message_id]["payload"]["$ref"], "components": doc["components"]}
            problems = list(jsonschema.Draft202012Validator(schema).iter_errors(frame))
            if not problems:
                return
            errors += [f"{message_id}: {p.message}" for p in problems]
        raise AssertionError(f"{channel}: {frame} matches no message of /asyncapi.json: {errors}")

    return check


async def test_every_websocket_route_is_a_channel_of_the_asyncapi_document(client, app) -> None:
    doc = await ok(await client.get("/asyncapi.json"))
    assert doc["asyncapi"] == "3.0.0"
    sockets = {path for path, _method, spec, _h in _operations(app) if spec is not None and spec.websocket}
    assert sockets and sockets == {channel["address"] for channel in doc["channels"].values()}
    for channel in doc["channels"].values():
        assert channel["x-close-codes"] and all(c["reason"] for c in channel["x-close-codes"])
    docs = await (await client.get("/docs")).text()
    assert "/asyncapi.json" in docs


async def test_the_frames_the_sockets_exchange_validate_against_the_asyncapi_document(
        client, make_principal) -> None:
    check = frame_checker(await ok(await client.get("/asyncapi.json")))
    seen: Seen = []
    city = await _city(client, make_principal)
    operator = city["operator"]
    async with two_couriers(client, make_principal, seen) as (anna, ben), \
            watching(client, seen, [("ops_console", "/v1/ops/ws", operator),
                                    ("store_orders_feed", f"/v1/stores/{city['store']}/orders/feed", city["staff"])]):
        first = await _accepted_order(client, city, "f1")
        link = await ok(await client.post(f"/v1/orders/{first}/tracking_links", headers=city["buyer"]), 201)
        async with watching(client, seen, [("order_tracking", f"/v1/orders/{first}/track", city["buyer"]),
                                           ("tracking_link", f"/v1/orders/{first}/tracking/ws?token={link['token']}",
                                            {})]):
            offer = await anna.frame(lambda f: f["type"] == "offer" and first in f["order_ids"])
            await anna.action({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": True, "id": "y"})
            await eventually(lambda: _has(seen, "tracking_link", "courier_position"))
            await eventually(lambda: _has(seen, "order_tracking", "courier_position"))
            await anna.action({"type": "arrived", "order_id": first, "where": "pickup", "id": "at"})
            await anna.action({"type": "picked_up", "order_id": first, "id": "up"})
            await anna.action({"type": "delivered", "order_id": first, "proof": {"code": "1234"}, "id": "done"})
            await anna.action({"type": "picked_up", "order_id": "ord_nothing", "id": "nope"})  # an error frame
            await anna.ws.send_json({"type": "location", "points": [
                {"lat": STORE[0], "lng": STORE[1], "ts": 1.0, "seq": 10_000}]})  # a replayed buffer
        await _reassign(client, operator, anna, ben, await _accepted_order(client, city, "f2"))
        await ok(await client.post(f"/v1/couriers/{ben.id}/offline", json={},
                                   headers={**operator, "Idempotency-Key": "off"}))
        await ben.frame(lambda f: f["type"] == "status" and f.get("by") == "operator")
        await eventually(lambda: _has(seen, "store_orders_feed", "order"))
        await eventually(lambda: _has(seen, "ops_console", "snapshot"))
    for channel, action, frame in seen:
        check(channel, action, frame)
    kinds = {(channel, action, frame["type"]) for channel, action, frame in seen}
    assert {("courier", "send", t) for t in ("ack", "error", "offer", "offer_cancelled", "assigned", "unassigned",
                                            "status")} <= kinds, kinds
    assert {("courier", "receive", t) for t in ("hello", "location", "status", "offer_response", "arrived",
                                               "picked_up", "delivered")} <= kinds, kinds
    assert {("store_orders_feed", "send", "hello"), ("order_tracking", "send", "status"),
            ("tracking_link", "send", "status")} <= kinds, kinds


async def _reassign(client: Any, operator: dict[str, str], anna: Courier, ben: Courier, order_id: str) -> None:
    """The order is offered to one courier; the operator gives it to the other (offer withdrawn, `assigned`),
    the late answer is refused by dispatch (`error`), then it goes back by hand (`unassigned`)."""
    offered = await eventually(lambda: _offered(order_id, anna, ben))
    other = ben if offered is anna else anna
    offer = await offered.frame(lambda f: f["type"] == "offer" and order_id in f["order_ids"])
    await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": other.id}, headers=operator))
    await offered.frame(lambda f: f["type"] == "offer_cancelled" and f["offer_id"] == offer["offer_id"])
    await other.frame(lambda f: f["type"] == "assigned" and f["order_id"] == order_id)
    await offered.action({"type": "offer_response", "offer_id": offer["offer_id"], "accepted": True, "id": "late"})
    await offered.frame(lambda f: f["type"] == "error" and f.get("offer_id") == offer["offer_id"])
    await ok(await client.post(f"/v1/orders/{order_id}/courier", json={"courier_id": offered.id}, headers=operator))
    await other.frame(lambda f: f["type"] == "unassigned" and f["order_id"] == order_id)


async def _offered(order_id: str, *riders: Courier) -> Courier | None:
    return next((r for r in riders if any(f["type"] == "offer" and order_id in f["order_ids"] for f in r.frames)),
                None)


async def _has(seen: Seen, channel: str, kind: str) -> bool:
    return any(c == channel and a == "send" and f.get("type") == kind for c, a, f in seen)


async def _closed(ws: aiohttp.ClientWebSocketResponse, seen: list[dict[str, Any]]) -> tuple[int, str]:
    """Read until the server closes the socket: its close code and reason; the frames before are kept."""
    while (msg := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        seen.append(json.loads(msg.data))
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    return int(msg.data), str(msg.extra or "")


async def test_the_sockets_refuse_frames_and_close_only_as_the_asyncapi_document_says(client, make_principal) -> None:
    doc = await ok(await client.get("/asyncapi.json"))
    check = frame_checker(doc)
    documented = {ch["address"]: {c["code"] for c in ch["x-close-codes"]} for ch in doc["channels"].values()}
    closes: list[tuple[str, int, str]] = []
    frames: list[dict[str, Any]] = []
    _, courier = await make_principal("courier", name="Dana D.")
    _, customer = await make_principal("customer")
    ws = await client.ws_connect("/v1/courier/ws")  # no credentials: the first frame must be a hello with a token
    await ws.send_json({"type": "status", "status": "online"})
    closes.append(("/v1/courier/ws", *await _closed(ws, frames)))
    ws = await client.ws_connect("/v1/courier/ws")  # a customer's token in the hello: not a courier
    await ws.send_json({"type": "hello", "token": customer["Authorization"].removeprefix("Bearer ")})
    closes.append(("/v1/courier/ws", *await _closed(ws, frames)))
    first = await client.ws_connect("/v1/courier/ws", headers=courier)
    await first.send_json({"type": "status", "status": "online", "id": "on"})
    assert (await first.receive_json(timeout=10))["type"] == "ack"
    second = await client.ws_connect("/v1/courier/ws", headers=courier)  # replaces the first
    closes.append(("/v1/courier/ws", *await _closed(first, frames)))
    for garbage in ("not json", '{"type": "teleport"}', '{"type": "location", "lat": 52.5}',
                    '{"type": "status", "status": "asleep"}', "[1, 2"):  # malformed frames in a row: closed
        await second.send_str(garbage)
    closes.append(("/v1/courier/ws", *await _closed(second, frames)))
    third = await client.ws_connect("/v1/courier/ws", headers=courier)
    await third.send_str("x" * 70_000)  # over the frame size limit
    closes.append(("/v1/courier/ws", *await _closed(third, frames)))
    city = await _city(client, make_principal)
    order_id = await _accepted_order(client, city, "gone")
    link = await ok(await client.post(f"/v1/orders/{order_id}/tracking_links", headers=city["buyer"]), 201)
    page = await client.ws_connect(f"/v1/orders/{order_id}/tracking/ws?token={link['token']}")
    revoked = await client.delete(f"/v1/orders/{order_id}/tracking_links/{link['id']}", headers=city["buyer"])
    assert revoked.status == 204
    closes.append(("/v1/orders/{order_id}/tracking/ws", *await _closed(page, [])))
    assert [code for _a, code, _r in closes] == [4401, 4403, 4409, 1008, 1009, 4410], closes
    for address, code, reason in closes:
        assert code in documented[address], (address, code, reason)
        assert reason or code == 1009, (address, code)  # aiohttp's own size close carries no reason
    refused = [f for f in frames if f["type"] == "error"]
    assert {f["code"] for f in refused} == {"malformed_frame", "invalid_frame"}, frames
    for frame in frames:
        check("courier", "send", frame)
