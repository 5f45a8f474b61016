"""Redis lost under load: killed (-9) and restarted empty, or wiped by FLUSHALL again and again
during a burst of checkouts. Redis holds only rebuildable state, so afterwards every acknowledged
order must still reach the webhook receiver, the tablet feed, dispatch and its courier, exactly once
by event id, and no request may have been answered 500 (a Redis outage is a 503 with a code)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from faults_actors import now
from faults_checks import judge

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

# The stream is gone with Redis: recovery is the relay publishing the outbox again, a matter of seconds.
SETTLE_S = 20.0

REDIS_DOWN_S = 3.0  # how long Redis stays dead: longer than a client's reconnect back-off


async def test_redis_killed_and_restarted_empty_under_load_loses_no_event(fault_city, record_verdict) -> None:
    # Redeployed once before, like any running system: the dispatch lease has changed hands, so what
    # Redis forgets (the fencing counter) must not outrank what PostgreSQL remembers (the last fence).
    city = await fault_city(redeployed=True)
    city.load.start()
    await city.orders_acknowledged(5, within=20)
    async with city.fault("redis kill -9 + restart", "redis") as fault:
        city.redis.kill()
        await asyncio.sleep(REDIS_DOWN_S)  # the outage itself, under load
        city.redis.start()
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(5, within=20)
    verdict = await judge(city, "a: redis kill -9 and restart", settle_s=SETTLE_S)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()


async def test_redis_flushall_during_a_checkout_burst_loses_no_event(fault_city, record_verdict) -> None:
    city = await fault_city(workers=6)
    city.load.start()
    await city.orders_acknowledged(4, within=20)
    flusher = aioredis.Redis.from_url(city.redis.url)
    flushes = 0
    try:
        async with city.fault("FLUSHALL x N during a burst", "redis") as fault:
            city.load.resume(rate=8.0)  # the burst
            burst_ends = now() + 6.0
            while now() < burst_ends:
                await flusher.flushall()
                flushes += 1
                await asyncio.sleep(0.25)
            city.load.resume(rate=2.0)
        fault.label = f"FLUSHALL x {flushes} during a burst"
    finally:
        await flusher.aclose()
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(5, within=20)
    verdict = await judge(city, "b: FLUSHALL during a burst", settle_s=SETTLE_S)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()
