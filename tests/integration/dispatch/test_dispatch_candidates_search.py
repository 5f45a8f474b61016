"""The round's candidate search on a real Redis: nearest first, each courier's state read once
for all the points that find it, only online couriers, positions and vehicles from the index."""

from __future__ import annotations

from dispatch.live import CourierSearch
from geo.h3cells import cell_of
from geo.live import CourierIndex, CourierUpdate, LiveState

REGION = "test-region"
A = (52.5200, 13.4050)
B = (52.5300, 13.4050)  # ~1.1 km north of A


async def test_nearest_online_couriers_per_point_with_their_vehicle(redis, settings) -> None:
    index = CourierIndex(redis, settings.redis_prefix, REGION)

    def update(cid: str, lat: float, lng: float, vehicle: str | None) -> CourierUpdate:
        state = LiveState(status="online", seen=1.0, lat=lat, lng=lng, cell=cell_of(lat, lng), vehicle=vehicle)
        return CourierUpdate(cid, True, state, lat, lng, cell_of(lat, lng))

    await index.flush([
        update("near_a", A[0] + 0.0005, A[1], "bicycle"),
        update("mid", A[0] + 0.005, A[1], None),  # between A and B
        update("near_b", B[0] + 0.0003, B[1], "car"),
        update("far", A[0] - 0.05, A[1], "scooter"),  # ~5.6 km south
    ])
    # A courier on a break is still in the GEO set here (as between a status change and the next
    # flush): the search reads its state and leaves it out.
    brk = LiveState(status="break", seen=1.0, lat=B[0], lng=B[1] + 0.0002, cell=cell_of(B[0], B[1]))
    await index.flush([CourierUpdate("on_break", True, brk, B[0], B[1] + 0.0002, cell_of(B[0], B[1]))])

    found = await CourierSearch(redis, index.keys).nearest([A, B], k=3, radius_m=10_000.0)
    # The 3 nearest of A are near_a, mid and on_break; of B on_break, near_b and mid.
    assert [f.courier_id for f in found[0]] == ["near_a", "mid"]
    assert [f.courier_id for f in found[1]] == ["near_b", "mid"]
    near_a, mid = found[0]
    assert (near_a.lat, near_a.lng, near_a.vehicle) == (A[0] + 0.0005, A[1], "bicycle")
    assert mid.vehicle is None  # no vehicle known: the round assumes its default
    assert found[1][1] == mid  # one courier, one state, whichever point found it
