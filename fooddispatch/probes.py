"""Readiness probes that answer within their budget whatever the server does.

A probe runs in its own task; the caller waits at most `budget` seconds for it. A probe
still waiting then (a stalled server answers nothing) is reported unavailable and left to
finish on its own: its statement and its acquire are bounded too, and a connection it was
using when it gave up is terminated rather than returned, so the pool is not left with a
connection stuck behind the stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import asyncpg
import redis.asyncio as aioredis


async def probe_postgres(pool: asyncpg.Pool, budget: float) -> str:
    """"ok", or "unavailable: <reason>", within `budget` seconds."""
    return await _within(_select_one(pool, budget), budget)


async def probe_redis(redis: aioredis.Redis, budget: float) -> str:
    """"ok", or "unavailable: <reason>", within `budget` seconds."""
    return await _within(_ping(redis), budget, cancel=True)


async def _select_one(pool: asyncpg.Pool, budget: float) -> None:
    conn = await pool.acquire(timeout=budget)
    try:
        await conn.fetchval("SELECT 1", timeout=budget)
    except BaseException:
        conn.terminate()  # whatever state it is in (a pending cancel, a stall), it is not reused
        raise
    finally:
        await pool.release(conn)


async def _ping(redis: aioredis.Redis) -> None:
    await redis.ping()


async def _within(probe: Awaitable[None], budget: float, *, cancel: bool = False) -> str:
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if not done:
        if cancel:
            task.cancel()  # redis-py drops a connection whose command was cancelled
        task.add_done_callback(_consume)
        return "unavailable: TimeoutError"
    exc = task.exception()
    return "ok" if exc is None else f"unavailable: {type(exc).__name__}"


def _consume(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
