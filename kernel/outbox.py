"""The event envelope, the typed payloads of events, and the outbox writer.

A state change and the event announcing it are written in one transaction:
`announce(conn, payload, aggregate_id)` (or `write_event(conn, ...)`) inserts into `outbox` on
the caller's connection, so a rolled-back transaction leaves no event behind. The relay
publishes later.

Each event type's payload is an `EventData` Struct in its producer's `event_types.py`
(docs/EVENTS.md is generated from them). The envelope (`Event`) carries the payload in its wire
form, a plain dict: producers build it from the Struct (`EventData.to_data`) and consumers decode
it back once, at the edge of their handler (`on(OrderPlaced, handler)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

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
    return await _insert(conn, make_event(type_, data, aggregate_id))


async def announce(conn: asyncpg.Connection, payload: EventData, aggregate_id: str | None = None) -> Event:
    """Record the event of a typed payload in the caller's transaction. Returns the envelope as stored."""
    return await _insert(conn, payload.event(aggregate_id))


async def _insert(conn: asyncpg.Connection, event: Event) -> Event:
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


# ---- typed payloads ------------------------------------------------------------------------------


def _times_as_iso(value: Any) -> Any:
    """Datetimes as `datetime.isoformat()` ("+00:00"), the form events have always had (msgspec
    would write "Z"): merchants' webhooks carry event data byte for byte. Tuples become lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _times_as_iso(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_times_as_iso(v) for v in value]
    return value


D = TypeVar("D", bound="EventData")


class EventData(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of one event type. A subclass names its type in `event_type` and declares its
    fields in wire order; its docstring is the type's meaning in docs/EVENTS.md. Fields a consumer
    does not know are ignored when decoding, so a producer may add one (with a default) freely."""

    event_type: ClassVar[str]

    def to_data(self) -> dict[str, Any]:
        """The wire form, as `Event.data` carries it."""
        return {k: _times_as_iso(v) for k, v in msgspec.to_builtins(self, builtin_types=(datetime,)).items()}

    def event(self, aggregate_id: str | None = None) -> Event:
        """A new envelope for this payload (not written yet: `write_events`, or `announce` at once)."""
        return make_event(self.event_type, self.to_data(), aggregate_id)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        """Decode an envelope's data; raises `msgspec.ValidationError` on data that does not fit."""
        return msgspec.convert(data, cls)


class MoneyData(msgspec.Struct, frozen=True):
    """Money as events carry it: integer minor units of an ISO 4217 currency."""

    amount: int
    currency: str


class PointData(msgspec.Struct, frozen=True):
    """A point as events carry it (WGS 84 degrees)."""

    lat: float
    lng: float


TypedHandler = Callable[[asyncpg.Connection, Event, D], Awaitable[None]]


def on(kind: type[D], handler: TypedHandler[D]) -> tuple[str, Callable[[asyncpg.Connection, Event], Awaitable[None]]]:
    """A consumer's handler for `kind`'s event type, `(type, handler)` for its handlers dict: the
    envelope's data is decoded into `kind` once, before `handler` runs. Data that does not fit
    raises `msgspec.ValidationError` there, which the consumer treats like any failing handler
    (retried, then parked as a dead letter)."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        await handler(conn, event, msgspec.convert(event.data, kind))

    return kind.event_type, handle


def by_type(*kinds: type[EventData]) -> dict[str, type[EventData]]:
    """The payload type of each event type (the envelope's `type` is the union's tag)."""
    found: dict[str, type[EventData]] = {}
    for kind in kinds:
        if kind.event_type in found:
            raise ValueError(f"two payload types for {kind.event_type}")
        found[kind.event_type] = kind
    return found
