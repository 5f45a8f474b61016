"""Wires orders: its routes, the service with the real catalog and payments behind the
orders ports, and three background tasks: the accept-window sweeper, the merchant webhook
worker, and the "orders" consumer of the event stream (courier and dispatch events in,
webhook enqueue and tablet fan-out out). Surge comes from dispatch's `SurgeReader`: the level
dispatch publishes for the pickup's H3 cell (1 where none is published)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from catalog import web as catalog_web
from catalog.messages import PauseIn
from dispatch import SurgeReader
from fooddispatch.eventing import start_consumer
from fooddispatch.keys import CLOCK, DB, METRICS, REDIS, SETTINGS
from kernel.http import OPERATOR, Principal
from kernel.tasks import BackgroundTasks
from orders import web as orders_web
from orders.events import OrderEvents
from orders.lifecycle import OrderLifecycle
from orders.service import OrdersService
from orders.webhooks import Webhooks
from payments import web as payments_web
from payments.model import Split

SWEEP_EVERY_S = 1.0
SYSTEM_OPERATOR = Principal("system:orders", OPERATOR, name="orders auto-pause")


def install(app: web.Application) -> None:
    orders_web.setup(app)
    app.cleanup_ctx.append(_orders)


async def _orders(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    catalog = app[catalog_web.CATALOG]
    # The levels dispatch publishes. 200 ms, not the reader's 50 ms default: a quote waits that long for
    # the surge rather than price a busy area at 1 whenever the loop is briefly late (checkout reuses the
    # quoted level and does not read it).
    surge = SurgeReader(app[REDIS], settings.redis_prefix, settings.region, timeout_s=0.2)
    service = OrdersService(app[DB], app[CLOCK], catalog, app[payments_web.PAYMENTS], Split, surge=surge)

    async def pause_store(store_id: str, reason: str) -> None:
        await catalog.merchant.pause(SYSTEM_OPERATOR, store_id, PauseIn(reason=reason))

    lifecycle = OrderLifecycle(service, pause_store=pause_store)
    webhooks = Webhooks(app[DB], app[CLOCK])
    app[orders_web.ORDERS] = service
    app[orders_web.LIFECYCLE] = lifecycle
    app[orders_web.WEBHOOKS] = webhooks
    app[orders_web.FEED] = orders_web.Feed(app[REDIS], settings.redis_prefix)
    app[METRICS].gauge("orders_components_up", "1 while the orders component runs", lambda: 1.0)
    tasks = BackgroundTasks(app[METRICS])
    tasks.every("orders-expiry", SWEEP_EVERY_S, lifecycle.expire_overdue)
    tasks.supervise("orders-webhooks", lambda: webhooks.run(tasks.metrics))
    await start_consumer(app, tasks, "orders",
                         OrderEvents(lifecycle, webhooks, app[REDIS], settings.redis_prefix).handlers())
    try:
        yield
    finally:
        await tasks.stop()
        await webhooks.close()
