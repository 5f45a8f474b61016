"""Location history rows in PostgreSQL's binary COPY format, encoded as the points arrive.

Each accepted point becomes one `bytes` row at once (no datetime objects, no tuple kept
for a later encoding pass); a write joins a chunk of rows between the COPY header and
trailer and sends it as it is. Event-loop CPU per point, keep + write (bench/history_copy.py):
about 0.6x of building `(courier_id, datetime, datetime, ...)` tuples for asyncpg's
`copy_records_to_table` at one point a frame, 0.5x at 20. Keeping float tuples and encoding
each chunk at write time, a numpy encoder and `INSERT ... SELECT FROM unnest(arrays)` each
measured slower than encoding on receipt.

Row layout (`COLUMNS` order; courier_id last, so the fixed part is one struct):
int16 field count, then per field int32 length and the value in its binary send format:
timestamptz = int64 microseconds since 2000-01-01 UTC, bigint = int64, double precision
= float8, boolean = one byte, real = float4, text = UTF-8 bytes; NULL = length -1 and no
bytes. Microseconds are rounded exactly as `datetime.fromtimestamp(ts, UTC)` rounds them
(half to even on the fraction), which is what the datetime path stored before.

Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from tracking.messages import Point

# The column types are those of tracking/migrations/0001_tracking.sql (courier_locations).
COLUMNS = ("received_at", "recorded_at", "seq", "lat", "lng", "dispatchable", "accuracy", "speed", "heading",
           "courier_id")

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, header extension length
TRAILER = struct.pack(">h", -1)

_EPOCH_2000_US = 946_684_800 * 1_000_000  # PostgreSQL's epoch in unix microseconds
_NULL = struct.pack(">i", -1)
# count, received_at, recorded_at, seq, lat, lng, dispatchable, accuracy, speed, heading, len(courier_id)
_FULL = struct.Struct(">h iq iq iq id id i? if if if i")
# The same up to dispatchable; the rest of a row with a missing accuracy, speed or heading is built in parts.
_FIXED = struct.Struct(">h iq iq iq id id i?")
_REAL = struct.Struct(">if")
_LENGTH = struct.Struct(">i")


def pg_microseconds(unix: float) -> int:
    """Microseconds since 2000-01-01 UTC, rounded as `datetime.fromtimestamp(unix, UTC)` rounds."""
    whole = int(unix)  # toward zero, like math.modf: the fraction keeps the sign of `unix`
    return whole * 1_000_000 + round((unix - whole) * 1e6) - _EPOCH_2000_US


def encode_points(courier_id: str, points: Sequence[tuple[Point, bool]], received: float, out: list[bytes]) -> int:
    """Append one COPY row per `(point, dispatchable)` to `out`. Returns how many points could not
    be encoded and were left out: a value its column cannot hold (accuracy, speed or heading
    finite but beyond `real`, seq beyond `bigint`), which the datetime path failed the whole write on."""
    epoch = _EPOCH_2000_US
    try:
        name = courier_id.encode()
        whole = int(received)  # pg_microseconds inlined, here and below: this runs per frame and per point
        received_us = whole * 1_000_000 + round((received - whole) * 1e6) - epoch
    except (ValueError, OverflowError):  # a lone surrogate in the id; a non-finite clock
        return len(points)
    size = len(name)
    full = _FULL.pack
    append = out.append
    dropped = 0
    for p, ok in points:
        ts = p.ts
        accuracy, speed, heading = p.accuracy, p.speed, p.heading
        try:
            whole = int(ts)
            us = whole * 1_000_000 + round((ts - whole) * 1e6) - epoch
            if accuracy is not None and speed is not None and heading is not None:
                append(full(10, 8, received_us, 8, us, 8, p.seq, 8, p.lat, 8, p.lng, 1, ok,
                            4, accuracy, 4, speed, 4, heading, size) + name)
            else:
                append(b"".join((
                    _FIXED.pack(10, 8, received_us, 8, us, 8, p.seq, 8, p.lat, 8, p.lng, 1, ok),
                    _real(accuracy), _real(speed), _real(heading), _LENGTH.pack(size), name,
                )))
        except (ValueError, OverflowError, struct.error):
            dropped += 1
    return dropped


def _real(value: float | None) -> bytes:
    return _NULL if value is None else _REAL.pack(4, value)


def copy_data(rows: Sequence[bytes]) -> bytes:
    """A whole binary COPY stream of `rows` (from `encode_points`)."""
    return b"".join((HEADER, *rows, TRAILER))
