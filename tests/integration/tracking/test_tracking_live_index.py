"""geo.live.CourierIndex against a real Redis: cell moves, exact counters, the sweeper,
and the dispatcher's read API."""

from __future__ import annotations

import time

import h3

from geo.live import CourierIndex, CourierUpdate, LiveState

LAT, LNG = 52.52, 13.405


def update(cid: str, lat: float, lng: float, *, available: bool = True, seen: float | None = None) -> CourierUpdate:
    cell = h3.latlng_to_cell(lat, lng, 9)
    seen = time.time() if seen is None else seen
    state = LiveState(status="online" if available else "break", seen=seen, lat=lat, lng=lng, cell=cell)
    return CourierUpdate(cid, available, state, lat, lng, cell)


async def test_moving_to_another_cell_moves_membership_and_counters(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    a, b = (LAT, LNG), (LAT + 0.005, LNG)
    cell_a, cell_b = h3.latlng_to_cell(*a, 9), h3.latlng_to_cell(*b, 9)
    await index.flush([update("c1", *a), update("c2", *a)])
    assert await index.available_counts([cell_a, cell_b]) == {cell_a: 2, cell_b: 0}
    await index.flush([update("c1", *b)])
    assert await redis.smembers(index.keys.cell(cell_a)) == {b"c2"}
    assert await redis.smembers(index.keys.cell(cell_b)) == {b"c1"}
    assert await index.available_counts() == {cell_a: 1, cell_b: 1}


async def test_reflushing_the_same_cell_from_a_fresh_process_keeps_counters_exact(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    await index.flush([update("c1", LAT, LNG)])
    other_process = CourierIndex(redis, "it:", "r1")
    await other_process.flush([update("c1", LAT, LNG)])
    await other_process.flush([update("c1", LAT, LNG)])
    assert await index.available_counts() == {h3.latlng_to_cell(LAT, LNG, 9): 1}


async def test_an_unavailable_courier_leaves_geo_and_cells_but_keeps_its_state(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    await index.flush([update("c1", LAT, LNG)])
    await index.flush([update("c1", LAT, LNG, available=False)])
    assert await index.search_available(LAT, LNG, 500) == []
    assert await index.available_counts() == {}
    live = (await index.courier_states(["c1"]))["c1"]
    assert live.state is not None and live.state.status == "break"


async def test_sweeper_removes_silent_couriers_once(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    now = time.time()
    await index.flush([update("old", LAT, LNG, seen=now - 120), update("fresh", LAT, LNG, seen=now)])
    assert await index.sweep(now - 60) == ["old"]
    assert await index.sweep(now - 60) == []
    assert [c.courier_id for c in await index.search_available(LAT, LNG, 500)] == ["fresh"]
    assert await index.available_counts() == {h3.latlng_to_cell(LAT, LNG, 9): 1}
    assert (await index.courier_states(["old"]))["old"].state.status == "stale"  # type: ignore[union-attr]
    await index.flush([update("old", LAT, LNG)])  # it pings again: back in the index
    assert await index.available_counts() == {h3.latlng_to_cell(LAT, LNG, 9): 2}


async def test_nearest_available_ranks_by_distance_across_rings(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    await index.flush([
        update("near", LAT + 0.0005, LNG), update("mid", LAT + 0.006, LNG), update("far", LAT + 0.02, LNG),
    ])
    found = await index.nearest_available(LAT, LNG, k=2, max_rings=12)
    assert [c.courier_id for c in found] == ["near", "mid"]
    assert found[0].distance_m < found[1].distance_m
    assert [c.courier_id for c in await index.search_available(LAT, LNG, 1000, count=5)] == ["near", "mid"]


async def test_a_big_flush_is_one_script_call_with_many_members(redis) -> None:
    index = CourierIndex(redis, "it:", "r1")
    await index.flush([update(f"c{i}", LAT + i * 1e-5, LNG) for i in range(7000)])
    assert await redis.zcard(index.keys.geo) == 7000
    assert sum((await index.available_counts()).values()) == 7000


async def test_regions_are_separate_and_keys_carry_the_region_hash_tag(redis) -> None:
    one, two = CourierIndex(redis, "it:", "r1"), CourierIndex(redis, "it:", "r2")
    await one.flush([update("c1", LAT, LNG)])
    assert await two.search_available(LAT, LNG, 500) == []
    assert all("{r1}" in key for key in one.keys.script_keys())
