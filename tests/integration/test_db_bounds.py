"""The app's pool bounds every wait on PostgreSQL: a statement, an acquire, and a request's
waits for connections taken together (only waiting counts, not the request's other work)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from fooddispatch.config import Settings
from fooddispatch.database import create_pool, release_connection, request_deadline
from fooddispatch.errors import DATABASE, unavailable_dependency


@pytest.fixture
async def one_connection_pool(settings: Settings):  # type: ignore[no-untyped-def]
    pool = await create_pool(settings.replace(db_pool_min=1, db_pool_max=1, db_acquire_timeout_seconds=30.0,
                                              db_statement_timeout_seconds=0.5), reset=release_connection)
    yield pool
    await pool.close()


async def test_a_statement_past_the_statement_timeout_is_a_database_outage(one_connection_pool) -> None:
    with pytest.raises(asyncpg.QueryCanceledError) as cancelled:
        await one_connection_pool.fetchval("SELECT pg_sleep(5)")
    assert unavailable_dependency(cancelled.value) == DATABASE
    assert await one_connection_pool.fetchval("SELECT 1") == 1  # the connection is fine afterwards


async def test_a_requests_waits_for_connections_share_one_budget(one_connection_pool) -> None:
    pool = one_connection_pool
    held = await pool.acquire()
    try:
        with request_deadline(0.5):
            started = time.monotonic()
            with pytest.raises(TimeoutError) as waited:
                async with pool.acquire():
                    pass
            assert time.monotonic() - started < 5  # the budget, not the 30 s acquire timeout
            assert unavailable_dependency(waited.value) == DATABASE
            # Spent: the next wait is cut off at once (the pool's own timeout, so still an outage).
            with pytest.raises(TimeoutError):
                await pool.acquire()

            async def other_work() -> int:  # a task the request starts does not inherit its budget
                async with pool.acquire() as conn:
                    return int(await conn.fetchval("SELECT 2"))

            work = asyncio.create_task(other_work())
            await asyncio.sleep(0.2)
            assert not work.done()
    finally:
        await pool.release(held)
    assert await work == 2


async def test_time_spent_elsewhere_does_not_count_against_the_budget(one_connection_pool) -> None:
    with request_deadline(0.3):
        await asyncio.sleep(0.6)  # a slow payment processor, say
        async with one_connection_pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
        conn = await one_connection_pool.acquire()  # `await pool.acquire()` is charged the same way
        await one_connection_pool.release(conn)
