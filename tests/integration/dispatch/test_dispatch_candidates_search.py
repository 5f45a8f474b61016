"""The round's candidate search on a real Redis, through geo's published live index API: nearest
first, each courier's state read once for all the points that find it, only online couriers,
positions and vehicles from the index, one script call for the whole round."""

from __future__ import annotations

from geo import CourierIndex, CourierUpdate, LiveState
from geo.h3cells import cell_of

REGION = "test-region"
A = (52.5200, 13.4050)
B = (52.5300, 13.4050)  # ~1.1 km north of A


def update(cid: str, lat: float, lng: float, vehicle: str | None, status: str = "online") -> CourierUpdate:
    state = LiveState(status=status, seen=1.0, lat=lat, lng=lng, cell=cell_of(lat, lng), vehicle=vehicle)
    return CourierUpdate(cid, True, state, lat, lng, cell_of(lat, lng))


class CountingRedis:
    """The real client, counting the commands sent through it (one call = one round trip here)."""

    def __init__(self, redis) -> None:
        self._redis = redis
        self.sent: list[str] = []

    def __getattr__(self, name: str):
        command = getattr(self._redis, name)

        def counted(*args, **kwargs):
            self.sent.append(name)
            return command(*args, **kwargs)

        return counted


async def test_nearest_online_couriers_per_point_with_their_vehicle(redis, settings) -> None:
    index = CourierIndex(redis, settings.redis_prefix, REGION)
    await index.flush([
        update("near_a", A[0] + 0.0005, A[1], "bicycle"),
        update("mid", A[0] + 0.005, A[1], None),  # between A and B
        update("near_b", B[0] + 0.0003, B[1], "car"),
        update("far", A[0] - 0.05, A[1], "scooter"),  # ~5.6 km south
    ])
    # A courier on a break is still in the GEO set here (as between a status change and the next
    # flush): the search reads its state and leaves it out.
    await index.flush([update("on_break", B[0], B[1] + 0.0002, None, status="break")])

    found = await index.nearest_online([A, B], k=3, radius_m=10_000.0)
    # The 3 nearest of A are near_a, mid and on_break; of B on_break, near_b and mid.
    assert [f.courier_id for f in found[0]] == ["near_a", "mid"]
    assert [f.courier_id for f in found[1]] == ["near_b", "mid"]
    near_a, mid = found[0]
    assert (near_a.lat, near_a.lng, near_a.vehicle) == (A[0] + 0.0005, A[1], "bicycle")
    assert mid.vehicle is None  # no vehicle known: the round assumes its default
    assert found[1][1] == mid  # one courier, one state, whichever point found it


async def test_a_round_of_many_pickups_is_one_script_call_and_a_second_only_for_the_short(redis, settings) -> None:
    pickups = [(A[0] + i * 0.001, A[1]) for i in range(40)]  # 40 restaurants along 4.4 km
    writer = CourierIndex(redis, settings.redis_prefix, REGION)
    await writer.flush([update(f"c{i}", lat, lng + 0.0003, "car") for i, (lat, lng) in enumerate(pickups)]
                       + [update("far", A[0] - 0.05, A[1], "car")])
    client = CountingRedis(redis)
    index = CourierIndex(client, settings.redis_prefix, REGION)  # type: ignore[arg-type]
    await index.load_scripts()

    client.sent.clear()
    found = await index.nearest_online(pickups, k=2, radius_m=10_000.0)
    assert client.sent == ["evalsha"]  # every pickup found 2 within the first 1.5 km
    assert all(len(rows) == 2 for rows in found)

    client.sent.clear()
    found = await index.nearest_online([*pickups, (A[0] - 0.04, A[1])], k=2, radius_m=10_000.0)
    assert client.sent == ["evalsha", "evalsha"]  # the lone point south asks again, wider
    assert [f.courier_id for f in found[-1]] == ["far", "c0"]
