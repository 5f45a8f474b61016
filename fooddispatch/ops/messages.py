"""Wire formats of the operator routes that are the console's own (the dead letters), and the frames of its
socket (`GET /v1/ops/ws`), declared here for the AsyncAPI document (fooddispatch/asyncapi.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from kernel.eventstore import DeadLetter
from kernel.fielddoc import doc
from kernel.pagination import id_cursor

Limit = Annotated[int, Meta(ge=1, le=500)]


class DeadLetterQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Filtering and paging dead letters."""

    group: Annotated[str | None, doc("Only one consumer group's", "orders")] = None
    state: Annotated[Literal["parked", "retrying"], doc(  # parked: given up on; retrying: still being retried
        "`parked`: given up on; `retrying`: still being retried", "parked")] = "parked"
    cursor: Annotated[Annotated[str, id_cursor("dlq")] | None,  # malformed: 400 cursor_invalid, like every list
                      doc("The `next_cursor` of the previous page", "dlq_01JE3ZK4Q8N3W6V5T2R1P0M9XA")] = None
    limit: Annotated[Limit, doc("How many at most", 100)] = 100


class DeadLetterPage(Struct, frozen=True):
    """A page of dead letters."""

    items: Annotated[list[DeadLetter], doc("The dead letters of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page",
                                           "dlq_01JE3ZK4Q8N3W6V5T2R1P0M9XA")] = None


class ReplayOut(Struct, frozen=True):
    """A replayed dead letter."""

    replayed: Annotated[DeadLetter, doc("The dead letter, as it was before the replay")]


# ---- the console socket's frames -------------------------------------------------------------------------
# The projection (fooddispatch/ops/projection.py) builds the snapshot; `Projection.frame` converts it into
# these types, which refuse a field they do not declare, so the frame and its documentation cannot part.

class ConsoleKpis(Struct, frozen=True, forbid_unknown_fields=True):
    """The delivery KPIs (fooddispatch/ops/kpis.py); a percentage or time is null when nothing counts yet."""

    orders_per_min: float
    on_time_pct: float | None
    click_to_door_min: float | None
    click_to_door_p90_min: float | None
    utilisation_pct: float | None
    offer_acceptance_pct: float | None
    open_orders: int
    late_orders: int
    delivered: int
    couriers_online: int
    couriers_busy: int
    offers: int
    events: int
    time_scale: float  # simulated seconds per real second (the demo's --speed)


class ConsoleMoney(Struct, frozen=True, forbid_unknown_fields=True):
    amount: int  # minor units
    currency: str


class ConsoleOrder(Struct, frozen=True, forbid_unknown_fields=True):
    """An open order, or one of the last ended ones. Times are epoch seconds; `pickup`/`dropoff` are [lat, lng]."""

    id: str
    status: str
    store_id: str | None
    pickup: list[float] | None
    dropoff: list[float] | None
    courier_id: str | None
    placed_at: float | None
    promised_at: float | None
    delivered_at: float | None
    total: ConsoleMoney | None
    late: bool | None


class ConsoleCourier(Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    state: Literal["idle", "busy", "offline", "stale", "break"]
    lat: float | None
    lng: float | None
    vehicle: str | None
    order_ids: list[str]
    delivered: int


class ConsoleStore(Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    status: Literal["online", "paused"]
    tenant_id: str


class ConsoleHeatCell(Struct, frozen=True, forbid_unknown_fields=True):
    """Orders waiting for a courier in an H3 cell against the idle couriers there."""

    cell: str
    orders: int
    couriers: int
    pressure: float
    boundary: list[list[float]]  # the cell's corners, [lat, lng]


class ConsoleSnapshot(Struct, frozen=True, tag_field="type", tag="snapshot", forbid_unknown_fields=True):
    """The console's whole view: first on connect, then every second. `at` is epoch seconds."""

    at: float
    kpis: ConsoleKpis
    orders: list[ConsoleOrder]
    couriers: list[ConsoleCourier]
    stores: list[ConsoleStore]
    heat: list[ConsoleHeatCell]
    region: str


class ConsoleLive(Struct, frozen=True, tag_field="type", tag="live"):
    """A message published on the ops Redis channel (`{prefix}ops`), forwarded as it was published; a
    `courier_position` one also moves the courier on the map. Nothing in this server publishes there: it is
    for tools beside it."""

    message: dict[str, Any]
