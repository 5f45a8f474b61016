"""The app factory: `create_app(settings)` builds the aiohttp application.

Pools and clients open and close in `cleanup_ctx`; every package's routes come
from its component (see `fooddispatch.components`). `settings.database_url` and
`settings.redis_url` must point at running servers by now (the CLI starts the
embedded ones first when they are not configured).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from fooddispatch import auth, eventing, health, openapi
from fooddispatch.config import Settings
from fooddispatch.errors import make_error_middleware
from fooddispatch.idempotency import IDEMPOTENCY_STORE, IdempotencyStore, idempotency_middleware
from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.keys import CLOCK, DB, EVENT_STREAM, METRICS, REDIS, SETTINGS
from fooddispatch.metrics import Metrics
from fooddispatch.ratelimit import LIMITS, RATE_LIMITER, Limit, RateLimiter, rate_limit_middleware
from kernel.clock import Clock, SystemClock


def event_stream_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}events"


async def release_connection(conn: asyncpg.Connection) -> None:
    """What the pool does when a connection comes back. asyncpg's default runs
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: a
    round trip each time (four per checkout). No pooled connection here keeps session
    state (no LISTEN, no session settings or advisory locks: migrations use their own
    connection), so only an abandoned transaction needs undoing."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _pools(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("create_app needs database_url and redis_url; the CLI starts embedded servers")
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max,
        command_timeout=30, server_settings={"application_name": "fooddispatch"}, reset=release_connection,
    )
    # Blocking pool: under a burst every request waits (up to 5 s) for a free connection
    # instead of failing with "Too many connections" (seen as 500s in the checkout race bench).
    redis_pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=256, timeout=5, health_check_interval=30
    )
    redis = aioredis.Redis(connection_pool=redis_pool)
    app[DB] = pool
    app[IDEMPOTENCY_STORE] = IdempotencyStore(pool)
    app[REDIS] = redis
    app[RATE_LIMITER] = RateLimiter(redis, settings.redis_prefix)
    app[auth.IDENTITY_SERVICE] = IdentityService(
        pool, Tokens({settings.jwt_kid: settings.jwt_secret}, settings.jwt_kid, settings.jwt_ttl_seconds)
    )
    try:
        yield
    finally:
        await redis.aclose()
        await redis_pool.aclose()
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
        middlewares=[make_error_middleware(metrics), auth.auth_middleware, rate_limit_middleware,
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
    eventing.setup(app)
    app.cleanup_ctx.append(_pools)
    health.setup(app)
    openapi.setup(app)
    auth.setup(app)
    install_all(app, COMPONENTS if components is None else components)
    if background:  # after the components: their consumer groups are registered before the relay settles
        app.cleanup_ctx.append(eventing.background)
    app.on_startup.append(_tune_gc)  # on_startup runs after every cleanup_ctx has started
    app.on_cleanup.append(_untune_gc)
    return app
