"""Wires the operations console: its routes and the live feed (started with the app, stopped
before the pools close)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fooddispatch.keys import EVENT_STREAM, METRICS, REDIS, SETTINGS
from fooddispatch.ops import web as ops_web
from fooddispatch.ops.feed import OpsFeed


async def _feed(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    feed = OpsFeed(app[REDIS], app[EVENT_STREAM], settings.redis_prefix, settings.region)
    feed.projection.time_scale = settings.ops_time_scale
    app[ops_web.OPS_FEED] = feed
    feed.start(app[METRICS])
    try:
        yield
    finally:
        await feed.stop()


def install(app: web.Application) -> None:
    ops_web.setup(app)
    app.cleanup_ctx.append(_feed)
