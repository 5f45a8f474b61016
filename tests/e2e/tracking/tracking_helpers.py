"""Helpers for the live tracking e2e tests: an app with short tracking timeouts, points,
and reading frames until one matches."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.components.tracking import TRACKING_CONFIG
from fooddispatch.config import Settings
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
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.ERROR):
                return ws.close_code
