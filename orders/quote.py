"""A quote as a value: a request priced against the current menu, the quote a customer is shown,
and what checkout finds when it claims a quote. Pure: frozen dataclasses, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from catalog import QuoteContext, ResolvedLine
from orders.messages import QuoteRequest
from orders.pricing import PriceBreakdown, Promo


@dataclass(frozen=True, slots=True)
class Priced:
    """A request priced against the current menu: what a quote shows and checkout writes."""

    request: QuoteRequest
    context: QuoteContext
    lines: list[ResolvedLine]
    breakdown: PriceBreakdown
    promo: Promo | None
    window: tuple[datetime, datetime]  # the delivery window promised
    at: datetime  # when it was priced


@dataclass(frozen=True, slots=True)
class Quote:
    """A priced request the customer can check out until `expires_at`."""

    id: str
    priced: Priced
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class QuoteClaim:
    """What checkout's first statement found (`store.claim_quote`): the quote (None fields: no such
    quote of this customer), whether this checkout claimed it for its order, and what else it
    needs to decide, read in the same round trip."""

    quote_id: str | None
    request: str | None  # the quoted request, as stored (JSON)
    total: int | None  # minor units, as quoted
    expires_at: datetime | None
    surge: Fraction | None  # the level the quote was priced at
    claimed: bool  # this checkout holds the quote for its order now
    used_by: str | None  # the order the quote paid for already, as of the statement's snapshot
    existing_order: str | None  # the order this idempotency key placed before
    first_order: bool  # no order of the customer was delivered yet
