"""The history encoder (tracking/history.py) without a server: timestamp rounding against the
datetime path it replaced, the stream framing, and points its columns cannot hold.
Stored values are checked against the real table in tests/integration/tracking."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from tracking.history import COLUMNS, HEADER, TRAILER, copy_data, encode_points, pg_microseconds
from tracking.messages import Point

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def datetime_path(unix: float) -> int:
    """Microseconds since 2000 as asyncpg encodes `datetime.fromtimestamp(unix, UTC)`."""
    delta = datetime.fromtimestamp(unix, UTC) - PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@given(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False))
@example(1764028800 + 1 / 128)  # 7812.5 µs exactly: half to even
@example(1764028800 + 3 / 128)  # 23437.5 µs
@example(1764028799.9999996)  # rounds up into the next second (and day)
@example(-0.5 / 128)  # before 1970: the fraction is negative
@example(-1.9999995)
@example(946684800.0)
def test_microseconds_round_as_datetime_fromtimestamp(unix: float) -> None:
    assert pg_microseconds(unix) == datetime_path(unix)


def test_a_row_is_a_field_count_then_length_prefixed_values_in_column_order() -> None:
    rows: list[bytes] = []
    received = 946684801.5
    encode_points("é", [(Point(1.5, -2.5, 946684800.25, 7, None, 3.0, None), True)], received, rows)
    fields = {
        "received_at": struct.pack(">q", 1_500_000), "recorded_at": struct.pack(">q", 250_000),
        "seq": struct.pack(">q", 7), "lat": struct.pack(">d", 1.5), "lng": struct.pack(">d", -2.5),
        "dispatchable": b"\x01", "accuracy": None, "speed": struct.pack(">f", 3.0), "heading": None,
        "courier_id": "é".encode(),
    }
    expected = struct.pack(">h", len(COLUMNS)) + b"".join(
        struct.pack(">i", -1) if fields[c] is None else struct.pack(">i", len(fields[c])) + fields[c] for c in COLUMNS
    )
    assert rows == [expected]
    assert copy_data(rows) == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + expected + b"\xff\xff"
    assert copy_data([]) == HEADER + TRAILER


def test_points_the_columns_cannot_hold_are_counted_and_left_out() -> None:
    rows: list[bytes] = []
    points = [
        (Point(1.0, 2.0, 1764028800.0, 1, 5.0, 1.0, 2.0), True),
        (Point(1.0, 2.0, 1764028801.0, 2, 1e300, 1.0, 2.0), True),  # beyond real
        (Point(1.0, 2.0, 1764028802.0, 3, None, 1e39, None), True),  # beyond real, on the path with NULLs
        (Point(1.0, 2.0, 1764028803.0, 2**64 - 1), True),  # beyond bigint
        (Point(1.0, 2.0, 1764028804.0, 5, 3.4028234e38), False),  # the largest real: fine
    ]
    assert encode_points("c1", points, 1764028805.0, rows) == 3
    assert len(rows) == 2
    assert encode_points("c\ud800", points[:1], 1764028805.0, rows) == 1  # not UTF-8
    assert len(rows) == 2
