"""Wires payments: the vault from `settings.vault_key`, the test-mode processor
behind the resilience wrapper (its records in tables of its own, on a small pool of its
own: see `payments.processor_store`), fraud screening on Redis, and the background
resolver: every round it settles intents left `processing` by a processor outage,
expires wallet credits and voids checkout holds that no order claimed (intents a
checkout left waiting for an order, `awaiting_order`, authorized at least
`settings.payments_unused_hold_seconds` ago); intents created through the API are
never voided."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import structlog
from aiohttp import web

from fooddispatch.app import release_connection
from fooddispatch.keys import CLOCK, DB, REDIS, SETTINGS
from kernel.netguard import TargetPolicy
from kernel.tasks import BackgroundTasks
from kernel.webhook_client import WebhookClient
from payments import reconcile
from payments import web as payments_web
from payments import web_money as payments_web_money
from payments.live import FraudScreen
from payments.processor import CircuitBreaker, ResilientProcessor, TestModeProcessor
from payments.processor_store import PostgresChargeBook
from payments.service import PaymentsService
from payments.vault import Vault
from payments.webhooks import WebhookSender

log = structlog.get_logger("payments")
RESOLVE_EVERY_SECONDS = 10.0
# The test processor's connections: it stands in for a service reached over its own connections,
# and a payments call holding one of the app's connections while it waits for the processor must
# never wait for a second one from the same pool.
PROCESSOR_POOL_SIZE = 4


def install(app: web.Application) -> None:
    payments_web.setup(app)
    app.cleanup_ctx.append(_payments)


async def _payments(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    clock = app[CLOCK]
    if not settings.vault_key:
        raise RuntimeError("payments needs FOODDISPATCH_VAULT_KEY (base64 of 32 bytes)")
    processor_pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=PROCESSOR_POOL_SIZE, command_timeout=5,
        server_settings={"application_name": "fooddispatch-test-processor"}, reset=release_connection)
    processor = ResilientProcessor(TestModeProcessor(PostgresChargeBook(processor_pool),
                                                     today=lambda: clock.now().date()),
                                   CircuitBreaker(clock.monotonic, threshold=5, cooldown=10.0),
                                   timeout=5.0, retries=2, backoff=0.05)
    service = PaymentsService(
        app[DB], vault=Vault(settings.vault_key), processor=processor,
        fraud=FraudScreen(app[REDIS], settings.redis_prefix, clock), clock=clock,
    )
    app[payments_web.PAYMENTS] = service
    webhook_client = WebhookClient(TargetPolicy.from_setting(settings.webhooks_allow_private), timeout_s=5.0)
    app[payments_web_money.WEBHOOK_CLIENT] = webhook_client

    steps: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
        ("processing intents", lambda: service.resolve_processing(older_than_seconds=RESOLVE_EVERY_SECONDS)),
        ("wallet credits", service.wallets.expire_credits),
        ("unused holds", lambda: service.release_unused_holds(settings.payments_unused_hold_seconds)),
    )

    async def resolver() -> None:
        while True:
            await asyncio.sleep(RESOLVE_EVERY_SECONDS)
            for what, step in steps:  # one failing step (a processor outage) does not hold up the others
                try:
                    await step()
                except Exception:
                    log.exception("payments resolver round failed", step=what)

    async def daily_reconciliation() -> None:
        while True:
            try:
                yesterday = clock.now().date() - timedelta(days=1)
                if await reconcile.report(service.pool, yesterday) is None:
                    await reconcile.reconcile(service.pool, service.processor, yesterday)
            except Exception:
                log.exception("payments reconciliation failed")
            await asyncio.sleep(3600)

    tasks = BackgroundTasks()
    tasks.start(resolver(), name="payments-resolver")
    tasks.start(daily_reconciliation(), name="payments-reconciliation")
    tasks.start(WebhookSender(service.pool, webhook_client).run(), name="payments-webhooks")
    try:
        yield
    finally:
        await tasks.stop()
        await webhook_client.close()
        await service.close()
        await processor_pool.close()
