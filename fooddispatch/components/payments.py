"""Wires payments: the vault from `settings.vault_key`, the test-mode processor
behind the resilience wrapper (its records in tables of its own, on a small pool of its
own: see `payments.processor_store`), fraud screening on Redis, the webhook sender, and
recurring jobs (`kernel.tasks.every`): every 10 s one settles intents left `processing`
by a processor outage, one expires wallet credits and one voids checkout holds that no
order claimed (intents a
checkout left waiting for an order, `awaiting_order`, authorized at least
`settings.payments_unused_hold_seconds` ago); intents created through the API are
never voided; hourly, yesterday's reconciliation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
from aiohttp import web

from fooddispatch import openapi
from fooddispatch.database import release_connection
from fooddispatch.keys import CLOCK, DB, JOB_LEASES, METRICS, REDIS, SETTINGS
from kernel.netguard import TargetPolicy
from kernel.tasks import BackgroundTasks
from kernel.webhook_client import WebhookClient
from payments import reconcile
from payments import web as payments_web
from payments import web_merchant as payments_web_merchant
from payments import web_money as payments_web_money
from payments.live import FraudScreen
from payments.merchant import MerchantMoneyPolicy
from payments.processor import CircuitBreaker, ResilientProcessor, TestModeProcessor
from payments.processor_store import PostgresChargeBook
from payments.service import PaymentsService
from payments.testcards import describe_test_mode
from payments.vault import Vault
from payments.webhooks import WebhookSender

RESOLVE_EVERY_SECONDS = 10.0
# The test processor's connections: it stands in for a service reached over its own connections,
# and a payments call holding one of the app's connections while it waits for the processor must
# never wait for a second one from the same pool.
PROCESSOR_POOL_SIZE = 4


def install(app: web.Application) -> None:
    payments_web.setup(app)
    # The test cards and scenarios, from the tables the processor and the fraud screen run on.
    openapi.describe_tag(app, "payments", describe_test_mode())
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
    merchant_policy = MerchantMoneyPolicy(
        pending_hours=settings.merchant_pending_hours, refund_reserve_bps=settings.merchant_refund_reserve_bps,
        refund_window_days=settings.merchant_refund_max_age_days)
    app[payments_web_merchant.MERCHANT_POLICY] = merchant_policy
    webhook_client = WebhookClient(TargetPolicy.from_setting(settings.webhooks_allow_private), timeout_s=5.0)
    app[payments_web_money.WEBHOOK_CLIENT] = webhook_client

    resolve_every = RESOLVE_EVERY_SECONDS
    # Four jobs, so that one failing (a processor outage) does not hold up the others.
    steps: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
        ("payments-processing-intents", lambda: service.resolve_processing(older_than_seconds=resolve_every)),
        ("payments-wallet-credits", service.wallets.expire_credits),
        ("payments-unused-holds", lambda: service.release_unused_holds(settings.payments_unused_hold_seconds)),
        ("payments-merchant-payouts", lambda: service.merchant_payouts.run_due(merchant_policy)),
    )

    async def daily_reconciliation() -> None:
        yesterday = clock.now().date() - timedelta(days=1)
        if await reconcile.report(service.pool, yesterday) is None:
            await reconcile.reconcile(service.pool, service.processor, yesterday)

    tasks = BackgroundTasks(app[METRICS])
    once = app[JOB_LEASES].singular  # one process at a time (kernel/leases.py); webhooks: row locks
    for name, step in steps:
        tasks.every(name, resolve_every, once(name, resolve_every, step), first_delay=resolve_every)
    tasks.every("payments-reconciliation", 3600.0, once("payments-reconciliation", 3600.0, daily_reconciliation))
    sender = WebhookSender(service.pool, webhook_client)
    tasks.supervise("payments-webhooks", lambda: sender.run(tasks.metrics))
    try:
        yield
    finally:
        await tasks.stop()
        await webhook_client.close()
        await service.close()
        await processor_pool.close()
