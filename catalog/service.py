"""The catalog's use cases: one async method per command, one transaction each.

`CatalogService` is also the public interface `orders/` uses: `quote_context`, `store_tenant`, `is_open_at`,
`resolve_cart`, `reserve` and `release` take the caller's connection so they run inside the
orders transaction. Merchant commands take the calling principal: staff and API keys see only
their tenant's stores (another tenant's store is "not found", never "forbidden"); operators all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from catalog import store as db
from catalog.discovery import Customer
from catalog.errors import OutOfStock, StoreNotFound
from catalog.menu import CartQuote, IndexedMenu, index_menu, resolve_lines
from catalog.merchant import Merchant
from catalog.messages import CartLineInput, MenuIn, menu_decoder
from catalog.model import QuoteContext, ResolvedLine, effective_status, fee_for_distance
from catalog.rules import RulesCache, StoreRules, parse_special_days
from geo.distance import haversine_m
from geo.eta import HaversineTravelTime
from kernel.clock import Clock
from kernel.http import Principal
from kernel.ids import new_id


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
        self.default_region = default_region
        self.travel = travel or HaversineTravelTime()
        self.vehicle = vehicle
        self.rules = RulesCache()
        # Published menus as stored, by (store, version). Raw on purpose: availability is decided per
        # read at the read's instant (`menu.availability_at`), so a cached "sold out" cannot outlive
        # its `sold_out_until`.
        self._menus: dict[tuple[str, int], IndexedMenu] = {}
        self.merchant = Merchant(self)
        self.customer = Customer(self)

    # ---- the interface orders/ uses ----------------------------------------------------------

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
        menu = await self._menu_version(conn, store_id, row["menu_version"], row["currency"])
        stock = dict(zip(row["stock_items"], row["stock_counts"], strict=True))
        return CartQuote(context, menu, stock, lines, at)

    async def store_tenant(self, conn: asyncpg.Connection, store_id: str) -> str | None:
        """The tenant that owns `store_id` (None: no such store), for tenant checks in other packages."""
        row = await db.get_store(conn, store_id)
        return None if row is None else str(row["tenant_id"])

    async def is_open_at(self, conn: asyncpg.Connection, store_id: str, at: datetime) -> bool:
        """Whether the store takes orders at `at` (status, pause end, hours and special days)."""
        row = await db.get_store(conn, store_id)
        if row is None:
            raise StoreNotFound("no such store")
        special = await self._special(conn, store_id, at)
        return self.rules.get(row).open_at(row["status"], row["paused_until"], special, at)

    async def _special(self, conn: asyncpg.Connection, store_id: str, at: datetime) -> dict:
        day = at.date()
        rows = await db.special_days(conn, [store_id], day - timedelta(days=2), day + timedelta(days=2))
        return parse_special_days([dict(r) for r in rows])

    async def resolve_cart(
        self, conn: asyncpg.Connection, store_id: str, lines: Sequence[CartLineInput], at: datetime | None = None
    ) -> list[ResolvedLine]:
        """Check cart lines against the store's current menu as it reads at `at` (default: now) and
        price them (ValidationFailed with the path, e.g. `lines[0].options[1].option_id`)."""
        menu = await self._menu(conn, store_id)
        stock = await db.stock_counts(conn, sorted({line.item_id for line in lines}))
        return resolve_lines(menu, lines, stock, at=self.clock.now() if at is None else at)

    async def _menu(self, conn: asyncpg.Connection, store_id: str) -> IndexedMenu:
        head = await db.menu_head(conn, store_id)
        if head is None:
            raise StoreNotFound("no such store")
        return await self._menu_version(conn, store_id, head["menu_version"], head["currency"])

    async def _menu_version(self, conn: asyncpg.Connection, store_id: str, version: int, currency: str) -> IndexedMenu:
        key = (store_id, version)
        cached = self._menus.get(key)
        if cached is not None:
            return cached
        document = await db.menu_document(conn, store_id, version) if version else None
        menu = menu_decoder.decode(document) if document else MenuIn(categories=[])
        indexed = index_menu(menu, version, currency)
        if len(self._menus) > 10_000:
            self._menus.clear()
        self._menus[key] = indexed
        return indexed

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

    # ---- helpers shared by the merchant and customer sides -----------------------------------

    def rules_for(self, row: dict[str, Any]) -> StoreRules:
        return self.rules.get(row)

    @staticmethod
    def scope(who: Principal) -> str | None:
        """The tenant a principal is limited to (None: operators see every tenant)."""
        if who.is_operator():
            return None
        if not who.tenant_id:
            return "\x00no-tenant"  # matches nothing
        return who.tenant_id


def _iso(at: datetime) -> str:
    """An instant as the outbox envelope writes it (msgspec's RFC 3339, UTC with a Z)."""
    return msgspec.json.encode(at).decode().strip('"')


def encode_menu(menu: MenuIn) -> bytes:
    return msgspec.json.encode(menu)
