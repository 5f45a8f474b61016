"""Wires orders: its routes, the service with the real catalog and payments behind the
orders ports, and three background tasks: the accept-window sweeper, the merchant webhook
worker, and the "orders" consumer of the event stream (courier and dispatch events in,
webhook enqueue and tablet fan-out out). Surge comes from dispatch's `SurgeReader`: the level
dispatch publishes for the pickup's H3 cell (1 where none is published). Orders also serves
tracking's two ports (`_serve_tracking`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from catalog import web as catalog_web
from catalog.messages import PauseIn
from dispatch import SurgeReader
from fooddispatch.eventing import start_consumer
from fooddispatch.keys import CLOCK, DB, JOB_LEASES, METRICS, REDIS, SETTINGS
from kernel.clientip import parse_networks
from kernel.http import OPERATOR, Principal
from kernel.netguard import TargetPolicy
from kernel.tasks import BackgroundTasks
from kernel.webhook_client import WebhookClient
from memberships import web as memberships_web
from orders import events_web
from orders import web as orders_web
from orders.events import OrderEvents
from orders.merchant_events import MerchantEvents
from orders.merchant_refunds import RefundLimits
from orders.model import Action, Actor, Caller
from orders.pricing import FeePolicy, MemberBenefit
from orders.service import OrdersConfig, OrdersService
from orders.webhooks import Webhooks
from payments import web as payments_web
from payments.model import Split
from tracking import web as tracking_web
from tracking.service import TrackedOrder

SWEEP_EVERY_S = 1.0
# The collection sweep: delivered orders whose money payments could not collect yet (orders.money).
COLLECT_EVERY_S = 5.0
# The events API keeps 30 days (orders.merchant_events): older events are deleted about hourly.
EVENT_RETENTION_EVERY_S = 3600.0
SYSTEM_OPERATOR = Principal("system:orders", OPERATOR, name="orders auto-pause")


def install(app: web.Application) -> None:
    orders_web.setup(app)
    events_web.setup(app)
    app.cleanup_ctx.append(_orders)


def _serve_tracking(app: web.Application, service: OrdersService) -> None:
    """Tracking's two ports into orders (it starts first; the two never import each other): a
    courier's pick-up or delivery from its socket moves the order in the transaction that records
    it (an impossible step is refused, not acked), and a watcher of an order the projection has not
    seen yet (just placed) is authorized against the committed order."""
    tracking = app.get(tracking_web.TRACKING)
    if tracking is None:
        return
    actions = {"picked_up": Action.PICK_UP, "delivered": Action.DELIVER}

    async def courier_step(conn: asyncpg.Connection, *, courier_id: str, order_id: str, step: str,
                           proof: dict[str, Any] | None) -> None:
        await service.lifecycle.act(order_id, Caller(Actor.COURIER, courier_id), actions[step], proof=proof,
                                    reason=f"courier.{step}", conn=conn)

    async def placed_order(order_id: str) -> TrackedOrder | None:
        o = await service.queries.parties(order_id)
        return None if o is None else TrackedOrder(o.order_id, o.customer_id, o.tenant_id, o.region, o.status,
                                                   o.courier_id, 0, o.at, o.store_id)

    tracking.steps = courier_step
    tracking.orders = placed_order


class _MemberBenefits:
    """Orders' `Memberships` port on memberships' service, when the app runs it (else nobody is a member)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def benefit(self, conn: asyncpg.Connection, customer_id: str, region: str,
                      currency: str) -> MemberBenefit | None:
        service = self.app.get(memberships_web.MEMBERSHIPS)
        found = None if service is None else await service.benefits(conn, customer_id, region, currency)
        return None if found is None else MemberBenefit(found.free_delivery_min_subtotal,
                                                        found.service_fee_discount_bps)


async def _orders(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    catalog = app[catalog_web.CATALOG]
    # The levels dispatch publishes. 200 ms, not the reader's 50 ms default: a quote waits that long for
    # the surge rather than price a busy area at 1 whenever the loop is briefly late (checkout reuses the
    # quoted level and does not read it).
    surge = SurgeReader(app[REDIS], settings.redis_prefix, settings.region, timeout_s=0.2)

    async def pause_store(store_id: str, reason: str) -> None:
        await catalog.merchant.pause(SYSTEM_OPERATOR, store_id, PauseIn(reason=reason))

    service = OrdersService(app[DB], app[CLOCK], catalog, app[payments_web.PAYMENTS], Split, surge=surge,
                            config=OrdersConfig(trusted_proxies=parse_networks(settings.trusted_proxies),
                                                policy=FeePolicy(
                                                    commission_bps=settings.merchant_commission_bps,
                                                    commission_overrides=settings.merchant_commission_overrides),
                                                refund_limits=RefundLimits(
                                                    max_share_bps=settings.merchant_refund_max_share_bps,
                                                    max_age_days=settings.merchant_refund_max_age_days,
                                                    per_tenant=settings.merchant_refund_limit_overrides)),
                            pause_store=pause_store, memberships=_MemberBenefits(app))
    lifecycle = service.lifecycle
    _serve_tracking(app, service)
    webhooks = Webhooks(app[DB], app[CLOCK],
                        client=WebhookClient(TargetPolicy.from_setting(settings.webhooks_allow_private)))
    app[orders_web.ORDERS] = service
    app[orders_web.WEBHOOKS] = webhooks
    app[orders_web.FEED] = orders_web.Feed(app[REDIS], settings.redis_prefix)
    merchant_events = app[events_web.EVENTS] = MerchantEvents(app[DB], app[CLOCK])
    app[METRICS].gauge("orders_components_up", "1 while the orders component runs", lambda: 1.0)
    tasks = BackgroundTasks(app[METRICS])
    # The sweep runs in one process at a time; collections and webhook deliveries are partitioned among
    # processes by their rows' locks (FOR UPDATE SKIP LOCKED), so they run everywhere.
    tasks.every("orders-expiry", SWEEP_EVERY_S,
                app[JOB_LEASES].singular("orders-expiry", SWEEP_EVERY_S, lifecycle.expire_overdue))
    tasks.every("orders-collections", COLLECT_EVERY_S, lifecycle.money.collect_due)
    tasks.every("orders-event-retention", EVENT_RETENTION_EVERY_S, app[JOB_LEASES].singular(
        "orders-event-retention", EVENT_RETENTION_EVERY_S, merchant_events.purge_expired))
    tasks.supervise("orders-webhooks", lambda: webhooks.run(tasks.metrics))
    await start_consumer(app, tasks, "orders",
                         OrderEvents(lifecycle, webhooks, app[REDIS], settings.redis_prefix).handlers())
    try:
        yield
    finally:
        await tasks.stop()
        await webhooks.close()
