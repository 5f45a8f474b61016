"""Helpers for the live tracking e2e tests: an app with short tracking timeouts, points,
and reading frames until one matches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from dispatch.event_types import DispatchAssigned
from fooddispatch.app import create_app
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
from kernel.outbox import EventData, MoneyData, PointData, announce
from orders.event_types import OrderAccepted, OrderPlaced
from tracking.service import TrackingConfig

BERLIN = (52.5200, 13.4050)


def fast_config(settings: Settings, **changes: Any) -> TrackingConfig:
    values: dict[str, Any] = {"region": settings.region, "auth_timeout": 0.5, "sweep_interval": 0.2,
                              "history_interval": 0.2}
    values.update(changes)
    return TrackingConfig(**values)


def tracking_app(settings: Settings, **changes: Any) -> web.Application:
    app = create_app(settings)
    app[TRACKING_CONFIG] = fast_config(settings, **changes)
    return app


def point(seq: int, lat: float = BERLIN[0], lng: float = BERLIN[1], *, ts: float | None = None,
          accuracy: float = 8.0) -> dict[str, Any]:
    return {"lat": lat, "lng": lng, "ts": time.time() if ts is None else ts, "seq": seq, "accuracy": accuracy,
            "speed": 4.0, "heading": 90.0}


async def receive_until(ws: aiohttp.ClientWebSocketResponse, match: Callable[[dict], bool],
                        within: float = 5.0) -> dict:
    """Read frames until one matches; fails on close or timeout."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended before the expected frame: {msg.type} {msg.data} {msg.extra}")
            frame = json.loads(msg.data)
            if match(frame):
                return frame


async def wait_acked(ws: aiohttp.ClientWebSocketResponse, seq: int, within: float = 5.0) -> dict:
    def is_ack(frame: dict) -> bool:
        return frame["type"] == "ack" and frame.get("seq") is not None and frame["seq"] >= seq

    return await receive_until(ws, is_ack, within)


async def closed_with(ws: aiohttp.ClientWebSocketResponse, within: float = 5.0) -> int | None:
    """Read until the socket closes; returns the close code."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return int(msg.data)  # the code the server sent (close_code may say 1006 after it)
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return ws.close_code


async def emit(db: Any, payload: EventData, aggregate_id: str | None = None) -> None:
    """Write an event through the real outbox; the relay and the tracking consumer do the rest."""
    async with db.acquire() as conn, conn.transaction():
        await announce(conn, payload, aggregate_id)


AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _order(order_id: str, customer_id: str, tenant_id: str, region: str, pickup: tuple[float, float],
           dropoff: tuple[float, float]) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": customer_id, "store_id": "sto_1", "tenant_id": tenant_id,
            "region": region, "pickup": PointData(*pickup), "dropoff": PointData(*dropoff)}


def order_placed(order_id: str, customer_id: str, tenant_id: str = "ten_1", region: str = "demo",
                 pickup: tuple[float, float] = (52.5300, 13.4050),
                 dropoff: tuple[float, float] = (52.5100, 13.4050)) -> OrderPlaced:
    return OrderPlaced(**_order(order_id, customer_id, tenant_id, region, pickup, dropoff), status="placed",
                       total=MoneyData(1500, "EUR"), placed_at=AT, accept_by=AT + timedelta(minutes=5),
                       promised_at=AT + timedelta(minutes=40), scheduled_for=None, lines=[])


def order_accepted(order_id: str, customer_id: str, tenant_id: str = "ten_1", region: str = "demo",
                   pickup: tuple[float, float] = (52.5300, 13.4050),
                   dropoff: tuple[float, float] = (52.5100, 13.4050)) -> OrderAccepted:
    return OrderAccepted(**_order(order_id, customer_id, tenant_id, region, pickup, dropoff), status="accepted",
                         placed_at=AT, ready_at=AT + timedelta(minutes=15), promised_at=AT + timedelta(minutes=40),
                         courier_id=None)


def courier_assigned(offer_id: str, courier_id: str, order_id: str) -> DispatchAssigned:
    return DispatchAssigned(offer_id=offer_id, courier_id=courier_id, order_ids=(order_id,),
                            at=AT + timedelta(minutes=5))


async def open_track(client: Any, order_id: str, headers: dict[str, str],
                     within: float = 5.0) -> aiohttp.ClientWebSocketResponse:
    """Open the tracking socket once the consumer has projected the order (404 until then)."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await client.ws_connect(f"/v1/orders/{order_id}/track", headers=headers)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status != 404:
                    raise
            await asyncio.sleep(0.05)


class Collector:
    """Reads a socket in the background and keeps every JSON frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.closed: asyncio.Event = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(msg.data))
        self.closed.set()

    async def wait_for(self, match: Callable[[dict], bool], within: float = 5.0) -> dict:
        async with asyncio.timeout(within):
            while True:
                for frame in self.frames:
                    if match(frame):
                        return frame
                await asyncio.sleep(0.02)

    def positions(self) -> list[dict]:
        return [f for f in self.frames if f["type"] == "courier_position"]

    async def stop(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
