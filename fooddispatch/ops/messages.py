"""Wire formats of the operator routes that are the console's own (the dead letters)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from kernel.eventstore import DeadLetter
from kernel.fielddoc import doc
from kernel.ids import id_pattern

Limit = Annotated[int, Meta(ge=1, le=500)]


class DeadLetterQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Filtering and paging dead letters."""

    group: Annotated[str | None, doc("Only one consumer group's", "orders")] = None
    state: Annotated[Literal["parked", "retrying"], doc(  # parked: given up on; retrying: still being retried
        "`parked`: given up on; `retrying`: still being retried", "parked")] = "parked"
    cursor: Annotated[Annotated[str, Meta(pattern=id_pattern("dlq"))] | None,  # malformed: 422, like every list
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
