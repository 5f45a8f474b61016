"""Wire formats of the operator routes that are the console's own (the dead letters)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from kernel.eventstore import DeadLetter
from kernel.pagination import id_cursor

Limit = Annotated[int, Meta(ge=1, le=500)]


class DeadLetterQuery(Struct, frozen=True, forbid_unknown_fields=True):
    group: str | None = None  # one consumer group, e.g. "orders"
    state: Literal["parked", "retrying"] = "parked"  # parked: given up on; retrying: still being retried
    cursor: Annotated[str, id_cursor("dlq")] | None = None  # malformed: 400 cursor_invalid, like every list
    limit: Limit = 100


class DeadLetterPage(Struct, frozen=True):
    items: list[DeadLetter]
    next_cursor: str | None = None


class ReplayOut(Struct, frozen=True):
    replayed: DeadLetter
