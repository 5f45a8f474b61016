"""An order as a value: what `store.py` reads back (after checkout wrote it, or any time later) and
the rest of orders passes around, so no layer above the store handles a driver row. Pure: frozen
dataclasses, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.money import Money
from orders.model import Status
from orders.pricing import PriceBreakdown


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_no: int
    item_id: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money
    options: list[dict[str, Any]]  # as priced at checkout (option id, name, quantity, unit price, sub-options)
    missing_quantity: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the order's status history."""

    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    """The order with its lines and history, as stored."""

    id: str
    status: Status
    customer_id: str
    store_id: str
    tenant_id: str
    region: str
    pricing: PriceBreakdown  # the bill as priced at checkout (with the tip as changed since)
    total: Money
    refunded: Money
    captured: Money
    cancel_fee: Money
    pickup: tuple[float, float]  # (lat, lng)
    dropoff: tuple[float, float]
    address: str
    placed_at: datetime
    accept_by: datetime
    accepted_at: datetime | None
    prep_time_s: int
    ready_at: datetime | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    promised_window: tuple[datetime, datetime]
    courier_id: str | None
    end_reason: str | None
    rating: int | None
    lines: tuple[OrderLine, ...]
    history: tuple[Transition, ...]
    delivery_note: str | None = None  # for the courier, from the customer's quote

    @property
    def currency(self) -> str:
        return self.pricing.currency


@dataclass(frozen=True, slots=True)
class OrderHeader:
    """An order in a list: no lines, no history."""

    id: str
    status: str
    store_id: str
    customer_id: str
    total: Money
    placed_at: datetime
    accept_by: datetime
    ready_at: datetime | None
    courier_id: str | None


@dataclass(frozen=True, slots=True)
class OrderParties:
    """Who an order belongs to and where it stands: what a live view checks access against."""

    order_id: str
    customer_id: str
    tenant_id: str
    region: str
    status: str
    courier_id: str | None
    at: datetime  # of the last transition
    store_id: str
