"""Exactly the calls orders makes into catalog, payments and the surge signal.

The service depends on these Protocols; the composition root passes the real
`catalog.CatalogService` and `payments.PaymentsService` (they match structurally).
Catalog's value types (`QuoteContext`, `CartQuote`, `ResolvedLine`...) are used directly:
orders may import catalog's public interface.
Every call takes the caller's connection, so checkout's stock reservation and
payment hold commit or roll back with the order itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any, Protocol

import asyncpg

from catalog import CartLineInput, CartQuote, QuoteContext
from kernel.money import Money


class Catalog(Protocol):
    """The calls orders makes into `catalog.CatalogService` (its public types imported directly)."""

    async def cart_quote(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime,
        lines: Sequence[CartLineInput],
    ) -> CartQuote: ...

    async def quote_context(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime
    ) -> QuoteContext: ...

    async def store_tenant(self, conn: asyncpg.Connection, store_id: str) -> str | None: ...

    async def is_open_at(self, conn: asyncpg.Connection, store_id: str, at: datetime) -> bool: ...

    async def reserve(self, conn: asyncpg.Connection, order_id: str, items: Sequence[tuple[str, int]]) -> None: ...

    async def release(self, conn: asyncpg.Connection, order_id: str) -> bool: ...


class AuthorizationLike(Protocol):
    intent_id: str
    status: str
    amount: Money
    payment_method_id: str | None


class Payments(Protocol):
    async def authorize(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: str,
        payment_method_id: str,
        amount: Money,
        reference: str,
        idempotency_key: str,
        metadata: dict[str, Any] | None = None,
        risk: Any = None,
    ) -> Any: ...

    async def attach_authorized(
        self,
        conn: asyncpg.Connection,
        *,
        intent_id: str,
        customer_id: str,
        amount: Money,
        reference: str,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        """The customer's authorized hold (confirmed apart, after 3-D Secure) pays for `reference`."""
        ...

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money) -> Any: ...

    async def void(self, conn: asyncpg.Connection, intent_id: str, reason: str) -> Any: ...

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     idempotency_key: str | None = None) -> Any: ...

    async def post_split(self, conn: asyncpg.Connection, *, reference: str, split: Any) -> Any: ...


class SplitFactory(Protocol):
    """Builds payments' `Split` message from minor units (payments.Split matches)."""

    def __call__(
        self,
        *,
        currency: str,
        customer_charged: int,
        restaurant_payable: int,
        restaurant_id: str,
        courier_earnings: int,
        courier_id: str | None,
        platform_revenue: int,
        tax_payable: int,
    ) -> Any: ...


class SurgeSource(Protocol):
    """The surge multiplier of the H3 cell around a pickup point.

    Dispatch will publish surge signals; until then `NoSurge` answers 1. A real
    source must answer fast (the quote path calls it once per quote) and never raise:
    on doubt it returns 1.
    """

    async def multiplier(self, lat: float, lng: float) -> Fraction: ...


class NoSurge:
    async def multiplier(self, lat: float, lng: float) -> Fraction:
        return Fraction(1)
