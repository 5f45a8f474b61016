"""Wire formats of orders (msgspec Structs): quotes, checkout, orders, restaurant actions,
promos, webhook endpoints, the events API and the tablet feed frames. Money is `{"amount", "currency"}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from catalog.messages import CartLineInput
from kernel.fielddoc import AMOUNT, CURRENCY, LAT, LIMIT, LNG, doc
from kernel.ids import id_pattern
from kernel.pagination import id_cursor

Lat = Annotated[float, Meta(ge=-90, le=90)]
Lng = Annotated[float, Meta(ge=-180, le=180)]
Minor = Annotated[int, Meta(ge=0, le=100_000_000, description="integer minor units of the store's currency")]
PrepTime = Annotated[int, Meta(ge=60, le=4 * 3600, description="seconds")]
Limit = Annotated[int, Meta(ge=1, le=100)]
RejectReason = Literal["store_closed", "item_unavailable", "capacity", "too_busy", "address_problem", "other"]
EventType = Literal[
    "order.placed", "order.accepted", "order.prep_time_changed", "order.ready", "order.rejected",
    "order.expired", "order.cancelled", "order.picked_up", "order.delivered", "order.refunded",
    "store.paused", "store.opened", "menu.published", "item.sold_out",
    "refund.created", "payout.created", "payout.paid", "payout.failed",
]


ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
ORDER_ID = doc("The order's id", f"ord_{ULID}")
STORE_ID = doc("The store's id", f"sto_{ULID}")
TENANT_ID = doc("The tenant (merchant) that owns the store", f"ten_{ULID}")
CUSTOMER_ID = doc("The ordering customer's account id", f"cus_{ULID}")
COURIER_ID = doc("The courier's account id; null until one is assigned", f"cou_{ULID}")
STATUS = doc("The order's status: placed, accepted, preparing, ready, picked_up, delivered, rejected, cancelled "
             "or expired", "accepted")
LINE_NO = doc("The line's number in the cart, from 1", 1)
ITEM_ID = doc("The menu item's id", "margherita")
OPTIONS = doc("The chosen options, as priced: id, name, quantity and price of each",
              [{"option_id": "extra_cheese", "name": "Extra cheese", "quantity": 1, "price": 150}])
PREP_TIME = doc("Preparation time in seconds (60 to 14400)", 900)
LIST_LIMIT = LIMIT
WHEN = "2026-12-07T18:30:00Z"


class MoneyOut(Struct, frozen=True):
    """An amount of money: integer minor units and a currency."""

    amount: Annotated[int, AMOUNT]
    currency: Annotated[str, CURRENCY]


class Point(Struct, frozen=True, forbid_unknown_fields=True):
    """A place on the map (WGS84)."""

    lat: Annotated[Lat, LAT]
    lng: Annotated[Lng, LNG]


# ---- quotes and checkout -------------------------------------------------------------------------

class QuoteRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A cart to price for a drop-off point; the answer is a quote valid for 5 minutes."""

    store_id: Annotated[str, STORE_ID]
    dropoff: Annotated[Point, doc("Where to deliver")]
    address: Annotated[str, Meta(min_length=1, max_length=500),
                       doc("The drop-off address as the courier reads it", "Torstraße 1, 10119 Berlin")]
    lines: Annotated[list[CartLineInput], Meta(min_length=1, max_length=100),
                     doc("The cart", [{"item_id": "margherita", "quantity": 2}])]
    promo_code: Annotated[Annotated[str, Meta(min_length=1, max_length=64)] | None,
                          doc("A promo code to apply (422 promo_rejected when it does not apply)", "WELCOME10")] = None
    tip: Annotated[Minor, doc("Tip for the courier, in minor units", 200)] = 0
    scheduled_for: Annotated[datetime | None, doc("Deliver later, around this time; null: as soon as possible",
                                                  None)] = None
    # Dropoff instructions for the courier ("ring twice"), shown on the tracking page too.
    delivery_note: Annotated[Annotated[str, Meta(max_length=500)] | None,
                             doc("Instructions for the courier, shown on the tracking page too", "ring twice")] = None


class QuoteLine(Struct, frozen=True):
    """A priced cart line."""

    line_no: Annotated[int, LINE_NO]
    item_id: Annotated[str, ITEM_ID]
    name: Annotated[str, doc("The item's name", "Margherita")]
    quantity: Annotated[int, doc("How many", 2)]
    unit_price: Annotated[MoneyOut, doc("Price of one, options included")]
    options: Annotated[list[dict[str, Any]], OPTIONS]
    line_total: Annotated[MoneyOut, doc("unit_price times quantity")]


class FeeLine(Struct, frozen=True):
    """One fee, discount, tax or tip on top of the items."""

    kind: Annotated[Literal["delivery", "busy_area", "service", "small_order", "discount", "membership",
                            "tax", "tip"],
                    doc("What the line is", "delivery")]
    label: Annotated[str, doc("How to show it", "Delivery fee")]
    amount: Annotated[MoneyOut, doc("The amount (a discount is negative)")]


class Window(Struct, frozen=True):
    """A span of time."""

    start: Annotated[datetime, doc("Start (UTC)", "2026-12-07T18:25:00Z")]
    end: Annotated[datetime, doc("End (UTC)", "2026-12-07T18:40:00Z")]


class QuoteOut(Struct, frozen=True):
    """A priced cart: what checkout will charge if nothing changes within its validity."""

    id: Annotated[str, doc("The quote's id, for checkout", f"quo_{ULID}")]
    store_id: Annotated[str, STORE_ID]
    currency: Annotated[str, CURRENCY]
    lines: Annotated[list[QuoteLine], doc("The priced lines", [])]
    subtotal: Annotated[MoneyOut, doc("Sum of the lines")]
    fees: Annotated[list[FeeLine], doc("Fees, discount, tax and tip, each as a line", [])]
    delivery_fee: Annotated[MoneyOut, doc("Delivery fee (by distance band)")]
    busy_area_fee: Annotated[MoneyOut, doc("Surcharge while the area is busy (surge)")]
    service_fee: Annotated[MoneyOut, doc("Service fee")]
    small_order_fee: Annotated[MoneyOut, doc("Fee for a subtotal under the minimum")]
    discount: Annotated[MoneyOut, doc("The promo's discount")]
    tax: Annotated[MoneyOut, doc("Tax (included in the prices when `tax_inclusive`)")]
    tax_inclusive: Annotated[bool, doc("Whether the prices include tax", True)]
    tip: Annotated[MoneyOut, doc("Tip for the courier")]
    total: Annotated[MoneyOut, doc("What the customer pays")]
    surge_multiplier: Annotated[str, doc("The busy-area multiplier applied, as a decimal string", "1.25")]
    promo_code: Annotated[str | None, doc("The promo code applied, if any", "WELCOME10")]
    distance_m: Annotated[int, doc("Road distance store to drop-off in meters", 1800)]
    promised_window: Annotated[Window, doc("When delivery is promised")]
    scheduled_for: Annotated[datetime | None, doc("The scheduled delivery time, if scheduled", None)]
    created_at: Annotated[datetime, doc("When the quote was made (UTC)", "2026-12-07T17:55:00Z")]
    expires_at: Annotated[datetime, doc("Check out before this (UTC); later is 409 quote_expired",
                                        "2026-12-07T18:00:00Z")]


# Pay with exactly one of `payment_method_id` (checkout places a new hold on it) or `payment_intent`:
# a hold the customer already authorized, i.e. the `requires_action` intent a 402 `authentication_required`
# named, confirmed since through `POST /v1/payment_intents/{id}/confirm` (then `requires_capture`).
class CheckoutRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Order a quote: pay with exactly one of `payment_method_id` or `payment_intent`."""

    quote_id: Annotated[str, doc("The quote to order (one order per quote)", f"quo_{ULID}")]
    payment_method_id: Annotated[str | None, doc(
        "A saved card (or \"wallet\") to place a new hold on; not with payment_intent", f"pm_{ULID}")] = None
    payment_intent: Annotated[Annotated[str, Meta(min_length=1, max_length=64)] | None, doc(
        "Instead of payment_method_id: an authorized PaymentIntent (requires_capture, e.g. confirmed after "
        "3-D Secure) of this customer, for exactly the quote's total, paying for no other order", f"pi_{ULID}")] = None
    conversion_quote: Annotated[Annotated[str, Meta(pattern=id_pattern("cvq"))] | None, doc(
        "With payment_method_id \"wallet\": the customer's conversion quote (POST /v1/conversion_quotes) for exactly "
        "the total, accepted by this checkout; without one, a wallet holding another currency than the store's "
        "is 409 currency_mismatch", f"cvq_{ULID}")] = None


# ---- orders --------------------------------------------------------------------------------------

class StatusChange(Struct, frozen=True):
    """One step of the order's history."""

    from_status: Annotated[str | None, doc("The status before; null for the first step", "placed")]
    to_status: Annotated[str, doc("The status after", "accepted")]
    actor: Annotated[str, doc("Who: customer, store, courier, operator or system", "store")]
    reason: Annotated[str | None, doc("Why, when one was given", None)]
    at: Annotated[datetime, doc("When (UTC)", WHEN)]


class OrderLineOut(Struct, frozen=True):
    """An ordered line."""

    line_no: Annotated[int, LINE_NO]
    item_id: Annotated[str, ITEM_ID]
    name: Annotated[str, doc("The item's name", "Margherita")]
    quantity: Annotated[int, doc("How many were ordered", 2)]
    unit_price: Annotated[MoneyOut, doc("Price of one, options included")]
    options: Annotated[list[dict[str, Any]], OPTIONS]
    line_total: Annotated[MoneyOut, doc("unit_price times quantity")]
    missing_quantity: Annotated[int, doc("How many the store reported missing (refunded)", 0)]


class CancelTerms(Struct, frozen=True):
    """Whether the caller may cancel now, and at what cost."""

    allowed: Annotated[bool, doc("Whether a cancel is possible now", True)]
    fee: Annotated[MoneyOut, doc("What a cancel now costs")]
    fee_from: Annotated[datetime | None, doc(  # when a fee starts to apply (acceptance); null once it applies
        "When a fee starts to apply (acceptance); null once it applies", None)]


class OrderOut(Struct, frozen=True):
    """An order: status, lines, amounts, timing, courier, cancel terms and history."""

    id: Annotated[str, ORDER_ID]
    status: Annotated[str, STATUS]
    customer_id: Annotated[str, CUSTOMER_ID]
    store_id: Annotated[str, STORE_ID]
    tenant_id: Annotated[str, TENANT_ID]
    region: Annotated[str, doc("The dispatch region", "berlin")]
    currency: Annotated[str, CURRENCY]
    lines: Annotated[list[OrderLineOut], doc("The ordered lines", [])]
    subtotal: Annotated[MoneyOut, doc("Sum of the lines")]
    fees: Annotated[list[FeeLine], doc("Fees, discount, tax and tip", [])]
    total: Annotated[MoneyOut, doc("What the customer pays (before refunds)")]
    refunded: Annotated[MoneyOut, doc("Refunded so far")]
    captured: Annotated[MoneyOut, doc("Captured from the payment so far")]
    cancel_fee: Annotated[MoneyOut, doc("The fee charged for a cancel, if cancelled")]
    pickup: Annotated[Point, doc("The store's location")]
    dropoff: Annotated[Point, doc("Where to deliver")]
    address: Annotated[str, doc("The drop-off address", "Torstraße 1, 10119 Berlin")]
    placed_at: Annotated[datetime, doc("When checkout placed it (UTC)", "2026-12-07T18:00:00Z")]
    accept_by: Annotated[datetime, doc("The store must accept before this, or the order expires",
                                       "2026-12-07T18:05:00Z")]
    accepted_at: Annotated[datetime | None, doc("When the store accepted", "2026-12-07T18:01:30Z")]
    prep_time_s: Annotated[int, PREP_TIME]
    ready_at: Annotated[datetime | None, doc("When the food is (expected to be) ready", "2026-12-07T18:16:30Z")]
    picked_up_at: Annotated[datetime | None, doc("When the courier picked it up", None)]
    delivered_at: Annotated[datetime | None, doc("When it was delivered", None)]
    promised_window: Annotated[Window, doc("When delivery was promised")]
    eta: Annotated[datetime | None, doc("Current estimate of the delivery time", "2026-12-07T18:32:00Z")]
    courier_id: Annotated[str | None, COURIER_ID]
    end_reason: Annotated[str | None, doc("Why it ended without delivery (reject reason, cancel reason)", None)]
    cancel: Annotated[CancelTerms, doc("Whether and at what cost the caller may cancel now")]
    tip_changeable_until: Annotated[datetime | None, doc("The tip may change until then", None)]
    rating: Annotated[int | None, doc("The customer's stars (1-5), once rated", None)]
    history: Annotated[list[StatusChange], doc("Every status change, oldest first", [])]
    allowed_actions: Annotated[list[str], doc("What the caller may do next (accept, reject, start_preparing, "
                                              "mark_ready, pick_up, deliver, cancel)", ["cancel"])]
    delivery_note: Annotated[str | None, doc("Instructions for the courier", "ring twice")] = None


class OrderSummary(Struct, frozen=True):
    """An order as lists show it."""

    id: Annotated[str, ORDER_ID]
    status: Annotated[str, STATUS]
    store_id: Annotated[str, STORE_ID]
    customer_id: Annotated[str, CUSTOMER_ID]
    total: Annotated[MoneyOut, doc("What the customer pays")]
    placed_at: Annotated[datetime, doc("When it was placed (UTC)", "2026-12-07T18:00:00Z")]
    accept_by: Annotated[datetime, doc("The store must accept before this", "2026-12-07T18:05:00Z")]
    ready_at: Annotated[datetime | None, doc("When the food is (expected to be) ready", None)]
    courier_id: Annotated[str | None, COURIER_ID]


class OrderPage(Struct, frozen=True):
    """A page of orders, newest first."""

    items: Annotated[list[OrderSummary], doc("The orders of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page",
                                           f"ord_{ULID}")] = None
    # API version 2026-12-07; older versions do not have the field (fooddispatch/versions.py).
    has_more: Annotated[bool, doc("Whether a page follows (API version 2026-12-07 and later)", False)] = False


class OrderListQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Filtering and paging a list of orders."""

    status: Annotated[str | None, doc(  # one status or a comma-separated list; "active" for all open ones
        "One status or a comma-separated list; `active` for every open one", "placed,accepted")] = None
    cursor: Annotated[Annotated[str, id_cursor("ord")] | None,  # malformed: 400 cursor_invalid, like every list
                      doc("The `next_cursor` of the previous page", f"ord_{ULID}")] = None
    limit: Annotated[Limit, LIST_LIMIT] = 20


class AcceptRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """The store accepts a placed order."""

    prep_time_s: Annotated[PrepTime | None, doc("Preparation time in seconds; null: the store's default",
                                                900)] = None


class RejectRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """The store rejects a placed order; the payment hold is voided."""

    reason: Annotated[RejectReason, doc("Why, as a code", "item_unavailable")]
    note: Annotated[Annotated[str, Meta(max_length=500)] | None, doc("Free text for the customer",
                                                                      "out of mozzarella")] = None


class PrepTimeRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A new preparation time for an accepted order."""

    prep_time_s: Annotated[PrepTime, doc("Preparation time in seconds, counted from acceptance", 1200)]


class MissingLine(Struct, frozen=True, forbid_unknown_fields=True):
    """Part of a line that cannot be sent."""

    line_no: Annotated[int, Meta(ge=1), LINE_NO]
    quantity: Annotated[int, Meta(ge=1, le=99), doc("How many of the line are missing", 1)]


class MissingItemsRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Items that cannot be sent after acceptance: refunded to the customer."""

    lines: Annotated[list[MissingLine], Meta(min_length=1, max_length=100),
                     doc("The missing parts", [{"line_no": 1, "quantity": 1}])]


class AssignRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """An operator gives the order to a courier by hand (before pickup)."""

    courier_id: Annotated[str, Meta(min_length=1, max_length=64), doc("The courier's account id",
                                                                      f"cou_{ULID}")]


class CancelRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """Cancel an order."""

    reason: Annotated[str, Meta(min_length=1, max_length=200), doc("Why", "customer_request")] = "customer_request"


class TipRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A new tip."""

    tip: Annotated[Minor, doc("The tip, in minor units of the order's currency", 300)]


class RatingRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A rating of a delivered order."""

    stars: Annotated[int, Meta(ge=1, le=5), doc("1 (bad) to 5 (great)", 5)]
    comment: Annotated[Annotated[str, Meta(max_length=1000)] | None, doc("Free text", "hot and fast")] = None


class Proof(Struct, frozen=True, forbid_unknown_fields=True):
    """Proof of delivery."""

    photo_url: Annotated[Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None,
                         doc("A photo of the drop-off", "https://cdn.example.com/proof/123.jpg")] = None
    code: Annotated[Annotated[str, Meta(max_length=32)] | None, doc("A code the customer gave", "4711")] = None


class CourierStepRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A courier's pick-up or delivery, with optional proof."""

    proof: Annotated[Proof | None, doc("Proof of delivery, if any")] = None


# ---- promos --------------------------------------------------------------------------------------

class PromoCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A promo code: a percent or a fixed amount off, within limits."""

    code: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{3,32}$"), doc("What customers type", "WELCOME10")]
    kind: Annotated[Literal["percent", "fixed"], doc("A percentage or a fixed amount off", "percent")]
    percent_bps: Annotated[int, Meta(ge=0, le=10_000), doc("For `percent`: basis points off (1000 = 10%)", 1000)] = 0
    amount: Annotated[Minor, doc("For `fixed`: minor units off", 500)] = 0
    currency: Annotated[str | None, doc("For `fixed`: the amount's currency", "EUR")] = None
    max_discount: Annotated[Minor | None, doc("Cap on the discount, in minor units", 1000)] = None
    min_subtotal: Annotated[Minor, doc("Smallest subtotal it applies to, in minor units", 1500)] = 0
    first_order_only: Annotated[bool, doc("Only on a customer's first order", False)] = False
    per_customer_limit: Annotated[Annotated[int, Meta(ge=1)] | None, doc("Uses per customer", 1)] = None
    budget: Annotated[Minor | None, doc("Total discount it may give, in minor units", 100000)] = None
    valid_from: Annotated[datetime | None, doc("Usable from (UTC)", "2026-12-01T00:00:00Z")] = None
    valid_until: Annotated[datetime | None, doc("Usable until (UTC)", "2026-12-31T23:59:59Z")] = None
    store_id: Annotated[str | None, doc("The one store it applies to (required for restaurants)",
                                        f"sto_{ULID}")] = None


class PromoOut(Struct, frozen=True):
    """A promo code and how much of its budget is used."""

    id: Annotated[str, doc("The promo's id", f"pro_{ULID}")]
    code: Annotated[str, doc("What customers type", "WELCOME10")]
    kind: Annotated[str, doc("percent or fixed", "percent")]
    percent_bps: Annotated[int, doc("For percent: basis points off", 1000)]
    amount: Annotated[int, doc("For fixed: minor units off", 0)]
    currency: Annotated[str | None, doc("For fixed: the currency", None)]
    max_discount: Annotated[int | None, doc("Cap on the discount, in minor units", 1000)]
    min_subtotal: Annotated[int, doc("Smallest subtotal it applies to, in minor units", 1500)]
    first_order_only: Annotated[bool, doc("Only on a customer's first order", False)]
    per_customer_limit: Annotated[int | None, doc("Uses per customer", 1)]
    budget: Annotated[int | None, doc("Total discount it may give, in minor units", 100000)]
    budget_used: Annotated[int, doc("Discount given so far, in minor units", 2500)]
    valid_from: Annotated[datetime | None, doc("Usable from (UTC)", "2026-12-01T00:00:00Z")]
    valid_until: Annotated[datetime | None, doc("Usable until (UTC)", "2026-12-31T23:59:59Z")]
    store_id: Annotated[str | None, doc("The one store it applies to; null: every store", None)]
    active: Annotated[bool, doc("Whether it can be used now", True)]


# ---- webhooks ------------------------------------------------------------------------------------

WEBHOOK_URL = doc("Where events are POSTed: https, a public address", "https://hooks.example.com/fooddispatch")
ENDPOINT_ID = doc("The webhook endpoint's id", f"whe_{ULID}")


class WebhookEndpointCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """An endpoint to receive the tenant's order events."""

    url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000), WEBHOOK_URL]
    event_types: Annotated[list[EventType], Meta(min_length=1), doc("The events to send",
                                                                    ["order.placed", "order.cancelled"])]


class WebhookEndpointOut(Struct, frozen=True):
    """A webhook endpoint of the tenant."""

    id: Annotated[str, ENDPOINT_ID]
    tenant_id: Annotated[str, TENANT_ID]
    url: Annotated[str, WEBHOOK_URL]
    event_types: Annotated[list[str], doc("The events sent", ["order.placed", "order.cancelled"])]
    enabled: Annotated[bool, doc("Whether deliveries go out (false after repeated failures)", True)]
    disabled_reason: Annotated[str | None, doc("Why it was disabled", None)]
    consecutive_failures: Annotated[int, doc("Failed deliveries in a row", 0)]
    created_at: Annotated[datetime, doc("When it was registered (UTC)", "2026-12-01T09:30:00Z")]
    previous_secret_expires_at: Annotated[datetime | None, doc(
        "After a rotation: until then the old secret signs too", None)]
    secret: Annotated[str | None, doc(  # shown on creation and rotation only
        "The signing secret; only in the answers to creation and rotation", "whsec_3f9a1c0e7b")] = None


class WebhookEndpointList(Struct, frozen=True):
    """The tenant's webhook endpoints."""

    items: Annotated[list[WebhookEndpointOut], doc("The endpoints", [])]


class RotateSecretRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """A new signing secret."""

    overlap_seconds: Annotated[int, Meta(ge=0, le=7 * 86400),
                               doc("How long the old secret keeps signing too", 86400)] = 86400


class WebhookAttemptOut(Struct, frozen=True):
    """One attempt to deliver an event."""

    attempt: Annotated[int, doc("The attempt's number, from 1", 1)]
    at: Annotated[datetime, doc("When (UTC)", WHEN)]
    status_code: Annotated[int | None, doc("The endpoint's HTTP status; null when it did not answer", 200)]
    error: Annotated[str | None, doc("What went wrong, if anything", None)]
    duration_ms: Annotated[int, doc("How long it took in milliseconds", 84)]


class WebhookDeliveryOut(Struct, frozen=True):
    """An event's delivery to an endpoint, with every attempt."""

    id: Annotated[str, doc("The delivery's id", f"whd_{ULID}")]
    event_id: Annotated[str, doc("The event delivered", f"evt_{ULID}")]
    event_type: Annotated[str, doc("The event's type", "order.placed")]
    status: Annotated[str, doc("pending, delivered or failed", "delivered")]
    attempts: Annotated[list[WebhookAttemptOut], doc("The attempts, oldest first", [])]
    next_attempt_at: Annotated[datetime | None, doc("When the next retry goes out, if any", None)]
    created_at: Annotated[datetime, doc("When the delivery was created (UTC)", WHEN)]


class WebhookDeliveryPage(Struct, frozen=True):
    """A page of deliveries, newest first."""

    items: Annotated[list[WebhookDeliveryOut], doc("The deliveries of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page",
                                           f"whd_{ULID}")] = None


class PageQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Paging through deliveries."""

    cursor: Annotated[Annotated[str, id_cursor("whd")] | None,  # a webhook delivery id
                      doc("The `next_cursor` of the previous page", f"whd_{ULID}")] = None
    limit: Annotated[Limit, LIST_LIMIT] = 20


# ---- the events API (GET /v1/events) -----------------------------------------------------------------

# One type or a family (`order.*`); several comma-separated.
EventTypeFilter = Annotated[str, Meta(pattern=r"^[a-z_]+(\.[a-z_]+)*(\.\*)?(,[a-z_]+(\.[a-z_]+)*(\.\*)?)*$",
                                     max_length=500, examples=["order.placed,order.refunded", "order.*"],
                                     description="event types, comma-separated; `order.*` for a family")]
UnixTime = Annotated[int, Meta(ge=0, le=32503680000, description="seconds since the epoch (UTC)")]


class EventListQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Filtering and paging the tenant's events."""

    type: EventTypeFilter | None = None
    created_gte: Annotated[UnixTime | None, doc("Events created at or after (seconds since the epoch, UTC)",
                                                1765100000)] = msgspec.field(default=None, name="created[gte]")
    created_lte: Annotated[UnixTime | None, doc("Events created at or before (seconds since the epoch, UTC)",
                                                1765186400)] = msgspec.field(default=None, name="created[lte]")
    tenant_id: Annotated[Annotated[str, Meta(pattern=id_pattern("ten"))] | None,
                         doc("Operators: one tenant's events; staff: their own only", f"ten_{ULID}")] = None
    cursor: Annotated[Annotated[str, id_cursor("evt")] | None,
                      doc("The `next_cursor` of the page before", f"evt_{ULID}")] = None
    limit: Annotated[Limit, LIST_LIMIT] = 20


class EventObject(Struct, frozen=True):
    """The event's payload."""

    object: Annotated[dict[str, Any], doc(  # the payload of the event type (docs/EVENTS.md)
        "The payload of the event type (docs/EVENTS.md)", {"id": f"ord_{ULID}", "status": "placed"})]


class EventOut(Struct, frozen=True):
    """An event as its webhook deliveries carry it, byte for byte (Stripe-shaped)."""

    id: Annotated[str, doc("The event's id", f"evt_{ULID}")]
    object: Annotated[Literal["event"], doc("Always `event`", "event")]
    type: Annotated[str, doc("The event's type", "order.placed")]
    created: Annotated[int, doc("When it happened, seconds since the epoch (UTC)", 1765130400)]
    created_at: Annotated[datetime, doc("When it happened (UTC)", "2026-12-07T18:00:00Z")]
    data: Annotated[EventObject, doc("The payload")]


class EventPage(Struct, frozen=True):
    """A page of events, newest first."""

    items: Annotated[list[EventOut], doc("The events of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page",
                                           f"evt_{ULID}")] = None


class EventPageRaw(Struct, frozen=True):
    """What `EventPage` documents, with each event's stored body embedded as it is (same bytes)."""

    items: list[msgspec.Raw]
    next_cursor: str | None = None


class RedeliveryRequest(Struct, frozen=True, forbid_unknown_fields=True):
    """An event to deliver again."""

    event_id: Annotated[str, Meta(pattern=id_pattern("evt")), doc("An event of the endpoint's tenant",
                                                                  f"evt_{ULID}")]


# ---- tablet feed ---------------------------------------------------------------------------------

class FeedFrame(Struct, frozen=True, tag_field="type", tag="order"):
    """Pushed to restaurant tablets: one per order event of the store."""

    event_id: str
    event_type: str
    order_id: str
    status: str
    at: datetime
    data: dict[str, Any]


class FeedHello(Struct, frozen=True, tag_field="type", tag="hello"):
    store_id: str
    active_orders: list[OrderSummary]


feed_encoder = msgspec.json.Encoder()
