"""Offers as plain data: their states, how a courier's answer is judged, what an offer pays,
and the region lease value. No I/O; `dispatch.live` and `dispatch.store` carry out what this says.

An offer is `pending` from the moment it is written until the courier answers or it lapses:

    pending --accept--> accepted --(all delivered/ended)--> completed
       |                   \\--(courier offline/stale before pick-up)--> unassigned
       |--decline--> declined      (orders back to the pool, this courier excluded for them)
       |--timeout--> expired       (the same)
       \\--an order cancelled / courier gone--> cancelled (the other orders back to the pool)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from dispatch.model import Route
from geo.eta import haversine_m


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    UNASSIGNED = "unassigned"


class Verdict(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    UNKNOWN = "offer_unknown"  # no such offer (or another region's)
    NOT_YOURS = "offer_not_yours"  # the offer went to another courier
    EXPIRED = "offer_expired"  # lapsed, or already answered / withdrawn


@dataclass(frozen=True, slots=True)
class OfferView:
    """What judging an answer needs to know about an offer."""

    offer_id: str
    courier_id: str
    status: OfferStatus
    expires_at: float  # epoch seconds


def judge_response(offer: OfferView | None, courier_id: str, accepted: bool, at: float) -> Verdict:
    """What a courier's answer does. Only the offer's own courier, answering a pending offer in
    time, changes anything; every other answer gets an error frame and changes nothing.

    `at` is the server time the answer was received (tracking stamps it), so an answer sent in
    time but processed after the deadline still counts, unless the offer was already expired.
    """
    if offer is None:
        return Verdict.UNKNOWN
    if offer.courier_id != courier_id:
        return Verdict.NOT_YOURS
    if offer.status is not OfferStatus.PENDING or at > offer.expires_at:
        return Verdict.EXPIRED
    return Verdict.ACCEPT if accepted else Verdict.DECLINE


ERROR_MESSAGES = {
    Verdict.UNKNOWN: "no such offer",
    Verdict.NOT_YOURS: "this offer was made to another courier",
    Verdict.EXPIRED: "this offer is no longer open",
}


def with_excluded(excluded: Iterable[str], courier_id: str) -> list[str]:
    """The exclusion list of an order after `courier_id` declined it or let it lapse."""
    out = list(dict.fromkeys(excluded))
    if courier_id not in out:
        out.append(courier_id)
    return out


@dataclass(frozen=True, slots=True)
class PayoutRule:
    """What a courier earns for a bundle: a fixed amount per order plus distance driven loaded,
    in minor units. Shown in the offer; the ledger posts the real earnings at delivery."""

    per_order: int = 250
    per_km: int = 60
    minimum: int = 350

    def payout(self, route: Route) -> int:
        orders = sum(len(stop.order_ids) for stop in route.stops[1:])
        meters = sum(haversine_m(a.point, b.point) for a, b in zip(route.stops, route.stops[1:], strict=False))
        return max(self.minimum, self.per_order * orders + round(self.per_km * meters / 1000))


# -- the region lease ------------------------------------------------------------------------


def lease_value(token: int, owner: str) -> str:
    """The lease key's value: the fencing token first, so a reader learns both in one GET."""
    return f"{token}:{owner}"


def parse_lease(value: bytes | str | None) -> tuple[int, str] | None:
    """(token, owner) of a lease value, or None when there is no (valid) lease."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    token, sep, owner = text.partition(":")
    if not sep or not token.isdigit():
        return None
    return int(token), owner


def is_newer_fence(token: int, last_written: int | None) -> bool:
    """A write under `token` is allowed when no newer token has written: tokens only grow, so a
    holder that lost its lease (and whose successor has written) is refused."""
    return last_written is None or token >= last_written
