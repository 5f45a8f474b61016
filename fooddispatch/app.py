"""The app factory: `create_app(settings)` builds the aiohttp application.

Pools and clients open and close in `cleanup_ctx`; every package's routes come
from its component (see `fooddispatch.components`). `settings.database_url` and
`settings.redis_url` must point at running servers by now (the CLI starts the
embedded ones first when they are not configured).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from aiohttp import web

from fooddispatch import asyncapi, auth, database, eventing, health, openapi, versions
from fooddispatch.config import Settings
from fooddispatch.errors import make_error_middleware, remember_websocket
from fooddispatch.idempotency import IDEMPOTENCY_STORE, IdempotencyStore, idempotency_middleware
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.input_guard import input_guard_middleware, path_id_middleware
from fooddispatch.instance import consumer_name
from fooddispatch.keys import CLOCK, DB, EVENT_STREAM, JOB_LEASES, LIVENESS, METRICS, REDIS, SETTINGS
from fooddispatch.liveness import ProcessLiveness
from fooddispatch.livestore import close_redis, open_redis
from fooddispatch.metrics import Metrics
from fooddispatch.ratelimit import LIMITS, RATE_LIMITER, Limit, RateLimiter, rate_limit_middleware
from kernel.clock import Clock, SystemClock
from kernel.leases import JobLeases


def event_stream_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}events"


async def _pools(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("create_app needs database_url and redis_url; the CLI starts embedded servers")
    # Every wait on PostgreSQL is bounded (statement, acquire, release): see fooddispatch/database.py.
    pool = await database.create_pool(settings, reset=database.release_connection)
    # One server or a cluster (FOODDISPATCH_REDIS_CLUSTER): see fooddispatch/livestore.py.
    redis = open_redis(settings)
    app[DB] = pool
    leases = app[JOB_LEASES] = JobLeases(pool, f"{consumer_name()}-{id(app):x}")  # two apps in a test: two holders
    # Held for the process's life, whatever else runs: idempotency claims are alive while it is.
    liveness = ProcessLiveness(settings.database_url)
    await liveness.start()
    app[LIVENESS] = liveness
    app[METRICS].gauge("liveness_lock_held", "1 while this process holds its liveness lock (idempotency claims)",
                       lambda: float(liveness.held.is_set()))
    app[IDEMPOTENCY_STORE] = IdempotencyStore(pool, liveness, settings.jwt_secret)
    app[REDIS] = redis
    app[RATE_LIMITER] = limiter = RateLimiter(redis, settings.redis_prefix)
    app[METRICS].gauge("rate_limit_local_decisions", "Rate-limit decisions taken in this process while Redis was "
                       "unreachable (since start)", lambda: limiter.local_decisions)
    app[auth.IDENTITY_SERVICE] = IdentityService(
        pool, Tokens({settings.jwt_kid: settings.jwt_secret}, settings.jwt_kid, settings.jwt_ttl_seconds)
    )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a database already gone: the leases expire by themselves
            await leases.release_all()
        await app[IDEMPOTENCY_STORE].close()
        await liveness.stop()
        await close_redis(redis)
        await pool.close()


# Young-generation collections every 20,000 net allocations instead of 700, and full ones
# rarely. A process holding thousands of sockets and ingesting ~20k points/s allocates fast:
# with the defaults, full collections ran every couple of seconds and paused the loop for
# 100-450 ms (the ack p99 tails and the fan-out outliers in BENCHMARKS.md, tracking).
GC_THRESHOLDS = (20_000, 20, 100)
_GC_BEFORE = web.AppKey("gc_before", tuple)


async def _tune_gc(app: web.Application) -> None:
    """After every component has started: what startup built (modules, pools, services, indexes)
    lives as long as the process, so it leaves the collector's generations (gc.freeze) and is never
    scanned again; and collections run less often. Undone at cleanup, so a process that builds
    many apps (the tests) does not keep their garbage."""
    app[_GC_BEFORE] = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _untune_gc(app: web.Application) -> None:
    before = app.get(_GC_BEFORE)
    if before is not None:
        gc.unfreeze()
        gc.set_threshold(*before)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    background: bool = True,
    components: tuple[str, ...] | None = None,
) -> web.Application:
    """Build the application. `background=False` leaves out the relay and its jobs,
    for tests that drive them by hand."""
    from fooddispatch.components import COMPONENTS, install_all

    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[make_error_middleware(metrics, settings.db_request_deadline_seconds), input_guard_middleware,
                     auth.auth_middleware, versions.version_middleware, rate_limit_middleware, path_id_middleware,
                     idempotency_middleware],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[CLOCK] = clock or SystemClock()
    app[EVENT_STREAM] = event_stream_name(settings)
    app[LIMITS] = {
        "principal": Limit(settings.rate_limit_per_minute, settings.rate_limit_burst),
        "tenant": Limit(settings.tenant_rate_limit_per_minute, settings.tenant_rate_limit_burst),
    }
    app.on_response_prepare.append(remember_websocket)
    eventing.setup(app)
    app.cleanup_ctx.append(_pools)
    health.setup(app)
    openapi.setup(app)
    asyncapi.setup(app)
    auth.setup(app)
    versions.setup(app)
    install_all(app, COMPONENTS if components is None else components)
    if background:  # after the components: their consumer groups are registered before the relay settles
        app.cleanup_ctx.append(eventing.background)
    app.on_startup.append(_tune_gc)  # on_startup runs after every cleanup_ctx has started
    app.on_cleanup.append(_untune_gc)
    return app
