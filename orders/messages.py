"""Wire formats of orders (msgspec Structs): quotes, checkout, orders, restaurant actions,
promos, webhook endpoints, the events API and the tablet feed frames. Money is `{"amount", "currency"}`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from catalog.messages import CartLineInput
from kernel.ids import id_pattern

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
]


class MoneyOut(Struct, frozen=True):
    amount: int
    currency: str


class Point(Struct, frozen=True, forbid_unknown_fields=True):
    lat: Lat
    lng: Lng


# ---- quotes and checkout -------------------------------------------------------------------------

class QuoteRequest(Struct, frozen=True, forbid_unknown_fields=True):
    store_id: str
    dropoff: Point
    address: Annotated[str, Meta(min_length=1, max_length=500)]
    lines: Annotated[list[CartLineInput], Meta(min_length=1, max_length=100)]
    promo_code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    tip: Minor = 0
    scheduled_for: datetime | None = None
    # Dropoff instructions for the courier ("ring twice"), shown on the tracking page too.
    delivery_note: Annotated[str, Meta(max_length=500)] | None = None


class QuoteLine(Struct, frozen=True):
    line_no: int
    item_id: str
    name: str
    quantity: int
    unit_price: MoneyOut
    options: list[dict[str, Any]]
    line_total: MoneyOut


class FeeLine(Struct, frozen=True):
    kind: Literal["delivery", "busy_area", "service", "small_order", "discount", "membership", "tax", "tip"]
    label: str
    amount: MoneyOut


class Window(Struct, frozen=True):
    start: datetime
    end: datetime


class QuoteOut(Struct, frozen=True):
    id: str
    store_id: str
    currency: str
    lines: list[QuoteLine]
    subtotal: MoneyOut
    fees: list[FeeLine]
    delivery_fee: MoneyOut
    busy_area_fee: MoneyOut
    service_fee: MoneyOut
    small_order_fee: MoneyOut
    discount: MoneyOut
    tax: MoneyOut
    tax_inclusive: bool
    tip: MoneyOut
    total: MoneyOut
    surge_multiplier: str
    promo_code: str | None
    distance_m: int
    promised_window: Window
    scheduled_for: datetime | None
    created_at: datetime
    expires_at: datetime


# Pay with exactly one of `payment_method_id` (checkout places a new hold on it) or `payment_intent`:
# a hold the customer already authorized, i.e. the `requires_action` intent a 402 `authentication_required`
# named, confirmed since through `POST /v1/payment_intents/{id}/confirm` (then `requires_capture`).
class CheckoutRequest(Struct, frozen=True, forbid_unknown_fields=True):
    quote_id: str
    payment_method_id: Annotated[str, Meta(
        description="a saved card (or \"wallet\") to place a new hold on; not with payment_intent")] | None = None
    payment_intent: Annotated[str, Meta(
        min_length=1, max_length=64,
        description="instead of payment_method_id: an authorized PaymentIntent (requires_capture, e.g. confirmed "
                    "after 3-D Secure) of this customer, for exactly the quote's total, paying for no other order")
    ] | None = None


# ---- orders --------------------------------------------------------------------------------------

class StatusChange(Struct, frozen=True):
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: datetime


class OrderLineOut(Struct, frozen=True):
    line_no: int
    item_id: str
    name: str
    quantity: int
    unit_price: MoneyOut
    options: list[dict[str, Any]]
    line_total: MoneyOut
    missing_quantity: int


class CancelTerms(Struct, frozen=True):
    allowed: bool
    fee: MoneyOut
    fee_from: datetime | None  # when a fee starts to apply (acceptance); null once it applies


class OrderOut(Struct, frozen=True):
    id: str
    status: str
    customer_id: str
    store_id: str
    tenant_id: str
    region: str
    currency: str
    lines: list[OrderLineOut]
    subtotal: MoneyOut
    fees: list[FeeLine]
    total: MoneyOut
    refunded: MoneyOut
    captured: MoneyOut
    cancel_fee: MoneyOut
    pickup: Point
    dropoff: Point
    address: str
    placed_at: datetime
    accept_by: datetime
    accepted_at: datetime | None
    prep_time_s: int
    ready_at: datetime | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    promised_window: Window
    eta: datetime | None
    courier_id: str | None
    end_reason: str | None
    cancel: CancelTerms
    tip_changeable_until: datetime | None
    rating: int | None
    history: list[StatusChange]
    allowed_actions: list[str]
    delivery_note: str | None = None


class OrderSummary(Struct, frozen=True):
    id: str
    status: str
    store_id: str
    customer_id: str
    total: MoneyOut
    placed_at: datetime
    accept_by: datetime
    ready_at: datetime | None
    courier_id: str | None


class OrderPage(Struct, frozen=True):
    items: list[OrderSummary]
    next_cursor: str | None = None


class OrderListQuery(Struct, frozen=True, forbid_unknown_fields=True):
    status: str | None = None  # one status or a comma-separated list; "active" for all open ones
    cursor: Annotated[str, Meta(pattern=id_pattern("ord"))] | None = None  # malformed: 422, like every list
    limit: Limit = 20


class AcceptRequest(Struct, frozen=True, forbid_unknown_fields=True):
    prep_time_s: PrepTime | None = None


class RejectRequest(Struct, frozen=True, forbid_unknown_fields=True):
    reason: RejectReason
    note: Annotated[str, Meta(max_length=500)] | None = None


class PrepTimeRequest(Struct, frozen=True, forbid_unknown_fields=True):
    prep_time_s: PrepTime


class MissingLine(Struct, frozen=True, forbid_unknown_fields=True):
    line_no: Annotated[int, Meta(ge=1)]
    quantity: Annotated[int, Meta(ge=1, le=99)]


class MissingItemsRequest(Struct, frozen=True, forbid_unknown_fields=True):
    lines: Annotated[list[MissingLine], Meta(min_length=1, max_length=100)]


class CancelRequest(Struct, frozen=True, forbid_unknown_fields=True):
    reason: Annotated[str, Meta(min_length=1, max_length=200)] = "customer_request"


class TipRequest(Struct, frozen=True, forbid_unknown_fields=True):
    tip: Minor


class RatingRequest(Struct, frozen=True, forbid_unknown_fields=True):
    stars: Annotated[int, Meta(ge=1, le=5)]
    comment: Annotated[str, Meta(max_length=1000)] | None = None


class Proof(Struct, frozen=True, forbid_unknown_fields=True):
    photo_url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None = None
    code: Annotated[str, Meta(max_length=32)] | None = None


class CourierStepRequest(Struct, frozen=True, forbid_unknown_fields=True):
    proof: Proof | None = None


# ---- promos --------------------------------------------------------------------------------------

class PromoCreate(Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{3,32}$")]
    kind: Literal["percent", "fixed"]
    percent_bps: Annotated[int, Meta(ge=0, le=10_000)] = 0
    amount: Minor = 0
    currency: str | None = None
    max_discount: Minor | None = None
    min_subtotal: Minor = 0
    first_order_only: bool = False
    per_customer_limit: Annotated[int, Meta(ge=1)] | None = None
    budget: Minor | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    store_id: str | None = None


class PromoOut(Struct, frozen=True):
    id: str
    code: str
    kind: str
    percent_bps: int
    amount: int
    currency: str | None
    max_discount: int | None
    min_subtotal: int
    first_order_only: bool
    per_customer_limit: int | None
    budget: int | None
    budget_used: int
    valid_from: datetime | None
    valid_until: datetime | None
    store_id: str | None
    active: bool


# ---- webhooks ------------------------------------------------------------------------------------

class WebhookEndpointCreate(Struct, frozen=True, forbid_unknown_fields=True):
    url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000)]
    event_types: Annotated[list[EventType], Meta(min_length=1)]


class WebhookEndpointOut(Struct, frozen=True):
    id: str
    tenant_id: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    created_at: datetime
    previous_secret_expires_at: datetime | None
    secret: str | None = None  # shown on creation and rotation only


class WebhookEndpointList(Struct, frozen=True):
    items: list[WebhookEndpointOut]


class RotateSecretRequest(Struct, frozen=True, forbid_unknown_fields=True):
    overlap_seconds: Annotated[int, Meta(ge=0, le=7 * 86400)] = 86400


class WebhookAttemptOut(Struct, frozen=True):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(Struct, frozen=True):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: list[WebhookAttemptOut]
    next_attempt_at: datetime | None
    created_at: datetime


class WebhookDeliveryPage(Struct, frozen=True):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None = None


class PageQuery(Struct, frozen=True, forbid_unknown_fields=True):
    cursor: Annotated[str, Meta(pattern=id_pattern("whd"))] | None = None  # a webhook delivery id
    limit: Limit = 20


# ---- the events API (GET /v1/events) -----------------------------------------------------------------

# One type or a family (`order.*`); several comma-separated.
EventTypeFilter = Annotated[str, Meta(pattern=r"^[a-z_]+(\.[a-z_]+)*(\.\*)?(,[a-z_]+(\.[a-z_]+)*(\.\*)?)*$",
                                     max_length=500, examples=["order.placed,order.refunded", "order.*"],
                                     description="event types, comma-separated; `order.*` for a family")]
UnixTime = Annotated[int, Meta(ge=0, le=32503680000, description="seconds since the epoch (UTC)")]


class EventListQuery(Struct, frozen=True, forbid_unknown_fields=True):
    type: EventTypeFilter | None = None
    created_gte: UnixTime | None = msgspec.field(default=None, name="created[gte]")
    created_lte: UnixTime | None = msgspec.field(default=None, name="created[lte]")
    tenant_id: Annotated[str, Meta(pattern=id_pattern("ten"),
                                   description="operators: one tenant's events; staff: their own only")] | None = None
    cursor: Annotated[str, Meta(pattern=id_pattern("evt"),
                                description="the `next_cursor` of the page before")] | None = None
    limit: Limit = 20


class EventObject(Struct, frozen=True):
    object: dict[str, Any]  # the payload of the event type (docs/EVENTS.md)


class EventOut(Struct, frozen=True):
    """An event as its webhook deliveries carry it, byte for byte (Stripe-shaped)."""

    id: str
    object: Literal["event"]
    type: str
    created: int
    created_at: datetime
    data: EventObject


class EventPage(Struct, frozen=True):
    items: list[EventOut]
    next_cursor: str | None = None


class EventPageRaw(Struct, frozen=True):
    """What `EventPage` documents, with each event's stored body embedded as it is (same bytes)."""

    items: list[msgspec.Raw]
    next_cursor: str | None = None


class RedeliveryRequest(Struct, frozen=True, forbid_unknown_fields=True):
    event_id: Annotated[str, Meta(pattern=id_pattern("evt"), description="an event of the endpoint's tenant")]


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
