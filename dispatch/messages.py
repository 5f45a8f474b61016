"""Wire formats of the live dispatcher: the frames it publishes on a courier's channel
(`{prefix}courier:{courier_id}`, forwarded verbatim by tracking: `offer`, `offer_cancelled`,
`reposition`, `error`), and the operator views.

A courier answers an offer on its socket with tracking's `offer_response` frame:
`{"type": "offer_response", "offer_id": "ofr_...", "accepted": true | false, "id": "<optional>"}`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class LatLng(msgspec.Struct):
    lat: float
    lng: float


class MoneyOut(msgspec.Struct):
    amount: int  # minor units
    currency: str


class OfferPickup(msgspec.Struct):
    store_id: str
    lat: float
    lng: float
    arrive_by: datetime  # planned arrival at the counter
    ready_at: datetime  # when the food is expected (the pickup is not before it)


class OfferDropoff(msgspec.Struct):
    order_id: str
    lat: float
    lng: float
    eta: datetime  # planned drop-off
    promised_at: datetime


class OfferFrame(msgspec.Struct, tag="offer", tag_field="type"):
    """An offer: one bundle from one pickup, its drop-offs in the planned order, what it pays and
    until when it may be accepted. Its one declaration: tracking forwards it verbatim."""

    offer_id: str
    order_ids: list[str]
    expires_at: datetime
    payout: MoneyOut
    pickup: OfferPickup
    dropoffs: list[OfferDropoff]
    region: str


class OfferCancelled(msgspec.Struct, tag="offer_cancelled", tag_field="type"):
    """The offer is withdrawn (lapsed, or an order in it was cancelled): the app hides it."""

    offer_id: str
    reason: str


class RepositionFrame(msgspec.Struct, tag="reposition", tag_field="type"):
    """A nudge to an idle courier: food is waiting for couriers near (`lat`, `lng`), in H3 res-8
    `cell`; moving there is optional and earns nothing by itself. The app shows it until
    `expires_at` or until an offer arrives. `reason` is `orders_waiting`. Sent only to online
    couriers with no live offer and no accepted bundle, at most once per courier per cool-down."""

    lat: float
    lng: float
    cell: str
    reason: str
    expires_at: datetime
    region: str


class ErrorFrame(msgspec.Struct, tag="error", tag_field="type"):
    """An offer response that changed nothing: `offer_unknown`, `offer_not_yours`, `offer_expired`."""

    code: str
    message: str
    offer_id: str | None = None


# -- operator views ---------------------------------------------------------------------------


class HeatCell(msgspec.Struct):
    cell: str  # H3 resolution 7
    lat: float
    lng: float
    open_orders: int
    available_couriers: int
    multiplier: float
    changed_at: float | None = None  # epoch seconds of the last level change


class SurgeMap(msgspec.Struct):
    region: str
    updated_at: datetime | None
    cells: list[HeatCell]


class PoolOrder(msgspec.Struct):
    order_id: str
    store_id: str
    status: str
    pickup: LatLng
    dropoff: LatLng
    placed_at: datetime
    ready_at: datetime | None
    promised_at: datetime
    excluded_couriers: list[str]
    offer_id: str | None = None
    courier_id: str | None = None


class LiveOffer(msgspec.Struct):
    offer_id: str
    courier_id: str
    order_ids: list[str]
    status: str
    expires_at: datetime
    payout: MoneyOut


class PoolView(msgspec.Struct):
    region: str
    orders: list[PoolOrder]
    offers: list[LiveOffer]


class RoundStat(msgspec.Struct):
    region: str
    at: datetime
    seconds: float
    open_orders: int
    couriers: int
    offers: int
    held: int
    fence: int


class RoundStats(msgspec.Struct):
    region: str
    lease_holder: str | None
    fence: int | None
    this_process_leads: bool
    offers_sent: int
    offers_accepted: int
    offers_declined: int
    offers_expired: int
    rounds: list[RoundStat]


encoder = msgspec.json.Encoder()
