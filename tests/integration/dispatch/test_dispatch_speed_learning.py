"""Learned travel times against real Postgres and Redis: couriers' movement in the live index
updates dispatch's stored speed table, the live round's ETAs change with it, and a new lease
holder starts from what was stored."""

from __future__ import annotations

import json
from datetime import datetime

import h3

from geo.eta import HaversineTravelTime
from geo.speeds import ALL_DAY
from kernel.clock import ManualClock

REGION = "test-region"
STORE = (52.5200, 13.4050)
CELL = h3.latlng_to_cell(*STORE, 7)
# 40 couriers on a grid a few hundred metres north-east of the store, all in the store's res-7 cell.
START = {f"cou_{i}{j}": (STORE[0] + 0.0004 * i, STORE[1] + 0.0006 * j) for i in range(8) for j in range(5)}


def moved(meters_north: float) -> dict[str, tuple[float, float]]:
    return {cid: (lat + meters_north / 111_195.0, lng) for cid, (lat, lng) in START.items()}


async def speed_rows(db) -> dict[tuple[str, int], tuple[float, float, int]]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT cell, hour, observed_s, nominal_s, samples FROM dispatch_speed_cells "
                                "WHERE region = $1", REGION)
    return {(r["cell"], r["hour"]): (r["observed_s"], r["nominal_s"], r["samples"]) for r in rows}


async def test_slow_couriers_raise_the_stored_factor_and_the_eta_of_the_next_offer(
        make_dispatcher, put_couriers, add_order, db, clock: ManualClock) -> None:
    d = make_dispatcher("proc-a")
    base = HaversineTravelTime()
    far = (STORE[0] + 0.004, STORE[1])  # ~445 m north, same cell
    await put_couriers(START)
    assert await d.learn_speeds() == 0  # first positions: nothing to compare with yet
    assert await speed_rows(db) == {}
    assert d.travel_at(clock.now().timestamp()).seconds(far, STORE) == base.seconds(far, STORE)

    clock.advance(60.0)
    await put_couriers(moved(120.0))  # 2 m/s in a car whose nominal speed is 7 m/s
    assert await d.learn_speeds() == len(START)
    rows = await speed_rows(db)
    hour = clock.now().hour  # the region's timezone is UTC by default
    assert set(rows) == {(CELL, hour), (CELL, ALL_DAY)}
    observed_s, nominal_s, samples = rows[(CELL, hour)]
    assert samples == len(START)
    assert observed_s == 60.0 * len(START) and observed_s / nominal_s > 3.0

    clock.advance(20.0)
    await put_couriers(moved(120.0))  # parked since: no hop, nothing stored changes
    assert await d.learn_speeds() == 0
    assert await speed_rows(db) == rows

    now = clock.now().timestamp()
    learned = d.travel_at(now).seconds(far, STORE)
    assert learned > 1.8 * base.seconds(far, STORE)

    # A live round prices the courier's approach with the learned model.
    await put_couriers({"cou_solo": far})
    for cid in START:
        await put_couriers({cid: START[cid]}, status="offline")
    await add_order("ord_1", ready_in=0.0)
    stat = await d.tick()
    assert stat is not None and stat.offers == 1
    async with db.acquire() as conn:
        offer = await conn.fetchrow("SELECT courier_id, created_at, frame FROM dispatch_offers")
    assert offer["courier_id"] == "cou_solo"
    arrive_by = datetime.fromisoformat(json.loads(offer["frame"])["pickup"]["arrive_by"])
    assert abs((arrive_by - offer["created_at"]).total_seconds() - learned) < 1.0

    # Another process taking the region over starts from the stored table, not from scratch.
    await d.stop()
    successor = make_dispatcher("proc-b")
    assert await successor.tick() is not None
    assert successor.travel_at(now).seconds(far, STORE) == learned
