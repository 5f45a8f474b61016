"""Event delivery in the app: each component's stream consumer, the relay with its recurring jobs, and
the figures /metrics and /readyz show. The design is in `kernel.eventbus`.

Metrics (per consumer group of this app's stream, refreshed every 2 s):
- `event_consumer_lag{group}`: events the group must see and has not processed yet (from PostgreSQL:
  outbox rows not settled, of a type the group handles, without its processed or parked record);
- `event_consumer_pending{group}`: entries delivered to the group and not acknowledged (Redis);
- `event_dead_letters{group}`: events parked for the group, waiting for an operator;
- `outbox_lag_events`: outbox rows not yet published; `outbox_republished_events`: events this
  process's relay published again after a loss or when overdue.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError, ResponseError

from fooddispatch.idempotency import purge_expired
from fooddispatch.instance import consumer_name, instance_of
from fooddispatch.keys import CONSUMERS, DB, EVENT_STREAM, JOB_LEASES, LIVENESS, METRICS, REDIS, SETTINGS
from fooddispatch.liveness import gone_instances
from kernel import eventstore
from kernel.eventbus import EventHandler, OutboxRelay, StreamConsumer
from kernel.tasks import BackgroundTasks

STATS_EVERY_S = 2.0


@dataclass
class EventStats:
    lags: dict[str, float] = field(default_factory=dict)
    parked: dict[str, float] = field(default_factory=dict)
    pending: dict[str, float] = field(default_factory=dict)
    unpublished: int = 0
    republished: int = 0


EVENT_STATS = web.AppKey("event_stats", EventStats)


def setup(app: web.Application) -> None:
    """Before the app starts: the consumer list and the metrics read from the stats."""
    app[CONSUMERS] = []
    stats = app[EVENT_STATS] = EventStats()
    metrics = app[METRICS]
    metrics.labeled_gauge("event_consumer_lag", "Events a consumer group must see and has not processed",
                          "group", lambda: stats.lags)
    metrics.labeled_gauge("event_consumer_pending", "Stream entries delivered to a group and not acknowledged",
                          "group", lambda: stats.pending)
    metrics.labeled_gauge("event_dead_letters", "Events parked as dead letters, per consumer group",
                          "group", lambda: stats.parked)
    metrics.gauge("outbox_lag_events", "Outbox events not yet published to the stream", lambda: stats.unpublished)
    metrics.gauge("outbox_republished_events", "Events this process's relay published again (loss, overdue)",
                  lambda: stats.republished)


async def start_consumer(app: web.Application, tasks: BackgroundTasks, group: str,
                         handlers: dict[str, EventHandler], **options: Any) -> StreamConsumer:
    """Register `group` for the event types it handles, and run its consumer (supervised) in `tasks`.
    `options` go to `StreamConsumer` (retry and timing settings)."""
    pool = app[DB]

    async def gone(names: list[str]) -> set[str]:
        ids = {name: instance_of(name) for name in names}
        dead = await gone_instances(pool, [i for i in ids.values() if i is not None])
        return {name for name, i in ids.items() if i in dead}

    consumer = StreamConsumer(pool, app[REDIS], app[EVENT_STREAM], group, consumer_name(app[LIVENESS].instance_id),
                              handlers, gone_consumers=gone, **options)
    await consumer.register()
    with contextlib.suppress(RedisError, OSError):  # Redis down at start: the consumer's loop creates it
        await consumer.ensure_group()  # before the app serves, so readiness never sees it missing
    app[CONSUMERS].append(consumer)
    tasks.supervise(f"consumer:{group}", lambda: consumer.run(tasks.metrics))
    return consumer


async def refresh_stats(app: web.Application, relay: OutboxRelay) -> None:
    stats, pool, stream = app[EVENT_STATS], app[DB], app[EVENT_STREAM]
    expiry = relay.group_expiry
    stats.lags = {g: float(n) for g, n in (await eventstore.group_lags(pool, stream, expiry)).items()}
    stats.parked = {g: float(n) for g, n in (await eventstore.parked_counts(pool, stream)).items()}
    stats.unpublished = await relay.lag()
    stats.republished = relay.republished
    try:
        groups = await app[REDIS].xinfo_groups(stream)
    except ResponseError:  # no stream (yet, or lost): nothing pending anywhere
        groups = []
    pending = {g: 0.0 for g in stats.lags}
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else str(g["name"])
        pending[name] = float(g["pending"])
    stats.pending = pending


async def background(app: web.Application) -> AsyncIterator[None]:
    """The relay and its jobs. Installed after the components, so their groups are registered before
    the first settling pass."""
    settings = app[SETTINGS]
    relay = OutboxRelay(app[DB], app[REDIS], app[EVENT_STREAM],
                        retention=timedelta(hours=settings.event_retention_hours))
    tasks = BackgroundTasks(app[METRICS])
    tasks.supervise("outbox-relay", lambda: relay.run(tasks.metrics))
    # The relay runs in every process (the outbox is partitioned among relays by row locks); the
    # jobs over the whole outbox run in one process at a time (kernel/leases.py). The stats are each
    # process's own metrics.
    once = app[JOB_LEASES].singular
    tasks.every("outbox-settle", 1.0, once("outbox-settle", 1.0, relay.settle), first_delay=1.0)
    tasks.every("outbox-overdue", 10.0, once("outbox-overdue", 10.0, relay.redeliver_overdue), first_delay=10.0)
    tasks.every("outbox-prune", 60.0, once("outbox-prune", 60.0, relay.prune), first_delay=30.0)
    tasks.every("event-stats", STATS_EVERY_S, lambda: refresh_stats(app, relay))
    kept = timedelta(hours=settings.idempotency_retention_hours)  # docs/PRIVACY.md
    tasks.every("idempotency-purge", 5.0, once("idempotency-purge", 5.0, lambda: purge_expired(app[DB], kept)))
    try:
        yield
    finally:
        await tasks.stop()
