"""The app itself dies under load: kill -9 while checkouts are in flight (phones retry with the same
Idempotency-Key once it is back), and SIGTERM (a deploy: graceful stop, then a new process).

After a crash a same-key retry must run at once (the dead process's claim dies with it: no 60 s of
409 `idempotency_in_progress`), produce no second order, and payments captured on delivery must work
for orders authorized by the earlier process. After SIGTERM the process exits 0 promptly, having
stored what it acknowledged (orders, GPS history), and the next one carries on."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from faults_actors import now, until
from faults_checks import explain, judge

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

# A consumer killed (or cancelled by SIGTERM) mid-event leaves it pending under its old name: another
# consumer claims it after `claim_idle_ms` (30 s). Slow, but not lost: the wait (from the
# end of the load, itself seconds after the crash) covers it, and the recovery figure shows it.
SETTLE_S = 30.0

RETRY_AFTER_CRASH_S = 10.0  # a same-key retry after the restart must be placed within this
GRACEFUL_STOP_S = 15.0  # shutdown_timeout (5 s) plus background tasks' grace, with room for a loaded box


CLAIMS = "SELECT count(*) FROM idempotency_keys WHERE completed_at IS NULL"


async def _claims_in_progress(city) -> int:
    rows = await city.query(CLAIMS.replace("count(*)", "count(*) AS n"))
    return int(rows[0]["n"])


async def _while_a_checkout_holds_its_key(city, within: float) -> bool:
    """Until the server holds a checkout's Idempotency-Key claim (it is inside a checkout right now)."""
    conn = await asyncpg.connect(city.pg.url(city.database))
    try:
        deadline = now() + within
        while True:
            if await conn.fetchval(CLAIMS):
                return True
            if now() > deadline:
                return False
            await asyncio.sleep(0.002)
    finally:
        await conn.close()


async def test_app_killed_mid_checkout_retries_with_the_same_keys_place_each_order_once(
        fault_city, record_verdict) -> None:
    city = await fault_city(workers=6, rate=4.0)
    city.load.start()
    await city.orders_acknowledged(5, within=20)
    orphaned, kills = 0, 0
    while kills < 3 and not orphaned:  # a kill between two requests proves nothing: aim again
        await _while_a_checkout_holds_its_key(city, within=10.0)
        async with city.fault("app kill -9 mid-checkout + restart", "app") as fault:
            city.app.kill()
            kills += 1
            orphaned = await _claims_in_progress(city)
            city.app.spawn()
            await city.wait_serving(60)
    city.figures["checkout claims the kill left in progress"] = f"{orphaned} (after {kills} kill(s))"
    if not orphaned:
        city.notes.append("no kill landed inside a checkout: the same-key retry path was not exercised")
    restarted = fault.end or now()
    await city.first_checkout_after(restarted, within=20)
    await city.orders_acknowledged(5, within=20)
    verdict = await judge(city, "c: app kill -9 mid-checkout, same-key retries", settle_s=SETTLE_S, diagnose=False)
    interrupted = [c for c in city.load.checkouts
                   if any(status == 0 and fault.start - 1.0 <= at <= restarted for at, status, _ in c.attempts)]
    waits = [c.placed_at - restarted for c in interrupted if c.placed_at is not None]
    verdict.figures["checkouts interrupted by the kill / slowest retry after the restart"] = (
        f"{len(interrupted)} / {max(waits):.1f} s" if waits else f"{len(interrupted)} / none placed")
    slow = [c.key[:8] for c in interrupted if c.placed_at is None or c.placed_at - restarted > RETRY_AFTER_CRASH_S]
    if slow:
        verdict.problems.append(f"{len(slow)} interrupted checkouts were not placed within {RETRY_AFTER_CRASH_S:.0f} s "
                                f"of the restart: {slow[:4]}")
    await explain(city, verdict)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()


async def test_app_sigterm_under_load_stops_gracefully_and_the_next_process_carries_on(
        fault_city, record_verdict) -> None:
    city = await fault_city()
    city.load.start()
    await city.orders_acknowledged(5, within=20)
    async with city.fault("app SIGTERM + restart", "app") as fault:
        city.app.terminate()
        await until(lambda: city.app.exit_code() is not None, 30.0)
        stopped_in, code = now() - fault.start, city.app.exit_code()
        if code is None:
            city.app.kill()
        city.app.spawn()
        await city.wait_serving(60)
    city.figures["graceful stop"] = f"{stopped_in:.1f} s, exit code {code}"
    if code != 0:
        city.notes.append(f"SIGTERM: the process exited with {code} (wanted 0)")
    if stopped_in > GRACEFUL_STOP_S:
        city.notes.append(f"SIGTERM: the graceful stop took {stopped_in:.1f} s (over {GRACEFUL_STOP_S:.0f} s)")
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(5, within=20)
    verdict = await judge(city, "f: SIGTERM under load", settle_s=SETTLE_S)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()
