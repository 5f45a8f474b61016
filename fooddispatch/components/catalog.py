"""Wires the catalog: its routes, its service, and the loop that ends timed pauses."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from catalog import web as catalog_web
from catalog.service import CatalogService
from fooddispatch.keys import CLOCK, DB, JOB_LEASES, METRICS, SETTINGS
from kernel.tasks import BackgroundTasks

REOPEN_EVERY_S = 15.0


def install(app: web.Application) -> None:
    catalog_web.setup(app)
    app.cleanup_ctx.append(_catalog)


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    service = CatalogService(app[DB], app[CLOCK], default_region=settings.region)
    app[catalog_web.CATALOG] = service
    app[METRICS].gauge("catalog_cached_store_rules", "Stores whose parsed rules are cached",
                       lambda: len(service.rules))

    tasks = BackgroundTasks(app[METRICS])
    reopen = app[JOB_LEASES].singular("catalog-reopen", REOPEN_EVERY_S, service.merchant.reopen_expired_pauses)
    tasks.every("catalog-reopen", REOPEN_EVERY_S, reopen, first_delay=REOPEN_EVERY_S)
    try:
        yield
    finally:
        await tasks.stop()
