"""The event envelope and the outbox writer.

A state change and the event announcing it are written in one transaction:
`write_event(conn, ...)` inserts into `outbox` on the caller's connection, so a
rolled-back transaction leaves no event behind. The relay publishes later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from kernel.ids import new_id


class Event(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    occurred_at: datetime
    aggregate_id: str | None = None
    data: dict[str, Any] = {}


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes | str) -> Event:
    return _decoder.decode(raw)


def make_event(type_: str, data: dict[str, Any], aggregate_id: str | None = None) -> Event:
    return Event(
        id=new_id("evt"), type=type_, occurred_at=datetime.now(UTC), aggregate_id=aggregate_id, data=data
    )


async def write_event(
    conn: asyncpg.Connection, type_: str, data: dict[str, Any], aggregate_id: str | None = None
) -> Event:
    """Record an event in the caller's transaction. Returns the envelope as stored."""
    event = make_event(type_, data, aggregate_id)
    await conn.execute(
        "INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload) VALUES ($1, $2, $3, $4, $5)",
        event.id,
        event.type,
        event.aggregate_id,
        event.occurred_at,
        encode_event(event).decode(),
    )
    return event


async def write_events(conn: asyncpg.Connection, events: list[Event]) -> None:
    """Record several pre-built events, in this order, with one statement."""
    if not events:
        return
    # One INSERT over arrays: executemany sends a bind/execute per row, this plans once for all.
    await conn.execute(
        """INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload)
           SELECT event_id, type, aggregate_id, occurred_at, payload::jsonb
             FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[])
                  WITH ORDINALITY AS e(event_id, type, aggregate_id, occurred_at, payload, n)
            ORDER BY n""",
        [e.id for e in events], [e.type for e in events], [e.aggregate_id for e in events],
        [e.occurred_at for e in events], [encode_event(e).decode() for e in events],
    )
