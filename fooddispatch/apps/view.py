"""The customer's view of one order, as the tracking page and `GET /v1/orders/{id}/tracking` show it.

It joins what three packages know (orders: status, timeline, stops, note; catalog: the restaurant's
name; tracking: the courier's position and the ETA to its next stop), so it is composed here, in the
composition root. It carries nothing beyond that one order: no customer id, name, address text or phone,
no prices, no other order, no account ids; of the courier only a first name and the vehicle.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

from geo.eta import HaversineTravelTime
from kernel.fielddoc import LAT, LNG, doc
from orders.messages import OrderOut
from tracking.messages import CourierPosition

ENDED = frozenset({"cancelled", "rejected", "expired"})
_travel = HaversineTravelTime()


class Place(msgspec.Struct, frozen=True):
    """A place on the tracking map."""

    lat: Annotated[float, LAT]
    lng: Annotated[float, LNG]
    name: Annotated[str | None, doc("What to label it with", "Pizza Uno Mitte")] = None
    time_zone: Annotated[str | None, doc("The restaurant's IANA time zone: the page shows its times in it",
                                         "Europe/Berlin")] = None


class TimelineStep(msgspec.Struct, frozen=True):
    """A status the order reached."""

    status: Annotated[str, doc("The status", "accepted")]
    at: Annotated[datetime, doc("When (UTC)", "2026-12-07T18:01:30Z")]


class ItemLine(msgspec.Struct, frozen=True):
    """An ordered item, without prices."""

    name: Annotated[str, doc("The item's name", "Margherita")]
    quantity: Annotated[int, doc("How many", 2)]


class CourierOut(msgspec.Struct, frozen=True):
    """Shown only while the courier carries the order (assigned, not delivered)."""

    first_name: Annotated[str | None, doc("The courier's first name", "Sam")]
    vehicle: Annotated[str | None, doc("How the courier travels", "bicycle")]
    lat: Annotated[float, LAT]
    lng: Annotated[float, LNG]
    at: Annotated[datetime, doc("Device time of the position fix", "2026-12-07T18:20:14Z")]  # device time of the fix
    heading: Annotated[float | None, doc("Direction of travel in degrees from north", 270.0)]
    eta_seconds: Annotated[int | None, doc("Seconds until the courier reaches `eta_to`", 420)]  # to `eta_to`
    eta_to: Annotated[Literal["pickup", "dropoff"] | None, doc("Where the courier is heading", "dropoff")]


class TrackingView(msgspec.Struct, frozen=True):
    """What the tracking page shows: status, timeline, ETA and, while carried, the courier (no account ids)."""

    order_id: Annotated[str, doc("The order's id", "ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    status: Annotated[str, doc("The order's status", "picked_up")]
    restaurant: Annotated[Place, doc("The restaurant")]
    dropoff: Annotated[Place, doc("The drop-off")]
    delivery_note: Annotated[str | None, doc("Instructions for the courier", "ring twice")]
    items: Annotated[list[ItemLine], doc("What was ordered", [{"name": "Margherita", "quantity": 2}])]
    timeline: Annotated[list[TimelineStep], doc("The statuses reached, oldest first",
                                                [{"status": "placed", "at": "2026-12-07T18:00:00Z"}])]
    placed_at: Annotated[datetime, doc("When it was ordered (UTC)", "2026-12-07T18:00:00Z")]
    eta: Annotated[datetime | None, doc(  # when the food should arrive (delivered: when it did)
        "When the food should arrive (delivered: when it did)", "2026-12-07T18:32:00Z")]
    eta_source: Annotated[Literal["promised", "kitchen", "courier", "delivered"] | None,
                          doc("What the ETA rests on", "courier")]
    courier: Annotated[CourierOut | None, doc("The courier, while carrying the order")]


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
