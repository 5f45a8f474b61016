"""Wires the live dispatcher: one `Dispatcher` per region this process may lead (the lease decides
which process actually runs a region's rounds), the "dispatch" consumer of the event stream, the
operator routes, and the metrics (round time, offers, acceptance).

`DISPATCH_CONFIG` may be set on the app before it starts to override the defaults built from
settings (tests shorten the interval and the lease)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from dispatch import web as dispatch_web
from dispatch.events import DispatchEvents
from dispatch.messages import RoundStat
from dispatch.service import Counters, Dispatcher, DispatcherConfig
from fooddispatch.eventing import start_consumer
from fooddispatch.instance import consumer_name
from fooddispatch.keys import CLOCK, DB, METRICS, REDIS, SETTINGS
from geo.speeds import SpeedLearning
from kernel.tasks import BackgroundTasks

DISPATCH_CONFIG = web.AppKey("dispatch_config", DispatcherConfig)

ROUND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def config_from(app: web.Application) -> DispatcherConfig:
    settings = app[SETTINGS]
    return DispatcherConfig(region=settings.region, interval_s=settings.dispatch_interval_seconds,
                            offer_ttl_s=float(settings.offer_ttl_seconds),
                            speeds=SpeedLearning(timezone=settings.region_timezone))


async def _dispatch(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    config = app.get(DISPATCH_CONFIG) or config_from(app)
    metrics = app[METRICS]
    round_time = metrics.histogram("dispatch_round_seconds", "Dispatch round time (lease holder)", ("region",),
                                   buckets=ROUND_BUCKETS)
    offers_out = metrics.counter("dispatch_offers", "Offers published to couriers", ("region",))

    def on_round(stat: RoundStat) -> None:
        round_time.labels(stat.region).observe(stat.seconds)
        offers_out.labels(stat.region).inc(stat.offers)

    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-solve")
    owner = f"{consumer_name()}-{id(app):x}"  # two apps in one test process are two owners
    dispatcher = Dispatcher(app[DB], app[REDIS], settings.redis_prefix, app[CLOCK], config, owner,
                            executor=executor, on_round=on_round)
    counters: Counters = dispatcher.counters
    app[dispatch_web.DISPATCH] = dispatch_web.DispatchApp({config.region: dispatcher})
    metrics.gauge("dispatch_offers_accepted", "Offers accepted (this process's consumer)",
                  lambda: counters.offers_accepted)
    metrics.gauge("dispatch_offers_declined", "Offers declined", lambda: counters.offers_declined)
    metrics.gauge("dispatch_offers_expired", "Offers that lapsed", lambda: counters.offers_expired)
    metrics.gauge("dispatch_acceptance_ratio", "Accepted / answered-or-lapsed offers",
                  lambda: counters.offers_accepted / max(1, counters.offers_accepted + counters.offers_declined
                                                         + counters.offers_expired))
    metrics.gauge("dispatch_repositions_sent", "Reposition frames sent to idle couriers",
                  lambda: counters.repositions_sent)
    metrics.gauge("dispatch_leading", "1 while this process holds the region's lease",
                  lambda: 1.0 if dispatcher.leading else 0.0)
    events = DispatchEvents(app[REDIS], settings.redis_prefix, config.region, counters, config.prep_alpha)
    tasks = BackgroundTasks(metrics)
    await start_consumer(app, tasks, "dispatch", events.handlers())
    tasks.supervise(f"dispatch-loop-{config.region}", lambda: dispatcher.run(tasks.metrics))
    try:
        yield
    finally:
        await tasks.stop()
        await dispatcher.stop()
        executor.shutdown(wait=False, cancel_futures=True)


def install(app: web.Application) -> None:
    dispatch_web.setup(app)
    app.cleanup_ctx.append(_dispatch)
