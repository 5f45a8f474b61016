"""The catalog facade: `CatalogService` is the one object the app holds (under `catalog.web.CATALOG`)
and the interface `orders/` uses. Its constructor builds the collaborators that hold the use cases,
each given only what it uses, and shares between them the one cache of parsed store rules:

- `merchant` (`Merchant`, merchant.py): tenants, stores, hours, zones, menus, stock, pause and resume,
  for staff, API keys (their own tenant's stores only) and operators; one transaction per command;
- `customer` (`Customer`, discovery.py): discovery from the in-memory index, a store's menu, search;
- `checkout` (`Checkout`, checkout.py): what `orders/` calls, each on the caller's connection so it
  runs inside the orders transaction: `cart_quote` (store, special days, menu and stock for a quote
  in one read), `quote_context`, `store_tenant`, `resolve_cart`, `reserve`, `release`.
  The facade's methods of those names hand the call on, so `orders/` sees one object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from catalog.checkout import Checkout
from catalog.discovery import Customer
from catalog.menu import CartQuote
from catalog.merchant import Merchant
from catalog.messages import CartLineInput
from catalog.model import QuoteContext, ResolvedLine
from catalog.published import PublishedMenus
from catalog.rules import RulesCache
from geo.eta import HaversineTravelTime
from kernel.clock import Clock


class CatalogService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        default_region: str = "default",
        travel: HaversineTravelTime | None = None,
        vehicle: str = "scooter",
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.rules = RulesCache()
        self.customer = Customer(pool, clock, self.rules, travel=travel or HaversineTravelTime(), vehicle=vehicle)
        self.merchant = Merchant(pool, clock, default_region=default_region, on_change=self.customer.changed)
        self.checkout = Checkout(clock, self.rules, PublishedMenus())

    # ---- the interface orders/ uses (see `Checkout`) ----------------------------------------

    async def quote_context(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime
    ) -> QuoteContext:
        """Everything a quote needs about the store for a drop-off point at time `at`."""
        return await self.checkout.quote_context(conn, store_id, lat, lng, at)

    async def cart_quote(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime,
        lines: Sequence[CartLineInput],
    ) -> CartQuote:
        """`quote_context` and the cart's menu and stock, from one statement."""
        return await self.checkout.cart_quote(conn, store_id, lat, lng, at, lines)

    async def store_tenant(self, conn: asyncpg.Connection, store_id: str) -> str | None:
        """The tenant that owns `store_id` (None: no such store), for tenant checks in other packages."""
        return await self.checkout.store_tenant(conn, store_id)

    async def resolve_cart(
        self, conn: asyncpg.Connection, store_id: str, lines: Sequence[CartLineInput], at: datetime | None = None
    ) -> list[ResolvedLine]:
        """Check cart lines against the store's current menu as it reads at `at` (default: now) and price them."""
        return await self.checkout.resolve_cart(conn, store_id, lines, at)

    async def reserve(self, conn: asyncpg.Connection, order_id: str, items: Sequence[tuple[str, int]]) -> None:
        """Take counted stock for an order, all or nothing, in the caller's transaction."""
        await self.checkout.reserve(conn, order_id, items)

    async def release(self, conn: asyncpg.Connection, order_id: str) -> bool:
        """Give an order's reserved stock back, exactly once. False when already released or none."""
        return await self.checkout.release(conn, order_id)
