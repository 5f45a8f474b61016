"""What orders needs from catalog, payments and the surge signal: these Protocols and nothing more.

The composition root passes the real `catalog.CatalogService`, `payments.PaymentsService` and
dispatch's `SurgeReader` (they match structurally); the unit tests pass in-memory fakes
(tests/unit/orders/orders_fakes.py). Catalog's and payments' value types (`QuoteContext`,
`ResolvedLine`, `Authorization`, `RiskContext`...) are used directly: orders may import their
public interfaces.

Every catalog and payments call takes the caller's connection, so checkout's stock reservation
and payment hold commit or roll back with the order itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any, Protocol

import asyncpg

from catalog import CartLineInput, QuoteContext, ResolvedLine
from kernel.money import Money
from orders.pricing import MemberBenefit
from payments import Authorization, Charge, RiskContext, StatementMovement


class QuotedCart(Protocol):
    """A cart read against a store's menu and stock (`catalog.CartQuote` matches): the store as a
    quote sees it, and `lines()`, which resolves and prices the cart or raises catalog's
    validation errors (so the store's state can be reported before the cart's problems)."""

    @property
    def context(self) -> QuoteContext: ...

    def lines(self) -> list[ResolvedLine]: ...


class Catalog(Protocol):
    """The calls orders makes into catalog."""

    async def cart_quote(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime,
        lines: Sequence[CartLineInput],
    ) -> QuotedCart: ...

    async def store_tenant(self, conn: asyncpg.Connection, store_id: str) -> str | None: ...

    async def reserve(self, conn: asyncpg.Connection, order_id: str, items: Sequence[tuple[str, int]]) -> None:
        """Take counted stock for an order, all or nothing (`catalog.OutOfStock`)."""
        ...

    async def release(self, conn: asyncpg.Connection, order_id: str) -> bool: ...


class Payments(Protocol):
    """The calls orders makes into payments."""

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
        risk: RiskContext | None = None,
        conversion_quote: str | None = None,
    ) -> Authorization:
        """Place a hold; a decline or a 3-D Secure challenge raises payments' 402 errors. From the
        wallet: `conversion_quote` converts wallet money first, else another currency is 409."""
        ...

    async def attach_authorized(
        self,
        conn: asyncpg.Connection,
        *,
        intent_id: str,
        customer_id: str,
        amount: Money,
        reference: str,
        metadata: dict[str, Any] | None = None,
    ) -> Authorization:
        """The customer's authorized hold (confirmed apart, after 3-D Secure) pays for `reference`."""
        ...

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money) -> object: ...

    async def void(self, conn: asyncpg.Connection, intent_id: str, reason: str) -> object: ...

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     idempotency_key: str | None = None, actor: str = "system", borne_by: str | None = None) -> str:
        """Refund part of what was captured; returns the refund id. `borne_by`: the restaurant tenant
        whose balance pays it (a merchant refund), else the platform."""
        ...

    async def post_split(self, conn: asyncpg.Connection, *, reference: str, split: Any) -> object: ...

    async def charges(self, conn: asyncpg.Connection, intent_ids: list[str]) -> list[Charge]:
        """What each of these intents captured and refunded."""
        ...

    async def restaurant_statement(self, conn: asyncpg.Connection, tenant_id: str, start: datetime,
                                   end: datetime) -> list[StatementMovement]:
        """Per order of the tenant, what the ledger moved for it in [start, end)."""
        ...


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
        platform_funded: int = 0,
    ) -> Any: ...


class Memberships(Protocol):
    """What the customer's membership gives at quote time: memberships' benefits of a trialing or active
    subscription to a plan of this region and currency (the composition root adapts
    `memberships.MembershipsService.benefits`), None when there is none. Reads through the caller's
    connection, like the other ports; orders never reads memberships' tables."""

    async def benefit(self, conn: asyncpg.Connection, customer_id: str, region: str,
                      currency: str) -> MemberBenefit | None: ...


class NoMemberships:
    """No customer is a member: the default when no memberships are wired (a process without them)."""

    async def benefit(self, conn: asyncpg.Connection, customer_id: str, region: str,
                      currency: str) -> MemberBenefit | None:
        return None


class SurgeSource(Protocol):
    """The surge multiplier of the H3 cell around a pickup point: dispatch's `SurgeReader` reads
    the level dispatch publishes for the cell (1 where none is published).

    A quote calls it once; checkout does not (it keeps the level the quote was priced at). It must
    answer fast and never raise: on doubt it returns 1.
    """

    async def multiplier(self, lat: float, lng: float) -> Fraction: ...


class NoSurge:
    """Surge 1 everywhere: the default when no source is wired (a process without dispatch)."""

    async def multiplier(self, lat: float, lng: float) -> Fraction:
        return Fraction(1)
