"""Wires memberships: its routes, the service with payments behind its billing port, and the renewal job
(`MembershipsService.run_due`) every few seconds in every process: it claims each due subscription
`FOR UPDATE SKIP LOCKED`, so the processes share the work and each subscription is renewed once."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fooddispatch.keys import CLOCK, DB, METRICS
from kernel.tasks import BackgroundTasks
from memberships import web as memberships_web
from memberships.service import MembershipsService
from payments import web as payments_web

RENEW_EVERY_S = 5.0
RENEW_BATCH = 50


def install(app: web.Application) -> None:
    memberships_web.setup(app)
    app.cleanup_ctx.append(_memberships)


async def _memberships(app: web.Application) -> AsyncIterator[None]:
    service = MembershipsService(app[DB], app[CLOCK], app[payments_web.PAYMENTS])
    app[memberships_web.MEMBERSHIPS] = service
    tasks = BackgroundTasks(app[METRICS])
    tasks.every("memberships-renewals", RENEW_EVERY_S, lambda: service.run_due(RENEW_BATCH),
                busy=lambda done: done >= RENEW_BATCH, first_delay=RENEW_EVERY_S)
    try:
        yield
    finally:
        await tasks.stop()
