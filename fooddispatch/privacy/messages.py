"""Wire formats of the privacy routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from kernel.fielddoc import doc

AccountId = Annotated[str, Meta(pattern="^[A-Za-z0-9_]{1,64}$")]
# Why an operator reads or erases someone's data: required of operators, kept in the access log.
REASON_LENGTH = (3, 500)
Reason = Annotated[str, Meta(min_length=REASON_LENGTH[0], max_length=REASON_LENGTH[1])]
CUSTOMER_ID = "cus_01JE3ZK4Q8N3W6V5T2R1P0M9XA"
OPERATOR_ID = "opr_01JE3ZK4Q8N3W6V5T2R1P0M9XB"
AT = "2026-05-20T12:00:00Z"

# Operators' views of one customer or courier: (method, route) -> the path parameter naming the person.
# An operator must give `reason` (as `Reason`) for a person's id; the read goes to the access log
# (fooddispatch/privacy/reads.py). The OpenAPI document adds the parameter to these routes.
PERSON_READS: dict[tuple[str, str], str] = {
    ("GET", "/v1/ops/couriers/{courier_id}"): "courier_id",
    ("GET", "/v1/wallets/{owner}"): "owner",
    ("GET", "/v1/wallets/{owner}/transactions"): "owner",
}
REASON_EXAMPLE = "support ticket 4711: the customer asked for a copy"
# Operators' views of an order (the customer's address and note, the courier and its track): (method, route) ->
# (the path parameter naming the order, the purpose logged when no reason is given). The reason is optional
# here (the console and support tools read orders all day); every operator read is logged all the same, for
# the order's customer and courier (fooddispatch/privacy/reads.py). Lists of orders show ids only: not logged.
ORDER_READS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/v1/orders/{order_id}"): ("order_id", "operations: order view"),
    ("GET", "/v1/ops/orders/{order_id}"): ("order_id", "operations: order timeline"),
}


class ExportQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Whose archive: customers and couriers get their own; an operator names the person and says why."""

    account_id: Annotated[AccountId | None, doc(
        "Operators: the customer's or courier's account id (required of them); others leave it out",
        CUSTOMER_ID)] = None
    reason: Annotated[Reason | None, doc(
        "Operators: why they read the person's data (required of them; kept in the access log)",
        REASON_EXAMPLE)] = None


class PrivacyExport(Struct, frozen=True):
    """Everything held about a customer or courier, one part per package (`account`, `orders`,
    `payments`, `tracking`, `dispatch`), plus the erasure record and who read their data."""

    account_id: Annotated[str, doc("Whose data this is", CUSTOMER_ID)]
    role: Annotated[str, doc("The person's role: `customer` or `courier`", "customer")]
    generated_at: Annotated[datetime, doc("When the archive was read (one snapshot of every part)", AT)]
    parts: Annotated[dict[str, Any], doc(
        "One part per package: `account` (name, email, dates), `orders` (orders with lines, history, money moves "
        "and refunds, addresses, support actions; a courier's deliveries), `payments` (cards as brand, last4 and "
        "fingerprint only, intents, refunds, credits; earnings and payouts), `tracking` (a courier's track, "
        "shifts, actions, device keys; the courier positions a customer was shown), `dispatch` (a courier's "
        "offers), `erasure` (the erasure record or null) and `reads_of_your_data` (the access log about them)",
        {"account": {"id": CUSTOMER_ID, "role": "customer", "email": "ada@example.com", "name": "Ada"},
         "orders": {"orders": [], "addresses": []}, "erasure": None})]


class ErasureIn(Struct, frozen=True, forbid_unknown_fields=True):
    """Whose data to erase: customers and couriers erase their own (`{}`); an operator names the person
    and says why."""

    account_id: Annotated[AccountId | None, doc(
        "Operators: the customer's or courier's account id (required of them); others leave it out",
        CUSTOMER_ID)] = None
    reason: Annotated[Reason | None, doc(
        "Operators: why the data is erased (required of them; kept with the erasure record)",
        "GDPR art. 17 request by letter")] = None


class ErasureOut(Struct, frozen=True):
    """The erasure as recorded: who asked, when, why, and what each package did (counts)."""

    account_id: Annotated[str, doc("Whose data was erased (the id stays on orders, payments, the ledger)",
                                   CUSTOMER_ID)]
    role: Annotated[str, doc("The person's role: `customer` or `courier`", "customer")]
    requested_by: Annotated[str, doc("Who asked: the person themselves or an operator", OPERATOR_ID)]
    requested_by_role: Annotated[str, doc("The asker's role", "operator")]
    reason: Annotated[str, doc("Why (the person's own request when they asked)", "GDPR art. 17 request by letter")]
    requested_at: Annotated[datetime, doc("When the erasure was first asked for", AT)]
    completed_at: Annotated[datetime | None, doc("When it was done; null while under way", AT)]
    summary: Annotated[dict[str, Any], doc(
        "What each package did, counts only (no personal data)",
        {"account": 1, "orders": 3, "dispatch_orders": 3, "payments": {"payment_methods": 1},
         "tracking": {"orders": 3}, "idempotency_records": 5})]


class AccessLogQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Filtering and paging the access log, oldest first."""

    subject_id: Annotated[AccountId | None, doc("Only the reads of this person's data", CUSTOMER_ID)] = None
    actor_id: Annotated[AccountId | None, doc("Only this reader's reads", OPERATOR_ID)] = None
    cursor: Annotated[Annotated[int, Meta(ge=0)] | None, doc(
        "Where to continue: the `next_cursor` of the previous page; absent for the first page", 1042)] = None
    limit: Annotated[Annotated[int, Meta(ge=1, le=500)], doc("How many entries to return at most", 100)] = 100


class AccessEntry(Struct, frozen=True):
    """One read of a person's data."""

    id: Annotated[int, doc("The entry's number (entries are numbered in the order they were written)", 1042)]
    actor_id: Annotated[str, doc("Who read", OPERATOR_ID)]
    actor_role: Annotated[str, doc("The reader's role", "operator")]
    subject_id: Annotated[str, doc("Whose data was read", CUSTOMER_ID)]
    what: Annotated[str, doc("What was read: `privacy.export` or an operator route", "GET /v1/wallets/{owner}")]
    reason: Annotated[str, doc("Why, as the reader gave it", REASON_EXAMPLE)]
    at: Annotated[datetime, doc("When", AT)]
    request_id: Annotated[str | None, doc("The request's id (X-Request-Id), to find it in the logs",
                                          "req_01JE3ZK4Q8N3W6V5T2R1P0M9XC")] = None


class AccessLogPage(Struct, frozen=True):
    """A page of the access log."""

    items: Annotated[list[AccessEntry], doc("The entries of this page", [])]
    next_cursor: Annotated[int | None, doc("Pass as `cursor` for the next page; null on the last page", 1042)] = None
