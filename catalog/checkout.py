"""The catalog's part in a checkout: the calls `orders/` makes, each on the caller's connection so
it runs inside the orders transaction. A quote reads the store, its rules, menu and stock in one
statement (`cart_quote`); the cart is checked and priced against that same read; counted stock is
reserved for the order and given back when it ends.

`Checkout` is a collaborator of the `CatalogService` facade (see `service`), built with the clock,
the parsed store rules (`RulesCache`, shared with discovery) and the cache of published menus.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from catalog import store as db
from catalog.errors import OutOfStock, StoreNotFound
from catalog.menu import CartQuote, resolve_lines
from catalog.messages import CartLineInput
from catalog.model import QuoteContext, ResolvedLine, effective_status, fee_for_distance
from catalog.published import PublishedMenus
from catalog.rules import RulesCache, parse_special_days
from geo.distance import haversine_m
from kernel.clock import Clock
from kernel.ids import new_id


class Checkout:
    def __init__(self, clock: Clock, rules: RulesCache, menus: PublishedMenus) -> None:
        self.clock = clock
        self.rules = rules
        self.menus = menus

    async def quote_context(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime
    ) -> QuoteContext:
        """Everything a quote needs about the store for a drop-off point at time `at`."""
        return (await self.cart_quote(conn, store_id, lat, lng, at, ())).context

    async def cart_quote(
        self, conn: asyncpg.Connection, store_id: str, lat: float, lng: float, at: datetime,
        lines: Sequence[CartLineInput],
    ) -> CartQuote:
        """`quote_context` and the cart's menu and stock, from one statement: the store row (its
        status, pause, hours, zones and bands re-read at every call, so a change is never missed;
        the JSON of hours, zones and bands only when the row's version moved on), its special days
        around `at`, its menu version and the stock counts of the cart's items. The menu document
        is read only when that version is not cached yet."""
        day = at.date()
        row = await db.cart_quote_row(conn, store_id, self.rules.version_of(store_id), day - timedelta(days=2),
                                      day + timedelta(days=2), sorted({line.item_id for line in lines}))
        if row is None:
            raise StoreNotFound("no such store")
        rules = self.rules.cached(store_id, row["version"])
        if rules is None:
            if row["hours"] is None:  # the cache moved on while the row was read: read the rules again
                found = await db.rules_rows(conn, [store_id])
                if not found:
                    raise StoreNotFound("no such store")
                rules = self.rules.get(found[0])
            else:
                rules = self.rules.get(row)
        special = parse_special_days(row["specials"])
        distance = haversine_m((row["lat"], row["lng"]), (lat, lng))
        context = QuoteContext(
            store_id=row["id"], tenant_id=row["tenant_id"], name=row["name"], currency=row["currency"],
            timezone=row["timezone"], tax_rate_bps=row["tax_rate_bps"], tax_inclusive=row["tax_inclusive"],
            prep_time_default_s=row["prep_time_default_s"], accept_window_s=row["accept_window_s"],
            lat=row["lat"], lng=row["lng"],
            status=effective_status(row["status"], row["paused_until"], at),
            open_at_time=rules.open_at(row["status"], row["paused_until"], special, at),
            deliverable=rules.delivers_to(lat, lng) and distance <= rules.max_delivery_m,
            distance_m=round(distance),
            delivery_fee=fee_for_distance(rules.fee_bands, distance, row["currency"]),
            region=row["region"],
        )
        menu = await self.menus.at_version(conn, store_id, row["menu_version"], row["currency"])
        stock = dict(zip(row["stock_items"], row["stock_counts"], strict=True))
        return CartQuote(context, menu, stock, lines, at)

    async def store_tenant(self, conn: asyncpg.Connection, store_id: str) -> str | None:
        """The tenant that owns `store_id` (None: no such store), for tenant checks in other packages."""
        row = await db.get_store(conn, store_id)
        return None if row is None else str(row["tenant_id"])

    async def resolve_cart(
        self, conn: asyncpg.Connection, store_id: str, lines: Sequence[CartLineInput], at: datetime | None = None
    ) -> list[ResolvedLine]:
        """Check cart lines against the store's current menu as it reads at `at` (default: now) and
        price them (ValidationFailed with the path, e.g. `lines[0].options[1].option_id`)."""
        menu = await self.menus.current(conn, store_id)
        stock = await db.stock_counts(conn, sorted({line.item_id for line in lines}))
        return resolve_lines(menu, lines, stock, at=self.clock.now() if at is None else at)

    async def reserve(self, conn: asyncpg.Connection, order_id: str, items: Sequence[tuple[str, int]]) -> None:
        """Take counted stock for an order, in the caller's transaction, in one statement. All or
        nothing: on OutOfStock nothing was taken (and the caller's transaction is still usable).
        Calling it again for the same order does nothing. Items without a stock count are not limited."""
        wanted: dict[str, int] = {}
        for item_id, quantity in items:
            if quantity <= 0:
                raise ValueError("reserve quantities must be positive")
            wanted[item_id] = wanted.get(item_id, 0) + quantity
        ordered = sorted(wanted.items())
        at = datetime.now(UTC)
        already, counted = await db.reserve_stock(
            conn, order_id, ordered, [new_id("evt") for _ in ordered], at, _iso(at))
        if already:
            return
        for item_id, count, quantity in counted:  # in item order: the first short one is reported
            if count < quantity:
                raise OutOfStock(f"not enough stock left for item {item_id}", param=item_id)

    async def release(self, conn: asyncpg.Connection, order_id: str) -> bool:
        """Give an order's reserved stock back, exactly once. False when already released or none."""
        return bool(await db.release_reservation(conn, order_id))


def _iso(at: datetime) -> str:
    """An instant as the outbox envelope writes it (msgspec's RFC 3339, UTC with a Z)."""
    return msgspec.json.encode(at).decode().strip('"')
