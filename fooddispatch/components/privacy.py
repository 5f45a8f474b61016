"""Wires privacy (docs/PRIVACY.md): the export, erasure and access-log routes, the log of operators'
reads of a person (`fooddispatch.privacy.reads`), and two recurring jobs: retention (one process at a time,
under a job lease) and, in every process, the refresh of revoked tokens (erased accounts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from fooddispatch import auth
from fooddispatch.keys import CLOCK, DB, JOB_LEASES, METRICS, SETTINGS
from fooddispatch.privacy import reads
from fooddispatch.privacy import web as privacy_web
from fooddispatch.privacy.service import PrivacyService, Retention
from kernel.tasks import BackgroundTasks
from tracking import web as tracking_web

RETENTION_EVERY_S = 3600.0
REVOKED_EVERY_S = 5.0


def retention_from(app: web.Application) -> Retention:
    settings = app[SETTINGS]
    return Retention(location_history=timedelta(days=settings.tracking_retention_days),
                     idempotency=timedelta(hours=settings.idempotency_retention_hours),
                     webhook_deliveries=timedelta(days=settings.webhook_retention_days))


async def _privacy(app: web.Application) -> AsyncIterator[None]:
    identity = app[auth.IDENTITY_SERVICE]
    tracking = app.get(tracking_web.TRACKING)
    service = app[privacy_web.PRIVACY] = PrivacyService(
        app[DB], app[CLOCK], identity, retention=retention_from(app),
        forget_courier=None if tracking is None else tracking.forget_courier,
        forget_customer=None if tracking is None else tracking.forget_customer)
    tasks = BackgroundTasks(app[METRICS])
    tasks.every("privacy-retention", RETENTION_EVERY_S, app[JOB_LEASES].singular(
        "privacy-retention", RETENTION_EVERY_S, service.purge_expired), first_delay=60.0)
    tasks.every("token-revocations", REVOKED_EVERY_S, identity.refresh_revoked)
    try:
        yield
    finally:
        await tasks.stop()


def install(app: web.Application) -> None:
    privacy_web.setup(app)
    reads.setup(app)
    app.cleanup_ctx.append(_privacy)
