"""The events orders publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

This module is orders' published contract with the packages that consume its events (dispatch, tracking,
the ops console): it imports nothing but msgspec and the kernel, so importing it brings none of orders'
code along. Fields are in wire order. Every order event but `order.placed` starts with the order's
facts (`OrderFacts`); `order.placed` carries the same names in the order it always had.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from kernel.outbox import EventData, MoneyData, PointData


class OrderLineData(msgspec.Struct, frozen=True):
    """A line of a placed order as its event shows it (the tablet's ticket)."""

    name: str
    quantity: int


class OrderPlaced(EventData, frozen=True, kw_only=True):
    """A customer checked out: the order waits for the restaurant to accept it by `accept_by`.
    `promised_at` is the end of the delivery window promised; `scheduled_for` is set for an order
    placed ahead of time."""

    event_type = "order.placed"
    order_id: str
    customer_id: str
    store_id: str
    tenant_id: str
    region: str
    status: str
    pickup: PointData
    dropoff: PointData
    total: MoneyData
    placed_at: datetime
    accept_by: datetime
    promised_at: datetime
    scheduled_for: datetime | None
    lines: list[OrderLineData]


class OrderFacts(EventData, frozen=True, kw_only=True):
    """What every order event after `order.placed` starts with: the order, its store, tenant and
    customer, and the order's status after the change."""

    order_id: str
    store_id: str
    tenant_id: str
    customer_id: str
    status: str


class OrderAccepted(OrderFacts, frozen=True, kw_only=True):
    """The restaurant accepted: the order enters the dispatch pool of its region; `ready_at` is when
    the food should be ready (the prep time from acceptance, or from the scheduled time)."""

    event_type = "order.accepted"
    region: str
    pickup: PointData
    dropoff: PointData
    placed_at: datetime
    ready_at: datetime
    promised_at: datetime
    courier_id: str | None


class OrderPrepTimeChanged(OrderFacts, frozen=True, kw_only=True):
    """The restaurant gave another prep time: the food should now be ready at `ready_at`."""

    event_type = "order.prep_time_changed"
    ready_at: datetime


class OrderReady(OrderFacts, frozen=True, kw_only=True):
    """The food is ready for pickup (`ready_at`: when the restaurant said so)."""

    event_type = "order.ready"
    ready_at: datetime


class OrderEnded(OrderFacts, frozen=True, kw_only=True):
    """An order that ends before delivery: `reason` as given (or the action's name); `courier_id`
    the courier assigned, if one was."""

    reason: str
    courier_id: str | None


class OrderRejected(OrderEnded, frozen=True, kw_only=True):
    """The restaurant refused the order (`reason`: its answer); the payment hold is voided."""

    event_type = "order.rejected"


class OrderExpired(OrderEnded, frozen=True, kw_only=True):
    """The restaurant did not answer by `accept_by` (`reason`: `accept_window_passed`); the hold is
    voided, and enough expiries in a row pause the store."""

    event_type = "order.expired"


class OrderCancelled(OrderEnded, frozen=True, kw_only=True):
    """The customer, the restaurant or an operator cancelled the order (`reason` as given); a
    cancellation fee may be captured (docs/MONEY.md). `courier_id`: the courier assigned, if any."""

    event_type = "order.cancelled"


class OrderPickedUp(OrderFacts, frozen=True, kw_only=True):
    """The courier collected the food at `at`."""

    event_type = "order.picked_up"
    courier_id: str | None
    at: datetime


class OrderDelivered(OrderFacts, frozen=True, kw_only=True):
    """The courier handed the food over at `at`; the payment is captured. `proof`: `photo_url` and/or
    `code`, as the courier gave them, or null."""

    event_type = "order.delivered"
    courier_id: str | None
    at: datetime
    proof: dict[str, Any] | None


class OrderCourierAssigned(OrderFacts, frozen=True, kw_only=True):
    """An operator gave the order to `courier_id` by hand, before pickup (`POST /v1/orders/{id}/courier`,
    below); `previous_courier_id` had it, if anyone. It carries where the courier goes (for its app) and
    what dispatch needs to know of an order it has not seen yet. Not a merchant webhook event type."""

    event_type = "order.courier_assigned"
    courier_id: str
    previous_courier_id: str | None
    operator_id: str | None
    region: str
    pickup: PointData
    dropoff: PointData
    placed_at: datetime
    promised_at: datetime
    at: datetime


class OrderRefunded(OrderFacts, frozen=True, kw_only=True):
    """The order's `refunded` grew by `amount` (see "Money events" below): `reason` is `missing_items`
    or the refund's reason; `refund_id` and `payment_intent` name payments' refund and the refunded
    intent (both null for missing items reported before delivery); `refunded` is the order's total
    refunded after it."""

    event_type = "order.refunded"
    amount: MoneyData
    reason: str | None
    refund_id: str | None
    payment_intent: str | None
    refunded: MoneyData


class WebhookEndpointDisabled(EventData, frozen=True, kw_only=True):
    """A merchant's webhook endpoint was disabled (`reason`: too many failed deliveries in a row, or
    a URL that can never be allowed): the notice to the merchant."""

    event_type = "webhook_endpoint.disabled"
    endpoint_id: str
    tenant_id: str
    url: str
    reason: str


OrderEvent = (OrderPlaced | OrderAccepted | OrderPrepTimeChanged | OrderReady | OrderRejected | OrderExpired
              | OrderCancelled | OrderPickedUp | OrderDelivered | OrderRefunded)
"""Orders' events about an order, tagged by the envelope's `type`: each becomes merchant webhooks and a
frame to the tablets (`order.courier_assigned`, like dispatch's assignments, is neither)."""

EVENTS: tuple[type[EventData], ...] = (
    OrderPlaced, OrderAccepted, OrderPrepTimeChanged, OrderReady, OrderRejected, OrderExpired, OrderCancelled,
    OrderPickedUp, OrderDelivered, OrderCourierAssigned, OrderRefunded, WebhookEndpointDisabled,
)
