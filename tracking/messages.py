"""Wire formats of live tracking: websocket frames (a tagged union on `type`), the
messages on the order channels, and tracking's own control messages between processes.

Courier -> server frames are JSON text frames or msgpack binary frames with the same
fields; server -> courier frames are always JSON text. Decoders are built once here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.fielddoc import doc


class Point(msgspec.Struct, forbid_unknown_fields=True):
    """One GPS fix. `ts` is device time in unix seconds, `seq` the courier app's counter
    (strictly increasing per courier; it survives reconnects, so replays are deduplicated)."""

    lat: float
    lng: float
    ts: float
    seq: int
    accuracy: float | None = None  # meters
    speed: float | None = None  # m/s
    heading: float | None = None  # degrees


# -- courier -> server -------------------------------------------------------------------


class Hello(msgspec.Struct, tag="hello", tag_field="type", forbid_unknown_fields=True):
    token: str | None = None  # required when the socket was opened without credentials
    vehicle: Literal["bicycle", "scooter", "car", "walk"] | None = None


class Location(msgspec.Struct, tag="location", tag_field="type", forbid_unknown_fields=True):
    """One point inline (`lat`, `lng`, `ts`, `seq`, ...) and/or several in `points`
    (an offline buffer replayed on reconnect), applied in order."""

    lat: float | None = None
    lng: float | None = None
    ts: float | None = None
    seq: int | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    points: list[Point] | None = None

    def all_points(self) -> list[Point] | None:
        """The points in order, or None if the frame carries no complete point."""
        if self.lat is not None or self.seq is not None:
            if self.lat is None or self.lng is None or self.ts is None or self.seq is None:
                return None
            if not self.points:
                # The common frame, one fix: the frame itself reads like a Point (same field
                # names, all set), so no copy is made.
                return [self]  # type: ignore[list-item]
            return [Point(self.lat, self.lng, self.ts, self.seq, self.accuracy, self.speed, self.heading),
                    *self.points]
        return self.points or None


class Status(msgspec.Struct, tag="status", tag_field="type", forbid_unknown_fields=True):
    status: Literal["online", "offline", "break"]
    id: str | None = None  # client action id: makes a resend idempotent and is echoed in the ack


class OfferResponse(msgspec.Struct, tag="offer_response", tag_field="type", forbid_unknown_fields=True):
    offer_id: str
    accepted: bool
    id: str | None = None


class Arrived(msgspec.Struct, tag="arrived", tag_field="type", forbid_unknown_fields=True):
    order_id: str
    where: Literal["pickup", "dropoff"]
    id: str | None = None


class PickedUp(msgspec.Struct, tag="picked_up", tag_field="type", forbid_unknown_fields=True):
    order_id: str
    id: str | None = None


class Proof(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    photo_url: str | None = None
    code: str | None = None


class Delivered(msgspec.Struct, tag="delivered", tag_field="type", forbid_unknown_fields=True):
    order_id: str
    proof: Proof | None = None
    id: str | None = None


CourierFrame = Hello | Location | Status | OfferResponse | Arrived | PickedUp | Delivered
CourierAction = Status | OfferResponse | Arrived | PickedUp | Delivered

json_frame_decoder = msgspec.json.Decoder(CourierFrame)
msgpack_frame_decoder = msgspec.msgpack.Decoder(CourierFrame)


# -- server -> courier -------------------------------------------------------------------


class Ack(msgspec.Struct, tag="ack", tag_field="type", omit_defaults=True):
    """`seq`: every location point up to it is done (stored in the live index and queued for
    history, or rejected with an `error` frame); the app may drop them from its buffer.
    `id`: the action with this id is committed."""

    seq: int | None = None
    id: str | None = None


class Error(msgspec.Struct, tag="error", tag_field="type", omit_defaults=True):
    """`seq`: the rejected point. `id`: the refused action (not recorded; not acked). `state`:
    the order's state when a pick-up or delivery cannot happen in it (`invalid_transition`)."""

    code: str
    message: str
    seq: int | None = None
    id: str | None = None
    state: str | None = None


# The `code` of an `error` frame that refuses a frame (documented in /asyncapi.json). A refused action
# (`status`, `arrived`, `picked_up`, `delivered`) carries the API's error code instead, e.g.
# `invalid_transition` with the order's `state`.
FRAME_ERRORS = {
    "malformed_frame": "not JSON (text frame) or msgpack (binary frame)",
    "invalid_frame": "an unknown `type`, a field missing or of the wrong type, text with NUL, or a location "
                     "frame without a complete point",
    "rate_limited": "too many frames or points: slow down, resend the unacked points later",
    "too_many_points": "more points in one location frame than allowed",
    "point_rejected": "the point `seq` was refused (the message says why, e.g. a teleport); it is not stored",
    "unavailable": "the action could not be recorded: resend it",
}


# The offer frames (`offer`, `offer_cancelled`, `reposition`, and `error` for an offer answer) are published
# by dispatch on the courier channel and forwarded verbatim: dispatch.messages declares them, and the
# AsyncAPI document (fooddispatch/asyncapi.py) lists them for this socket.


class StatusSet(msgspec.Struct, tag="status", tag_field="type"):
    """Server -> courier: the courier's status was changed for it (an operator took it offline)."""

    status: Literal["online", "offline", "break"]
    by: Literal["operator"] = "operator"


class Assigned(msgspec.Struct, tag="assigned", tag_field="type"):
    """Server -> courier: an operator gave this order to the courier by hand (there is no offer to answer):
    pick it up at `pickup`, take it to `dropoff`."""

    order_id: str
    pickup: LatLng | None
    dropoff: LatLng | None
    by: Literal["operator"] = "operator"


class Unassigned(msgspec.Struct, tag="unassigned", tag_field="type"):
    """Server -> courier: the order is no longer the courier's (an operator gave it to another courier);
    the app drops it from the job."""

    order_id: str
    reason: Literal["reassigned"] = "reassigned"


# -- operator routes -------------------------------------------------------------------------


class CourierStatusOut(msgspec.Struct):
    """The answer to `POST /v1/couriers/{courier_id}/offline`. `changed`: false if the courier
    was offline already (nothing was recorded); `connected`: a socket of the courier was open on
    the process that answered (other processes are told through the control channel)."""

    courier_id: Annotated[str, doc("The courier's account id", "cou_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    status: Annotated[str, doc("The courier's status now", "offline")]
    changed: Annotated[bool, doc("False if the courier was offline already (nothing recorded)", True)]
    connected: Annotated[bool, doc("A socket of the courier was open on the process that answered", False)]


# -- order channel: tracking -> customer / restaurant watchers --------------------------


class LatLng(msgspec.Struct):
    lat: float
    lng: float


class CourierCard(msgspec.Struct, omit_defaults=True):
    first_name: str | None = None
    vehicle: str | None = None


class OrderStatus(msgspec.Struct, tag="status", tag_field="type", omit_defaults=True):
    """The order's tracking state. `version` grows with every change of the projection row;
    a watcher ignores a message older than what it has. `event` names what happened
    (`order.accepted`, `dispatch.assigned`, `courier.arrived_dropoff`, ...)."""

    order_id: str
    at: datetime
    status: str | None = None  # None with `event` only: a notification that changes no state
    version: int | None = None
    courier_id: str | None = None
    event: str | None = None


class CourierPosition(msgspec.Struct, tag="courier_position", tag_field="type", omit_defaults=True):
    order_id: str
    courier_id: str
    lat: float  # smoothed
    lng: float
    at: datetime  # device time of the fix
    heading: float | None = None
    speed: float | None = None
    eta_seconds: int | None = None
    eta_to: Literal["pickup", "dropoff"] | None = None
    courier: CourierCard | None = None


OrderMessage = OrderStatus | CourierPosition
order_message_decoder = msgspec.json.Decoder(OrderMessage)


# -- tracking's control channel (between tracking processes) ----------------------------


class BundleOrder(msgspec.Struct):
    order_id: str
    pickup: LatLng | None
    dropoff: LatLng | None
    picked_up: bool = False


class Connected(msgspec.Struct, tag="connected", tag_field="type"):
    """A courier socket opened on some process: any other process holding one closes it (4409)."""

    courier_id: str
    conn_id: str


class BundleChanged(msgspec.Struct, tag="bundle", tag_field="type"):
    """The orders a courier carries now; the process holding its socket starts or stops
    publishing its position to those orders' channels."""

    courier_id: str
    orders: list[BundleOrder]


class StatusForced(msgspec.Struct, tag="status", tag_field="type"):
    """An operator changed the courier's status: the process holding its socket applies it
    (keeps it in memory, so the next flush does not undo it, and tells the courier)."""

    courier_id: str
    status: Literal["online", "offline", "break"]


class CustomerErased(msgspec.Struct, tag="customer_erased", tag_field="type"):
    """A customer was erased (docs/PRIVACY.md): every process closes the order-tracking sockets that show
    their data, their own and their tracking links' (`tracking.watchers.ERASED`)."""

    customer_id: str


ControlMessage = Connected | BundleChanged | StatusForced | CustomerErased
control_decoder = msgspec.json.Decoder(ControlMessage)
bundle_decoder = msgspec.json.Decoder(list[BundleOrder])

encoder = msgspec.json.Encoder()
