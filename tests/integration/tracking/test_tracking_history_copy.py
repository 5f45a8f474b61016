"""Location history written as hand-encoded binary COPY (tracking/history.py) against the real
table: every column must equal what the datetime path (`copy_records_to_table` with
`datetime.fromtimestamp` values, the code this replaced) stores for the same points, and
the history writer keeps its failure semantics."""

from __future__ import annotations

import math
import random
import struct
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest

from kernel.clock import ManualClock
from tracking import store
from tracking.history import encode_points
from tracking.messages import Point
from tracking.service import TrackingConfig, TrackingService

DAY_ONE, DAY_TWO = date(2026, 11, 24), date(2026, 11, 25)
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC).timestamp()  # between the two days
COLUMNS = "courier_id, recorded_at, received_at, seq, lat, lng, accuracy, speed, heading, dispatchable"
OLD_ORDER = ("courier_id", "recorded_at", "received_at", "seq", "lat", "lng", "accuracy", "speed", "heading",
             "dispatchable")

Batch = tuple[str, list[tuple[Point, bool]], float]  # courier_id, (point, dispatchable)s, received


def batches() -> list[Batch]:
    rnd = random.Random(20261125)
    out: list[Batch] = []
    seq = 0

    def add(courier_id: str, received: float, *points: tuple[float, float, float, float | None, float | None,
                                                              float | None, bool]) -> None:
        nonlocal seq
        kept = []
        for lat, lng, ts, accuracy, speed, heading, ok in points:
            seq += 1
            kept.append((Point(lat, lng, ts, seq, accuracy, speed, heading), ok))
        out.append((courier_id, kept, received))

    # every combination of missing accuracy / speed / heading
    for mask in range(8):
        add("c-nulls", MIDNIGHT + 3600.25, (52.52, 13.405, MIDNIGHT + 3600 + mask,
                                            None if mask & 1 else 5.0, None if mask & 2 else 1.5,
                                            None if mask & 4 else 270.0, mask % 2 == 0))
    # negative coordinates, signed zero, a non-ASCII courier id
    add("kurýr-Łódź-配達-🚲", MIDNIGHT - 7200.5,
        (-33.868820, -151.209296, MIDNIGHT - 7201.000001, 12.5, 0.0, 359.99, True),
        (-0.0, -0.0, MIDNIGHT - 7201.5, 0.1, -0.0, 0.0, False))
    # microsecond edges: many decimals, exact halves (1/128 s = 7812.5 µs: half to even), a ts that
    # rounds up into the next second and the next day's partition, a received time with decimals
    add("c-micros", MIDNIGHT + 0.123456789,
        (1.0, 2.0, MIDNIGHT - 0.0000004, None, None, None, True),  # rounds to midnight: day two
        (1.0, 2.0, MIDNIGHT - 0.0000006, None, None, None, True),  # stays on day one
        (1.0, 2.0, MIDNIGHT - 86000 + 1 / 128, 1.0, 1.0, 1.0, True),
        (1.0, 2.0, MIDNIGHT - 86000 + 3 / 128, 1.0, 1.0, 1.0, True),
        (1.0, 2.0, MIDNIGHT + 5.9999995, 1.0, 1.0, 1.0, True),
        (1.0, 2.0, MIDNIGHT + 6.0000005, 1.0, 1.0, 1.0, True),
        (1.0, 2.0, MIDNIGHT + 7.123456789012, 1.0, 1.0, 1.0, True))
    # real (float4) values: rounding from double, its extremes, and the non-finite ones the old path stored
    add("c-reals", MIDNIGHT + 100.0,
        (10.0, 20.0, MIDNIGHT + 50, 0.1, 1 / 3, 2.0 ** -149, True),
        (10.0, 20.0, MIDNIGHT + 51, 3.4028234e38, -3.4028234e38, 1e-46, True),
        (10.0, 20.0, MIDNIGHT + 52, math.nan, math.inf, -math.inf, False),
        (10.0, 20.0, MIDNIGHT + 53, math.nan, None, -math.inf, False),  # the same with a NULL beside them
        (10.0, 20.0, MIDNIGHT + 54, 0.1, 1 / 3, None, True))
    # a large seq (bigint)
    seq = 2**63 - 2
    add("c-seq", MIDNIGHT + 1.0, (45.0, 7.0, MIDNIGHT + 0.5, 3.0, 4.0, 5.0, True))
    seq = 1000
    # random points over both days, several per batch, random None-ness
    for i in range(40):
        received = MIDNIGHT + rnd.uniform(-86000, 86000)
        add(f"c-rand-{i % 5}", received, *[
            (rnd.uniform(-90, 90), rnd.uniform(-180, 180), received - rnd.uniform(0, 600),
             rnd.choice([None, rnd.uniform(0, 200)]), rnd.choice([None, rnd.uniform(0, 40)]),
             rnd.choice([None, rnd.uniform(0, 360)]), rnd.random() < 0.8)
            for _ in range(rnd.randint(1, 6))
        ])
    return out


def old_rows(batches: list[Batch]) -> list[tuple]:
    """The rows the datetime path kept (the replaced `keep_history`)."""
    fromts = datetime.fromtimestamp
    rows = []
    for courier_id, points, received in batches:
        at = fromts(received, UTC)
        for p, ok in points:
            rows.append((courier_id, fromts(p.ts, UTC), at, p.seq, p.lat, p.lng, p.accuracy, p.speed, p.heading, ok))
    return rows


def comparable(row: asyncpg.Record) -> tuple:
    """Values as exact keys: floats by their bits (NaN as one value), so -0.0 differs from 0.0."""
    return tuple(
        ("nan" if math.isnan(v) else struct.pack(">d", v)) if isinstance(v, float) else v for v in row
    )


@pytest.fixture
async def partitioned(db: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    await store.ensure_partitions(db, [DAY_ONE, DAY_TWO])
    async with db.acquire() as conn:
        await conn.execute("CREATE TABLE reference_locations (LIKE courier_locations)")
    yield db


async def test_binary_copy_stores_every_column_as_the_datetime_path_did(partitioned: asyncpg.Pool) -> None:
    data = batches()
    rows: list[bytes] = []
    for courier_id, points, received in data:
        assert encode_points(courier_id, points, received, rows) == 0
    for start in range(0, len(rows), 50):
        await store.copy_history(partitioned, rows[start:start + 50])
    async with partitioned.acquire() as conn:
        await conn.copy_records_to_table("reference_locations", records=old_rows(data), columns=OLD_ORDER)
        new = await conn.fetch(f"SELECT {COLUMNS} FROM courier_locations ORDER BY seq")
        old = await conn.fetch(f"SELECT {COLUMNS} FROM reference_locations ORDER BY seq")
        partitions = await conn.fetch(
            "SELECT tableoid::regclass::text AS p, count(*) AS n FROM courier_locations GROUP BY 1 ORDER BY 1"
        )
    assert len(new) == len(rows) == sum(len(points) for _, points, _ in data)
    for got, want in zip(new, old, strict=True):
        assert comparable(got) == comparable(want), (dict(got), dict(want))
    assert [p["p"] for p in partitions] == [store.partition_name(DAY_ONE), store.partition_name(DAY_TWO)]
    by_seq = {r["seq"]: r for r in new}
    assert by_seq[2**63 - 1]["courier_id"] == "c-seq"
    nulls = [r for r in new if r["courier_id"] == "c-nulls"]
    assert [(r["accuracy"] is None, r["speed"] is None, r["heading"] is None) for r in nulls] == [
        (bool(m & 1), bool(m & 2), bool(m & 4)) for m in range(8)
    ]
    rolled = next(r for r in new if r["courier_id"] == "c-micros")
    assert rolled["recorded_at"] == datetime(2026, 11, 25, tzinfo=UTC)  # 0.4 µs before midnight, rounded up


def service(db: asyncpg.Pool, redis, clock: ManualClock, **config: int) -> TrackingService:
    def refuse(token: str):
        raise AssertionError("no sockets here")

    return TrackingService(db, redis, "hist:", clock, TrackingConfig(**config), refuse)


def points(first_seq: int, count: int, ts: float) -> list[tuple[Point, bool]]:
    return [(Point(52.5, 13.4, ts + i, first_seq + i, 10.0, None, 90.0), True) for i in range(count)]


async def stored_seqs(db: asyncpg.Pool) -> list[int]:
    return [r["seq"] for r in await db.fetch("SELECT seq FROM courier_locations ORDER BY seq")]


async def test_a_write_without_its_partition_keeps_the_rows_creates_the_partitions_and_stores_them_next_time(
    db: asyncpg.Pool, redis
) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    tracking = service(db, redis, clock, history_batch_rows=3)
    now = clock.now().timestamp()
    tracking.keep_history("c1", points(1, 7, now - 60), now)
    await tracking.write_history()  # no partition yet: the first chunk fails, nothing is lost
    assert len(tracking.history) == 7 and tracking.stats["history_rows"] == 0
    assert await stored_seqs(db) == []
    await tracking.write_history()
    assert tracking.history == [] and tracking.stats["history_rows"] == 7
    assert await stored_seqs(db) == [1, 2, 3, 4, 5, 6, 7]
    await tracking.hub.close()


async def test_a_backlog_beyond_its_limit_drops_the_oldest_rows(db: asyncpg.Pool, redis) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    tracking = service(db, redis, clock, history_batch_rows=2, history_max_backlog=4)
    now = clock.now().timestamp()
    tracking.keep_history("c1", points(1, 6, now - 60), now)
    await tracking.write_history()
    assert len(tracking.history) == 4 and tracking.stats["history_dropped"] == 2
    await tracking.write_history()
    assert await stored_seqs(db) == [3, 4, 5, 6]
    await tracking.hub.close()


async def test_a_point_out_of_the_columns_range_is_left_out_and_the_rest_are_stored(db: asyncpg.Pool, redis) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    tracking = service(db, redis, clock)
    await tracking.maintain_partitions()
    now = clock.now().timestamp()
    kept = points(1, 4, now - 60)
    kept[1] = (Point(52.5, 13.4, now - 59, 2, 1e300), False)  # accuracy beyond real
    kept[2] = (Point(52.5, 13.4, now - 58, 2**64 - 1), True)  # seq beyond bigint (msgspec decodes it)
    tracking.keep_history("c1", kept, now)
    assert tracking.stats["history_dropped"] == 2
    await tracking.write_history()
    assert await stored_seqs(db) == [1, 4]
    await tracking.hub.close()
