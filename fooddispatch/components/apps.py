"""Wires the apps: the pages and their shared assets, tracking links (orders), the tracking view that joins
orders, catalog and tracking, and courier tracker devices (tracking's `/osmand` and device keys). It starts
after the packages whose services it uses; without orders or tracking their parts are left out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fooddispatch.apps import web as apps_web
from fooddispatch.keys import SETTINGS
from orders import link_web
from orders import web as orders_web
from orders.links import TrackingLinks
from orders.tracking_link import LinkSigner
from tracking import device_web
from tracking import web as tracking_web
from tracking.devices import DeviceIngest, DeviceKeys


async def _apps(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[apps_web.NAMES] = apps_web.Names(app)
    orders = app.get(orders_web.ORDERS)
    if orders is not None:
        app[link_web.TRACKING_LINKS] = TrackingLinks(orders.queries, orders.pool, orders.clock,
                                                     LinkSigner(settings.tracking_link_secret),
                                                     settings.tracking_link_ttl_seconds)
    tracking = app.get(tracking_web.TRACKING)
    if tracking is not None:
        app[device_web.DEVICE_KEYS] = DeviceKeys(tracking)
        app[device_web.DEVICE_INGEST] = DeviceIngest(tracking)
    yield


def install(app: web.Application) -> None:
    apps_web.setup(app)
    link_web.setup(app)
    device_web.setup(app)
    app.cleanup_ctx.append(_apps)
