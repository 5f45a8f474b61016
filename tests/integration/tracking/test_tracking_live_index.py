"""geo.live.CourierIndex against a real Redis: cell moves, exact counters, the sweeper,
and the dispatcher's read API."""

from __future__ import annotations

import time

import h3
import msgspec

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


async def test_the_packed_flush_stores_the_exact_positions_seen_times_and_state(redis) -> None:
    """The flush ships floats as msgpack doubles inside one argument: the GEO and seen scores
    must be the doubles that plain GEOADD/ZADD with Python's shortest decimal strings store,
    and the state hash value the state's JSON, byte for byte."""
    index = CourierIndex(redis, "it:", "r1")
    awkward = [(52.52 + 0.1 + 0.2, 13.405000000000001, 1764074448.1234567),
               (-33.868819999999996, 151.20929, 1764074448.0000002), (0.1, -179.99999999999997, 1e9 + 1 / 3)]
    updates = [update(f"c{i}", lat, lng, seen=seen) for i, (lat, lng, seen) in enumerate(awkward)]
    updates.append(CourierUpdate("nopos", True, LiveState(status="online", seen=awkward[0][2], seq=7)))
    await index.flush(updates)
    for i, (lat, lng, seen) in enumerate(awkward):
        await redis.execute_command("GEOADD", "it:expected:geo", repr(lng), repr(lat), f"c{i}")
        await redis.execute_command("ZADD", "it:expected:seen", repr(seen), f"c{i}")
        cid = f"c{i}"
        assert await redis.zscore(index.keys.geo, cid) == await redis.zscore("it:expected:geo", cid)
        assert await redis.zscore(index.keys.seen, cid) == await redis.zscore("it:expected:seen", cid) == seen
    for u in updates:
        assert await redis.hget(index.keys.state, u.courier_id) == msgspec.json.encode(u.state)
    assert await redis.zscore(index.keys.seen, "nopos") == awkward[0][2]
    assert await redis.zscore(index.keys.geo, "nopos") is None  # available but no position: not in GEO
    assert await redis.hget(index.keys.cellof, "nopos") is None
