"""The events dispatch publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

Dispatch's published contract with the packages that consume its events (orders, tracking, the ops
console): it imports nothing but msgspec and the kernel, so importing it brings none of dispatch's code
along. Fields are in wire order.
"""

from __future__ import annotations

from datetime import datetime

from kernel.outbox import EventData, MoneyData


class DispatchOffered(EventData, frozen=True, kw_only=True):
    """A round offered the bundle `order_ids` to the courier, for `payout`, until `expires_at` (the
    offer frame goes to the courier's socket)."""

    event_type = "dispatch.offered"
    offer_id: str
    courier_id: str
    order_ids: tuple[str, ...]
    expires_at: datetime
    payout: MoneyData


class DispatchAssigned(EventData, frozen=True, kw_only=True):
    """The courier accepted offer `offer_id` at `at`: its orders are the courier's to carry."""

    event_type = "dispatch.assigned"
    offer_id: str
    courier_id: str
    order_ids: tuple[str, ...]
    at: datetime


class DispatchUnassigned(EventData, frozen=True, kw_only=True):
    """Orders the courier had accepted but not picked up go back to the pool (`reason`:
    `courier_offline` or `courier_stale`) and are dispatched again."""

    event_type = "dispatch.unassigned"
    courier_id: str
    order_ids: tuple[str, ...]
    reason: str


DispatchEvent = DispatchOffered | DispatchAssigned | DispatchUnassigned
"""Dispatch's events, tagged by the envelope's `type`."""

EVENTS: tuple[type[EventData], ...] = (DispatchOffered, DispatchAssigned, DispatchUnassigned)
