"""The events tracking publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

Tracking's published contract with the packages that consume its events (dispatch, orders, the ops
console): it imports nothing but msgspec and the kernel, so importing it brings none of tracking's code
along. Fields are in wire order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from kernel.outbox import EventData


class DeliveryProof(msgspec.Struct, frozen=True, omit_defaults=True):
    """What the courier's app sent as proof: a photo's URL and/or the customer's code (absent keys
    are left out)."""

    photo_url: str | None = None
    code: str | None = None


class CourierStatusChanged(EventData, frozen=True, kw_only=True):
    """The courier went `online`, `offline` or on a `break`, or fell `stale` (silent too long; the
    sweeper reports it once). Also written when an operator takes a courier offline."""

    event_type = "courier.status_changed"
    courier_id: str
    status: Literal["online", "offline", "break", "stale"]


class CourierOfferResponse(EventData, frozen=True, kw_only=True):
    """The courier answered dispatch's offer `offer_id` at `at`: accepted or declined."""

    event_type = "courier.offer_response"
    courier_id: str
    offer_id: str
    accepted: bool
    at: datetime


class CourierAtOrder(EventData, frozen=True, kw_only=True):
    """A courier's step on one order, at `at`."""

    courier_id: str
    order_id: str
    at: datetime


class CourierArrivedPickup(CourierAtOrder, frozen=True, kw_only=True):
    """The courier reached the restaurant: recorded once per order and courier, whoever reports it
    first (the geofence, or the app's own "arrived"; events written before that rule may come twice)."""

    event_type = "courier.arrived_pickup"


class CourierArrivedDropoff(CourierAtOrder, frozen=True, kw_only=True):
    """The courier reached the customer: recorded once per order and courier, whoever reports it
    first (the geofence, or the app's own "arrived"; events written before that rule may come twice)."""

    event_type = "courier.arrived_dropoff"


class CourierStep(CourierAtOrder, frozen=True, kw_only=True):
    """A step that moves the order, with the courier's proof (null when none was given)."""

    proof: DeliveryProof | None


class CourierPickedUp(CourierStep, frozen=True, kw_only=True):
    """The courier says the food is collected. The order's own transition commits with it (orders
    emits `order.picked_up`); `proof` is null."""

    event_type = "courier.picked_up"


class CourierDelivered(CourierStep, frozen=True, kw_only=True):
    """The courier says the food is handed over, with `proof` (`photo_url` and/or `code`) or null.
    The order's own transition commits with it (orders emits `order.delivered`)."""

    event_type = "courier.delivered"


CourierEvent = (CourierStatusChanged | CourierOfferResponse | CourierArrivedPickup | CourierArrivedDropoff
                | CourierPickedUp | CourierDelivered)
"""Tracking's events, tagged by the envelope's `type`."""

EVENTS: tuple[type[EventData], ...] = (
    CourierStatusChanged, CourierOfferResponse, CourierArrivedPickup, CourierArrivedDropoff, CourierPickedUp,
    CourierDelivered,
)
