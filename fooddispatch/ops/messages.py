"""Wire formats of the operator routes that are the console's own (the dead letters), and the frames of its
socket (`GET /v1/ops/ws`), declared here for the AsyncAPI document (fooddispatch/asyncapi.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from kernel.eventstore import DeadLetter
from kernel.ids import id_pattern

Limit = Annotated[int, Meta(ge=1, le=500)]


class DeadLetterQuery(Struct, frozen=True, forbid_unknown_fields=True):
    group: str | None = None  # one consumer group, e.g. "orders"
    state: Literal["parked", "retrying"] = "parked"  # parked: given up on; retrying: still being retried
    cursor: Annotated[str, Meta(pattern=id_pattern("dlq"))] | None = None  # malformed: 422, like every list
    limit: Limit = 100


class DeadLetterPage(Struct, frozen=True):
    items: list[DeadLetter]
    next_cursor: str | None = None


class ReplayOut(Struct, frozen=True):
    replayed: DeadLetter


# ---- the console socket's frames (built as dicts by fooddispatch/ops/projection.py and feed.py) ------------

class ConsoleSnapshot(Struct, frozen=True, tag_field="type", tag="snapshot"):
    """The console's whole view: first on connect, then every second. `at` is epoch seconds."""

    at: float
    kpis: dict[str, Any]
    orders: list[dict[str, Any]]
    couriers: list[dict[str, Any]]
    stores: list[dict[str, Any]]
    heat: list[dict[str, Any]]
    region: str


class ConsoleLive(Struct, frozen=True, tag_field="type", tag="live"):
    """A message of the ops channel, forwarded as it was published (e.g. a `courier_position`)."""

    message: dict[str, Any]
