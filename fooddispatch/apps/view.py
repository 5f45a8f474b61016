"""The customer's view of one order, as the tracking page and `GET /v1/orders/{id}/tracking` show it.

It joins what three packages know (orders: status, timeline, stops, note; catalog: the restaurant's
name; tracking: the courier's position and the ETA to its next stop), so it is composed here, in the
composition root. It carries nothing beyond that one order: no customer id, name, address text or phone,
no prices, no other order, no account ids; of the courier only a first name and the vehicle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from geo.eta import HaversineTravelTime
from orders.messages import OrderOut
from tracking.messages import CourierPosition

ENDED = frozenset({"cancelled", "rejected", "expired"})
_travel = HaversineTravelTime()


class Place(msgspec.Struct, frozen=True):
    lat: float
    lng: float
    name: str | None = None
    time_zone: str | None = None  # the restaurant's IANA zone: the page shows its times in it


class TimelineStep(msgspec.Struct, frozen=True):
    status: str
    at: datetime


class ItemLine(msgspec.Struct, frozen=True):
    name: str
    quantity: int


class CourierOut(msgspec.Struct, frozen=True):
    """Shown only while the courier carries the order (assigned, not delivered)."""

    first_name: str | None
    vehicle: str | None
    lat: float
    lng: float
    at: datetime  # device time of the fix
    heading: float | None
    eta_seconds: int | None  # to `eta_to`
    eta_to: Literal["pickup", "dropoff"] | None


class TrackingView(msgspec.Struct, frozen=True):
    order_id: str
    status: str
    restaurant: Place
    dropoff: Place
    delivery_note: str | None
    items: list[ItemLine]
    timeline: list[TimelineStep]
    placed_at: datetime
    eta: datetime | None  # when the food should arrive (delivered: when it did)
    eta_source: Literal["promised", "kitchen", "courier", "delivered"] | None
    courier: CourierOut | None


def estimate_eta(order: OrderOut, position: CourierPosition | None) -> tuple[datetime | None, str | None]:
    """When the food arrives, and what the estimate rests on. The courier's position, once there is one
    (to the door; or to the restaurant, then no earlier than the food is ready, then the ride); before
    that the later of the promised time and the kitchen's ready time plus the ride."""
    if order.status == "delivered":
        return order.delivered_at, "delivered"
    if order.status in ENDED:
        return None, None
    pickup, dropoff = (order.pickup.lat, order.pickup.lng), (order.dropoff.lat, order.dropoff.lng)
    vehicle = (position.courier.vehicle if position is not None and position.courier else None) or "car"
    ride = timedelta(seconds=_travel.seconds(pickup, dropoff, vehicle))
    if position is not None and position.eta_seconds is not None:
        arrive = position.at + timedelta(seconds=position.eta_seconds)
        if position.eta_to == "dropoff":
            return arrive, "courier"
        ready = order.ready_at or arrive
        return max(arrive, ready) + ride, "courier"
    if order.ready_at is not None and order.status != "picked_up":
        kitchen = order.ready_at + ride
        if order.eta is None or kitchen > order.eta:
            return kitchen, "kitchen"
    return order.eta, "promised" if order.eta is not None else None


def tracking_view(order: OrderOut, restaurant_name: str | None, position: CourierPosition | None,
                  courier_first_name: str | None, restaurant_zone: str | None = None) -> TrackingView:
    """The view of `order`; `position` is shown only inside the window (the caller read it from tracking,
    which applies the window; a terminal order shows none whatever it is given)."""
    if order.status in ENDED or order.status == "delivered":
        position = None
    eta, source = estimate_eta(order, position)
    courier = None
    if position is not None:
        card = position.courier
        courier = CourierOut(
            first_name=(card.first_name if card and card.first_name else courier_first_name),
            vehicle=card.vehicle if card else None, lat=position.lat, lng=position.lng, at=position.at,
            heading=position.heading, eta_seconds=position.eta_seconds, eta_to=position.eta_to,
        )
    return TrackingView(
        order_id=order.id, status=order.status,
        restaurant=Place(order.pickup.lat, order.pickup.lng, restaurant_name, restaurant_zone),
        dropoff=Place(order.dropoff.lat, order.dropoff.lng), delivery_note=order.delivery_note,
        items=[ItemLine(line.name, line.quantity) for line in order.lines],
        timeline=[TimelineStep(h.to_status, h.at) for h in order.history], placed_at=order.placed_at,
        eta=eta, eta_source=source, courier=courier,  # type: ignore[arg-type]
    )


def first_name(name: str | None) -> str | None:
    return (name or "").strip().split(" ")[0] or None
