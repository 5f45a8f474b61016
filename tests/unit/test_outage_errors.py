"""Which failures are a dependency's outage (503 with a code) and which are ours (500); the
rate limiter's fallback while Redis is unreachable; outages logged once per burst."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from structlog.testing import capture_logs

from fooddispatch.errors import DATABASE, REDIS, _BurstLog, unavailable_dependency
from fooddispatch.ratelimit import Check, Limit, LocalLimiter, RateLimiter


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
])
def test_database_outages_are_database_unavailable(exc: BaseException) -> None:
    assert unavailable_dependency(exc) == DATABASE


@pytest.mark.parametrize("exc", [
    redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    redis_errors.TimeoutError("Timeout reading from socket"),
    redis_errors.BusyLoadingError("Redis is loading the dataset in memory"),
    redis_errors.ReadOnlyError("You can't write against a read only replica."),
])
def test_redis_outages_are_redis_unavailable(exc: BaseException) -> None:
    assert unavailable_dependency(exc) == REDIS


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    redis_errors.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    TimeoutError(),  # raised by our own code, not a driver's
    ConnectionResetError(),
    ValueError("a bug"),
])
def test_our_own_failures_are_not_outages(exc: BaseException) -> None:
    assert unavailable_dependency(exc) is None


async def test_a_drivers_own_timeout_or_socket_error_names_its_dependency() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://u@127.0.0.1:{port}/x", timeout=5)
    assert unavailable_dependency(refused.value) == DATABASE


def test_an_outage_is_logged_once_per_burst_with_the_count_left_out() -> None:
    bursts = _BurstLog(every=3600)
    with capture_logs() as logs:
        for _ in range(50):
            bursts.failed(DATABASE, OSError("refused"), "/v1/x")
        bursts.failed(REDIS, redis_errors.ConnectionError("refused"), "/v1/y")
        bursts.every = 0
        bursts.failed(DATABASE, OSError("refused"), "/v1/x")
    lines = [(e["dependency"], e["failures_not_logged"]) for e in logs if e["event"] == "dependency.unavailable"]
    assert lines == [(DATABASE, 0), (REDIS, 0), (DATABASE, 49)]


def test_local_limiter_keeps_the_limit_and_says_when_to_retry() -> None:
    now = [1_000_000.0]
    limiter = LocalLimiter(lambda: now[0])
    limit = Limit(per_minute=60, burst=3)
    decisions = [limiter.check(Check("p:a", limit)) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1].retry_after_seconds == 1
    assert limiter.check(Check("p:b", limit)).allowed  # per subject
    now[0] += 1000
    assert limiter.check(Check("p:a", limit)).allowed


def test_local_limiter_applies_the_tenants_limit_too() -> None:
    limiter = LocalLimiter(lambda: 5_000.0)
    own, tenant = Limit(600, 100), Limit(60, 2)
    allowed = [limiter.check(Check(f"p:{i}", own, "t:1", tenant)).allowed for i in range(3)]
    assert allowed == [True, True, False]


async def test_rate_limiter_fails_open_to_the_local_limiter_when_redis_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here: a real client, a refused connection
    redis = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        limiter = RateLimiter(redis, "t:")
        limit = Limit(per_minute=60, burst=2)
        decisions = await asyncio.gather(*[limiter.check("p:a", limit) for _ in range(3)])
        assert sorted(d.allowed for d in decisions) == [False, True, True]
        assert limiter.local_decisions == 3
    finally:
        await redis.aclose()
