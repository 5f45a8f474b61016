"""Wire formats of the privacy routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

AccountId = Annotated[str, Meta(pattern="^[A-Za-z0-9_]{1,64}$")]
# Why an operator reads or erases someone's data: required of operators, kept in the access log.
Reason = Annotated[str, Meta(min_length=3, max_length=500)]  # REASON_LENGTH


# Operators' views of one customer or courier: (method, route) -> the path parameter naming the person.
# An operator must give `reason` (as `Reason`) for a person's id; the read goes to the access log
# (fooddispatch/privacy/reads.py). The OpenAPI document adds the parameter to these routes.
PERSON_READS: dict[tuple[str, str], str] = {
    ("GET", "/v1/ops/couriers/{courier_id}"): "courier_id",
    ("GET", "/v1/wallets/{owner}"): "owner",
    ("GET", "/v1/wallets/{owner}/transactions"): "owner",
}
REASON_LENGTH = (3, 500)


class ExportQuery(Struct, frozen=True, forbid_unknown_fields=True):
    account_id: AccountId | None = None  # operators: whose data (customers and couriers get their own)
    reason: Reason | None = None  # operators: why (required of them)


class PrivacyExport(Struct, frozen=True):
    """Everything held about a customer or courier, one part per package (`account`, `orders`,
    `payments`, `tracking`, `dispatch`), plus the erasure record and who read their data."""

    account_id: str
    role: str
    generated_at: datetime
    parts: dict[str, Any]


class ErasureIn(Struct, frozen=True, forbid_unknown_fields=True):
    account_id: AccountId | None = None  # operators: whose data (customers and couriers erase their own)
    reason: Reason | None = None  # operators: why (required of them)


class ErasureOut(Struct, frozen=True):
    """The erasure as recorded: who asked, when, why, and what each package did (counts)."""

    account_id: str
    role: str
    requested_by: str
    requested_by_role: str
    reason: str
    requested_at: datetime
    completed_at: datetime | None
    summary: dict[str, Any]


class AccessLogQuery(Struct, frozen=True, forbid_unknown_fields=True):
    subject_id: AccountId | None = None  # one person's reads only
    actor_id: AccountId | None = None  # one reader's reads only
    cursor: Annotated[int, Meta(ge=0)] | None = None  # the last id of the previous page
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class AccessEntry(Struct, frozen=True):
    id: int
    actor_id: str
    actor_role: str
    subject_id: str
    what: str
    reason: str
    at: datetime
    request_id: str | None = None


class AccessLogPage(Struct, frozen=True):
    items: list[AccessEntry]
    next_cursor: int | None = None
