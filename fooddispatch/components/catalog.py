"""Wires the catalog: its routes, its service, and the loop that ends timed pauses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import structlog
from aiohttp import web

from catalog import web as catalog_web
from catalog.service import CatalogService
from fooddispatch.keys import CLOCK, DB, METRICS, SETTINGS
from kernel.tasks import BackgroundTasks

log = structlog.get_logger("fooddispatch.catalog")
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

    async def reopen_paused() -> None:
        while True:
            await asyncio.sleep(REOPEN_EVERY_S)
            try:
                await service.merchant.reopen_expired_pauses()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("reopening paused stores failed", error=str(exc))

    tasks = BackgroundTasks()
    tasks.start(reopen_paused(), name="catalog-reopen")
    try:
        yield
    finally:
        await tasks.stop()
