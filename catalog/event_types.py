"""The events catalog publishes: one payload Struct per event type (docs/EVENTS.md is generated from them).

Catalog's published contract with the packages that consume its events (orders, the ops console): it
imports nothing but msgspec and the kernel. Fields are in wire order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from kernel.outbox import EventData


class StoreFacts(EventData, frozen=True, kw_only=True):
    """What every store event starts with."""

    store_id: str
    tenant_id: str


class StorePaused(StoreFacts, frozen=True, kw_only=True):
    """The merchant paused the store, until `until` (with the offset the merchant gave) or until
    opened again (null); `reason` as given."""

    event_type = "store.paused"
    until: datetime | None
    reason: str | None


class StoreOpened(StoreFacts, frozen=True, kw_only=True):
    """The store is online again: opened by hand, or its pause ended."""

    event_type = "store.opened"


class MenuPublished(StoreFacts, frozen=True, kw_only=True):
    """A new menu `version` of the store is live; its menu is the truth (sold-out items included)."""

    event_type = "menu.published"
    version: int


class ItemSoldOut(StoreFacts, frozen=True, kw_only=True):
    """An item became sold out, or its end moved (see below): `reason` `merchant` (until
    `sold_out_until`) or `stock` (counted stock reached 0; `sold_out_until` null)."""

    event_type = "item.sold_out"
    item_id: str
    reason: Literal["merchant", "stock"]
    sold_out_until: datetime | None


CatalogEvent = StorePaused | StoreOpened | MenuPublished | ItemSoldOut
"""Catalog's events, tagged by the envelope's `type`."""

EVENTS: tuple[type[EventData], ...] = (StorePaused, StoreOpened, MenuPublished, ItemSoldOut)
