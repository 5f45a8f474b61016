"""What a tracking link's holder sees of an order's live state: the same feed as the order's customer,
less what is not theirs to know. Frames carry no courier id (the courier is a first name and a vehicle),
and a position passes only inside the tracking window (assigned, not yet delivered, from the courier
assigned now: `tracking.model.in_window`, checked by the feed and again here for the one-off read).

`courier_position` is the one-off read for the JSON view; `LinkSender` reshapes the order feed's frames
for a link watcher's socket (`serve_watcher(..., sender=LinkSender)`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

import msgspec

from tracking import store
from tracking.messages import CourierCard, CourierPosition, OrderStatus, bundle_decoder, order_message_decoder
from tracking.model import eta_seconds, in_window
from tracking.sender import Sender
from tracking.service import TrackingService

log = logging.getLogger(__name__)


class LinkStatus(msgspec.Struct, tag="status", tag_field="type", omit_defaults=True):
    order_id: str
    at: datetime
    status: str | None = None
    version: int | None = None
    event: str | None = None


class LinkPosition(msgspec.Struct, tag="courier_position", tag_field="type", omit_defaults=True):
    order_id: str
    lat: float
    lng: float
    at: datetime
    heading: float | None = None
    speed: float | None = None
    eta_seconds: int | None = None
    eta_to: Literal["pickup", "dropoff"] | None = None
    courier: CourierCard | None = None


_encode = msgspec.json.Encoder().encode


def redact(raw: bytes) -> bytes | None:
    """An order-channel message as a link watcher gets it (None: nothing for it)."""
    try:
        message = order_message_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("order message not understood, not forwarded to link watchers")
        return None
    if isinstance(message, OrderStatus):
        return _encode(LinkStatus(message.order_id, message.at, message.status, message.version, message.event))
    return _encode(public_position(message))


def public_position(p: CourierPosition) -> LinkPosition:
    card = p.courier
    return LinkPosition(p.order_id, p.lat, p.lng, p.at, p.heading, p.speed, p.eta_seconds, p.eta_to,
                        CourierCard(card.first_name, card.vehicle) if card is not None else None)


class LinkSender(Sender):
    """A watcher socket's sender that forwards only the redacted form of each frame."""

    __slots__ = ()

    def send(self, payload: bytes, frame: bytes | None = None) -> bool:
        public = redact(payload)
        return True if public is None else super().send(public)


async def courier_position(service: TrackingService, order_id: str) -> CourierPosition | None:
    """The position of the courier carrying the order, with the ETA to its next stop for this order;
    None outside the tracking window or while the live index has no position of the courier."""
    row = await store.tracked_order(service.pool, order_id)
    if row is None or not in_window(row.status, row.courier_id) or row.courier_id is None:
        return None
    courier_id = row.courier_id
    region = row.region or service.config.region
    live = (await service.index(region).courier_states([courier_id])).get(courier_id)
    state = live.state if live is not None else None
    if state is None or state.lat is None or state.lng is None:
        return None
    lat, lng = state.lat, state.lng
    session = service.couriers.get(courier_id)
    first_name = session.first_name if session is not None else None
    if session is not None and session.track.smooth_lat is not None and session.track.smooth_lng is not None:
        lat, lng = session.track.smooth_lat, session.track.smooth_lng  # what its watchers are shown
    raw = await service.redis.hget(service.channels.bundles(region), courier_id)
    stops = next((o for o in bundle_decoder.decode(raw) if o.order_id == order_id), None) if raw else None
    eta, eta_to = eta_seconds(lat, lng, stops, state.vehicle) if stops is not None else (None, None)
    at = datetime.fromtimestamp(state.ts or state.seen, UTC)
    return CourierPosition(order_id, courier_id, lat, lng, at, state.heading, state.speed, eta,
                           eta_to, CourierCard(first_name, state.vehicle))  # type: ignore[arg-type]
