"""PostgreSQL goes away under load, three ways: a fast shutdown and start (a failover or a restart
by an operator), a crash (kill -9 of every postgres process, then crash recovery), and a stall
(SIGSTOP of the whole server for ~10 s, then SIGCONT: a frozen VM, a storage hiccup).

While it is away, requests answer 503 `database_unavailable` with Retry-After (never 500) within a
bound, not after the whole stall, and /readyz says so within its budget. Afterwards nothing that
was acknowledged is missing and every acknowledged order reaches every consumer exactly once."""

from __future__ import annotations

import asyncio

import pytest
from faults_actors import Http, now
from faults_checks import judge

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

# An event whose handler failed on the outage stays pending; it is claimed again after `claim_idle_ms`
# (30 s) unless the consumer retries it itself. The wait (from the end of the load)
# covers that; the recovery figure shows it.
SETTLE_S = 30.0

DOWN_S = 2.0  # how long the server stays stopped or crashed
STALL_S = 10.0  # how long it stays frozen
READYZ_BOUND_S = 2.5  # readyz's budget is ~1.5 s; the rest is room for a loaded 2-core box
REQUEST_BOUND_S = 8.0  # a request during the stall is answered (503) this soon, not when the stall ends


async def _probe_stall(city) -> None:
    """While PostgreSQL is frozen, at once: /readyz must say so within its budget, and a read must be
    refused (503) within the request bound. Each has its own client timeout, both end inside the stall."""
    http = Http(city.app.base_url, city.calls)
    customer = city.customers[0]
    order_id = next((c.order_id for c in city.load.placed() if c.customer == customer.account_id), None)
    path = f"/v1/orders/{order_id}" if order_id else "/v1/orders"
    try:
        ready, read = await asyncio.gather(
            http.call("GET", "/readyz", "readyz", give_up_s=READYZ_BOUND_S + 2.0),
            http.call("GET", path, "stalled read", token=customer.token, give_up_s=REQUEST_BOUND_S + 0.5))
    finally:
        await http.close()
    checks = ready.body.get("checks", {}) if isinstance(ready.body, dict) else {}
    city.figures["readyz during the stall"] = f"{ready.status} in {ready.seconds:.1f} s: {checks or ready.code}"
    if ready.seconds > READYZ_BOUND_S or ready.status != 503 or checks.get("postgres") == "ok":
        city.notes.append(f"/readyz during the stall answered {ready.status or 'nothing'} after {ready.seconds:.1f} s "
                          f"(wanted 503 naming postgres within {READYZ_BOUND_S} s)")
    city.figures["a read during the stall"] = f"{read.status} {read.code} in {read.seconds:.1f} s"
    if read.seconds > REQUEST_BOUND_S or read.status != 503 or read.code != "database_unavailable":
        city.notes.append(f"a read during the stall answered {read.status or 'nothing'} {read.code} after "
                          f"{read.seconds:.1f} s (wanted 503 database_unavailable within {REQUEST_BOUND_S:.0f} s)")


def _hung_requests(city, start: float, end: float) -> None:
    """Every request sent while the server was frozen was answered within the bound."""
    started_in = [c for c in city.calls if start <= c.at - c.seconds <= end - REQUEST_BOUND_S]
    hung = [c for c in started_in if c.seconds > REQUEST_BOUND_S or c.status == 0]
    city.figures["requests sent during the stall / answered within the bound"] = (
        f"{len(started_in)} / {len(started_in) - len(hung)}")
    if hung:
        slowest = max(c.seconds for c in hung)
        city.notes.append(f"{len(hung)} requests sent during the stall hung (slowest {slowest:.1f} s) instead of "
                          f"a 503 within {REQUEST_BOUND_S:.0f} s")


async def test_postgres_stopped_crashed_and_stalled_under_load_loses_nothing(fault_city, record_verdict) -> None:
    city = await fault_city()
    city.load.start()
    await city.orders_acknowledged(5, within=20)
    async with city.fault("postgres fast stop + start", "postgres") as fault:
        await city.pg.stop_fast()
        await asyncio.sleep(DOWN_S)  # the outage itself, under load
        await city.pg.start_async()
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(3, within=20)
    async with city.fault("postgres kill -9 + restart", "postgres") as fault:
        city.pg.kill()
        await asyncio.sleep(DOWN_S)
        await city.pg.start_async()
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(3, within=20)
    async with city.fault(f"postgres SIGSTOP {STALL_S:.0f} s", "postgres") as fault:
        city.pg.freeze()
        try:
            await asyncio.sleep(1.0)  # in-flight work gets stuck on the frozen server first
            await _probe_stall(city)
        finally:
            await asyncio.sleep(max(0.0, fault.start + STALL_S - now()))
            city.pg.thaw()
    _hung_requests(city, fault.start, fault.end or now())
    await city.first_checkout_after(fault.end or now(), within=20)
    await city.orders_acknowledged(4, within=20)
    verdict = await judge(city, "d: postgres stop, kill -9, SIGSTOP", settle_s=SETTLE_S)
    record_verdict(verdict)
    assert not verdict.problems, verdict.render()
