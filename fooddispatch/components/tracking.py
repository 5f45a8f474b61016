"""Wires live tracking: the courier and order sockets, the tracking service and its
background tasks (flusher, history writer, sweeper, pub/sub hub, the "tracking" consumer).
The service's two ports into orders (`steps`: a courier's pick-up and delivery move the order;
`orders`: the committed order a just-placed order's watcher is authorized against) are set by
the orders component, which starts after this one (`components/orders.py`, `_serve_tracking`).

`TRACKING_CONFIG` may be set on the app before it starts to override the defaults built
from settings (the ingest benchmark switches Redis writes off that way; tests shorten
timeouts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fooddispatch import auth
from fooddispatch.eventing import start_consumer
from fooddispatch.keys import CLOCK, DB, JOB_LEASES, METRICS, REDIS, SETTINGS
from kernel.http import Principal
from kernel.tasks import BackgroundTasks
from tracking import web as tracking_web
from tracking.consumer import Projection
from tracking.sender import GOING_AWAY
from tracking.service import TrackingConfig, TrackingService
from tracking.watchers import Watchers

TRACKING_CONFIG = web.AppKey("tracking_config", TrackingConfig)


def config_from(app: web.Application) -> TrackingConfig:
    settings = app[SETTINGS]
    return TrackingConfig(
        region=settings.region,
        retention_days=settings.tracking_retention_days,
        stale_after=float(settings.tracking_stale_seconds),
    )


async def _tracking(app: web.Application) -> AsyncIterator[None]:
    config = app.get(TRACKING_CONFIG) or config_from(app)
    identity = app[auth.IDENTITY_SERVICE]

    def authenticate(token: str) -> Principal:
        return identity.tokens.verify(token)

    service = TrackingService(app[DB], app[REDIS], app[SETTINGS].redis_prefix, app[CLOCK], config, authenticate,
                              metrics=app[METRICS], singular=app[JOB_LEASES].singular)
    watchers = service.watchers = Watchers(service)  # the service closes an erased customer's sockets
    app[tracking_web.TRACKING] = service
    app[tracking_web.WATCHERS] = watchers
    metrics = app[METRICS]
    metrics.gauge("tracking_courier_sockets", "Open courier websockets", lambda: len(service.couriers))
    metrics.gauge("tracking_watcher_sockets", "Open order-tracking websockets", lambda: watchers.count)
    metrics.gauge("tracking_points_accepted", "Location points accepted", lambda: service.stats["points_accepted"])
    metrics.gauge("tracking_points_rejected", "Location points rejected", lambda: service.stats["points_rejected"])
    metrics.gauge("tracking_teleports", "Points dropped as impossible moves", lambda: service.stats["teleports"])
    metrics.gauge("tracking_history_backlog", "Points waiting for the history table", lambda: len(service.history))
    await service.start()
    tasks = BackgroundTasks(metrics)
    await start_consumer(app, tasks, "tracking", Projection(service).handlers())
    try:
        yield
    finally:
        await tasks.stop()
        await service.stop()


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, before handlers are cancelled: close every socket with 1001 so clients
    reconnect elsewhere; the final flush of what they sent happens in cleanup."""
    service = app.get(tracking_web.TRACKING)
    if service is None:
        return
    for session in list(service.couriers.values()):
        session.sender.close(GOING_AWAY, "server shutting down")
    app[tracking_web.WATCHERS].close_all(GOING_AWAY, "server shutting down")


def install(app: web.Application) -> None:
    tracking_web.setup(app)
    app.cleanup_ctx.append(_tracking)
    app.on_shutdown.append(_close_sockets)
