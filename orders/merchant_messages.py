"""Wire formats of the merchant's money routes of orders: statements and merchant refunds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from kernel.ids import id_pattern
from kernel.pagination import id_cursor
from orders.messages import MissingLine

Units = Annotated[int, Meta(description="integer minor units of the line's currency", examples=[2295])]


class StatementQuery(msgspec.Struct, forbid_unknown_fields=True):
    """The period and page of a statement."""

    from_: Annotated[date, Meta(description="first day of the period (UTC), YYYY-MM-DD",
                                examples=["2026-12-01"])] = msgspec.field(name="from")
    to: Annotated[date, Meta(description="last day of the period (UTC, included), YYYY-MM-DD",
                             examples=["2026-12-31"])]
    limit: Annotated[int, Meta(ge=1, le=100, description="lines per page", examples=[50])] = 50
    starting_after: Annotated[str, id_cursor("ord", "the last order id of the previous page"),
                              Meta(examples=["ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])] | None = None
    format: Annotated[Literal["json", "csv"], Meta(
        description="csv: every line of the period as text/csv (no pagination)", examples=["json"])] = "json"
    tenant_id: Annotated[str, Meta(pattern=id_pattern("ten"), description="operators: the tenant whose "
                                   "statement to read; staff: their own only (another is 404)",
                                   examples=["ten_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])] | None = None


class StatementLineOut(msgspec.Struct):
    """One order's money in the period, from the restaurant's point of view (minor units)."""

    order_id: Annotated[str, Meta(description="the order", examples=["ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])]
    currency: Annotated[str, Meta(description="ISO 4217 currency of the amounts", examples=["EUR"])]
    at: Annotated[datetime, Meta(description="the first of the order's money movements in the period",
                                examples=["2026-12-07T18:00:00Z"])]
    gross: Annotated[int, Meta(description="what the customer was charged (minor units)", examples=[3658])]
    tax: Annotated[int, Meta(description="tax in it, owed to the tax authority", examples=[189])]
    tips_passed_through: Annotated[int, Meta(description="the tip in it, passed to the courier", examples=[200])]
    commission: Annotated[int, Meta(description="the platform's commission on the food sales", examples=[405])]
    commission_bps: Annotated[int, Meta(description="the commission rate applied (basis points)",
                                        examples=[1500])]
    fees: Annotated[int, Meta(description="delivery, service and small-order fees net of discounts: what "
                                          "the courier and the platform keep beside tips and commission",
                              examples=[569])]
    refunds_borne_by_platform: Annotated[int, Meta(description="refunded in the period at the platform's cost",
                                                   examples=[0])]
    refunds_borne_by_restaurant: Annotated[int, Meta(description="refunded in the period at the restaurant's "
                                                     "cost (merchant refunds)", examples=[500])]
    net: Annotated[int, Meta(description="what the period added to the restaurant's balance for the order",
                             examples=[1795])]


class StatementTotals(msgspec.Struct):
    """The period's figures in one currency: the sums of the lines' (minor units)."""

    currency: Annotated[str, Meta(description="ISO 4217 currency of the amounts", examples=["EUR"])]
    gross: Units
    tax: Units
    tips_passed_through: Units
    commission: Units
    fees: Units
    refunds_borne_by_platform: Units
    refunds_borne_by_restaurant: Units
    net: Units


class StatementOut(msgspec.Struct):
    """A tenant's statement for a period: totals per currency and a page of order lines."""

    tenant_id: Annotated[str, Meta(description="the tenant", examples=["ten_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])]
    period_from: Annotated[date, Meta(description="first day (UTC)", examples=["2026-12-01"])]
    period_to: Annotated[date, Meta(description="last day (UTC, included)", examples=["2026-12-31"])]
    totals: Annotated[list[StatementTotals], Meta(description="the whole period's figures, per currency")]
    items: Annotated[list[StatementLineOut], Meta(description="one line per order, by order id")]
    has_more: Annotated[bool, Meta(description="whether another page follows", examples=[False])]
    next_cursor: Annotated[str | None, Meta(description="pass as starting_after for the next page",
                                                   examples=["ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])] = None
    object: Annotated[str, Meta(description="always `merchant_statement`", examples=["merchant_statement"])] = (
        "merchant_statement")


# The reason codes a merchant refund takes (a fixed list, so reports can group by them).
RefundReason = Literal["missing_items", "wrong_items", "quality", "late_delivery", "customer_request", "goodwill"]


class MerchantRefundRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A refund the restaurant gives its customer, from its own balance."""

    reason: Annotated[RefundReason, Meta(description="why the restaurant refunds", examples=["quality"])]
    amount: Annotated[int, Meta(
        ge=1, le=100_000_000, examples=[500],
        description="a partial refund of this many minor units; neither `amount` nor `lines`: all that is left",
    )] | None = None
    lines: Annotated[list[MissingLine], Meta(min_length=1, max_length=100, description="refund these lines' "
                                             "value (and the tax on it where added on top) instead of an amount",
                                             examples=[[{"line_no": 1, "quantity": 1}]])] | None = None


class MerchantRefundOut(msgspec.Struct):
    """A merchant refund as done."""

    order_id: Annotated[str, Meta(description="the order refunded", examples=["ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA"])]
    amount: Annotated[int, Meta(description="refunded now (minor units)", examples=[500])]
    currency: Annotated[str, Meta(description="ISO 4217 currency", examples=["EUR"])]
    reason: Annotated[str, Meta(description="the reason code given", examples=["quality"])]
    refunds: Annotated[list[str], Meta(description="the payments refund ids (one per charge of the order it drew "
                                       "on)", examples=[["re_01JE3ZK4Q8N3W6V5T2R1P0M9XA"]])]
    order_refunded: Annotated[int, Meta(description="the order's `refunded` after it", examples=[500])]
    borne_by: Annotated[str, Meta(description="who pays the refund: the restaurant's balance",
                                    examples=["restaurant"])] = "restaurant"
    object: Annotated[str, Meta(description="always `merchant_refund`", examples=["merchant_refund"])] = (
        "merchant_refund")
