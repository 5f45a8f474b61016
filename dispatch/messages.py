"""Wire formats of the live dispatcher: the frames it publishes on a courier's channel
(`{prefix}courier:{courier_id}`, forwarded verbatim by tracking: `offer`, `offer_cancelled`,
`reposition`, `error`), and the operator views.

A courier answers an offer on its socket with tracking's `offer_response` frame:
`{"type": "offer_response", "offer_id": "ofr_...", "accepted": true | false, "id": "<optional>"}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from kernel.fielddoc import AMOUNT, CURRENCY, LAT, LNG, doc

ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
REGION = doc("The dispatch region", "berlin")
OFFER_ID = doc("The offer's id", f"ofr_{ULID}")
COURIER_ID = doc("The courier's account id", f"cou_{ULID}")
ORDER_IDS = doc("The orders in the bundle", [f"ord_{ULID}"])
CELL = doc("An H3 cell index", "871f1d489ffffff")


class LatLng(msgspec.Struct):
    """A place on the map (WGS84)."""

    lat: Annotated[float, LAT]
    lng: Annotated[float, LNG]


class MoneyOut(msgspec.Struct):
    """An amount of money: integer minor units and a currency."""

    amount: Annotated[int, AMOUNT]  # minor units
    currency: Annotated[str, CURRENCY]


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
    """Demand and supply in one H3 resolution-7 cell, and the surge it priced."""

    cell: Annotated[str, CELL]  # H3 resolution 7
    lat: Annotated[float, doc("The cell centre's latitude", 52.52)]
    lng: Annotated[float, doc("The cell centre's longitude", 13.405)]
    open_orders: Annotated[int, doc("Orders waiting for a courier in the cell", 7)]
    available_couriers: Annotated[int, doc("Couriers free in the cell", 3)]
    multiplier: Annotated[float, doc("The busy-area fee multiplier published for the cell", 1.25)]
    changed_at: Annotated[float | None, doc(  # epoch seconds of the last level change
        "When the level last changed, seconds since the epoch", 1765130400.0)] = None


class SurgeMap(msgspec.Struct):
    """A region's surge heat map."""

    region: Annotated[str, REGION]
    updated_at: Annotated[datetime | None, doc("When the map was last computed", "2026-12-07T18:00:00Z")]
    cells: Annotated[list[HeatCell], doc("The cells with demand or supply", [])]


class PoolOrder(msgspec.Struct):
    """An order in the dispatch pool."""

    order_id: Annotated[str, doc("The order's id", f"ord_{ULID}")]
    store_id: Annotated[str, doc("The store's id", f"sto_{ULID}")]
    status: Annotated[str, doc("waiting, offered or assigned", "offered")]
    pickup: Annotated[LatLng, doc("The store")]
    dropoff: Annotated[LatLng, doc("The drop-off")]
    placed_at: Annotated[datetime, doc("When it was placed", "2026-12-07T18:00:00Z")]
    ready_at: Annotated[datetime | None, doc("When the food is expected", "2026-12-07T18:15:00Z")]
    promised_at: Annotated[datetime, doc("The promised delivery time", "2026-12-07T18:40:00Z")]
    excluded_couriers: Annotated[list[str], doc("Couriers who declined or let an offer lapse: not offered again",
                                                [f"cou_{ULID}"])]
    offer_id: Annotated[str | None, doc("The live offer, if any", f"ofr_{ULID}")] = None
    courier_id: Annotated[str | None, doc("The assigned courier, if any", None)] = None


class LiveOffer(msgspec.Struct):
    """An offer waiting for the courier's answer."""

    offer_id: Annotated[str, OFFER_ID]
    courier_id: Annotated[str, COURIER_ID]
    order_ids: Annotated[list[str], ORDER_IDS]
    status: Annotated[str, doc("The offer's status", "pending")]
    expires_at: Annotated[datetime, doc("It lapses then", "2026-12-07T18:01:00Z")]
    payout: Annotated[MoneyOut, doc("What the bundle pays the courier")]


class PoolView(msgspec.Struct):
    """A region's dispatch pool."""

    region: Annotated[str, REGION]
    orders: Annotated[list[PoolOrder], doc("Orders waiting, offered or assigned", [])]
    offers: Annotated[list[LiveOffer], doc("Offers out", [])]


class RoundStat(msgspec.Struct):
    """One dispatch round."""

    region: Annotated[str, REGION]
    at: Annotated[datetime, doc("When it ran", "2026-12-07T18:00:05Z")]
    seconds: Annotated[float, doc("How long it took", 0.042)]
    open_orders: Annotated[int, doc("Orders it considered", 12)]
    couriers: Annotated[int, doc("Couriers it considered", 9)]
    offers: Annotated[int, doc("Offers it sent", 5)]
    held: Annotated[int, doc("Orders it held back to bundle later", 2)]
    fence: Annotated[int, doc("The region lease's fencing token it ran under", 17)]


class RoundStats(msgspec.Struct):
    """Recent dispatch rounds of this process in a region, and the region's lease."""

    region: Annotated[str, REGION]
    lease_holder: Annotated[str | None, doc("The process holding the region's lease", "web-1")]
    fence: Annotated[int | None, doc("The lease's fencing token", 17)]
    this_process_leads: Annotated[bool, doc("Whether this process dispatches the region", True)]
    offers_sent: Annotated[int, doc("Offers sent since start", 120)]
    offers_accepted: Annotated[int, doc("Offers accepted", 96)]
    offers_declined: Annotated[int, doc("Offers declined", 14)]
    offers_expired: Annotated[int, doc("Offers that lapsed", 10)]
    rounds: Annotated[list[RoundStat], doc("The latest rounds, newest first", [])]


encoder = msgspec.json.Encoder()
