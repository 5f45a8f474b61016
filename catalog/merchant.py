"""Merchant commands: tenants, stores, hours, special days, zones, menus, availability, stock,
pause and resume. Each is one transaction that also writes its audit row and its event.

Another tenant's store is reported as not found, never as forbidden, so its existence stays hidden.

`Merchant` is a collaborator of the `CatalogService` facade (see `service`), built with the pool, the
clock, the region of a store created without one, and `on_change`, called after every committed
change (discovery's `changed`, so this process's next discovery answer looks for it first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from catalog import store as db
from catalog.errors import CurrencyFixed, ItemNotFound, StoreNotFound, TenantNotFound
from catalog.event_types import ItemSoldOut, MenuPublished, StoreOpened, StorePaused
from catalog.menu import apply_item_patch, items_by_id, menu_at, prepare_menu, settle_sold_out
from catalog.messages import (
    HoursIn,
    ItemPatch,
    MenuIn,
    PauseIn,
    SpecialDayIn,
    StoreCreate,
    StorePatch,
    ZonesIn,
)
from catalog.model import (
    FeeBandRule,
    WeeklyHours,
    check_currency,
    check_fee_bands,
    day_periods,
    zone_info,
)
from catalog.published import read_menu
from geo.zones import cover_zone, parse_zone, union_zones
from kernel.clock import Clock
from kernel.errors import ValidationFailed
from kernel.http import Principal, refuse_store_scoped
from kernel.ids import new_id
from kernel.outbox import announce


def tenant_scope(who: Principal) -> str | None:
    """The tenant a principal is limited to (None: operators see every tenant)."""
    if who.is_operator():
        return None
    if not who.tenant_id:
        return "\x00no-tenant"  # matches nothing
    return who.tenant_id


class Merchant:
    """The merchant side of the catalog: tenants and their stores, for staff, API keys and operators."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, *, default_region: str,
                 on_change: Callable[[], None]) -> None:
        self.pool = pool
        self.clock = clock
        self.default_region = default_region
        self.on_change = on_change

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        """One command's transaction; once it has committed, this process's discovery looks for the
        change before its next answer (other processes see it within their poll interval)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn
        self.on_change()

    # ---- tenants ----------------------------------------------------------------------------

    async def create_tenant(self, who: Principal, name: str) -> asyncpg.Record:
        async with self._tx() as conn:
            row = await db.insert_tenant(conn, new_id("ten"), name, who.account_id)
            await db.audit(conn, row["id"], None, who.account_id, "tenant.created", {"name": name})
        return row

    async def get_tenant(self, who: Principal, tenant_id: str) -> asyncpg.Record:
        scope = tenant_scope(who)
        async with self.pool.acquire() as conn:
            row = await db.get_tenant(conn, tenant_id)
        if row is None or (scope is not None and scope != tenant_id):
            raise TenantNotFound("no such tenant")
        return row

    # ---- stores -----------------------------------------------------------------------------

    async def _owned(self, conn: asyncpg.Connection, who: Principal, store_id: str,
                     for_update: bool = False) -> dict[str, Any]:
        row = await db.get_store(conn, store_id, tenant_id=tenant_scope(who), for_update=for_update)
        if row is None or not who.may_act_for_store(store_id):  # a store's key and another store: no store
            raise StoreNotFound("no such store")
        return row

    async def create_store(self, who: Principal, tenant_id: str, body: StoreCreate) -> dict[str, Any]:
        refuse_store_scoped(who, "stores")
        zone_info(body.timezone)
        check_currency(body.currency)
        async with self._tx() as conn:
            await self.get_tenant(who, tenant_id)
            row = await db.insert_store(conn, {
                **msgspec.structs.asdict(body), "id": new_id("sto"), "tenant_id": tenant_id,
                "region": body.region or self.default_region,
            })
            await db.audit(conn, tenant_id, row["id"], who.account_id, "store.created", msgspec.to_builtins(body))
        return row

    async def list_stores(self, who: Principal, tenant_id: str, after: str | None, limit: int) -> list[dict]:
        await self.get_tenant(who, tenant_id)
        async with self.pool.acquire() as conn:
            return await db.list_stores(conn, tenant_id, after, limit, who.store_ids)

    async def get_store(self, who: Principal, store_id: str) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            return await self._owned(conn, who, store_id)

    async def _change(self, who: Principal, store_id: str, action: str, changes: dict[str, Any],
                      detail: Any = None) -> dict[str, Any]:
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            if changes.get("currency", row["currency"]) != row["currency"] and (
                    row["menu_version"] > 0 or row["fee_bands"] not in ([], "[]", None)):
                raise CurrencyFixed(
                    f"this store's menu and delivery fees are priced in {row['currency']}; a store in another "
                    "currency is a new store", param="currency")
            updated = await db.update_store(conn, store_id, changes) if changes else row
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, action,
                           msgspec.to_builtins(detail if detail is not None else changes))
        return updated

    async def patch_store(self, who: Principal, store_id: str, body: StorePatch) -> dict[str, Any]:
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
        if "timezone" in changes:
            zone_info(changes["timezone"])
        if "currency" in changes:
            check_currency(changes["currency"])
        return await self._change(who, store_id, "store.updated", changes)

    async def set_hours(self, who: Principal, store_id: str, body: HoursIn) -> dict[str, Any]:
        WeeklyHours.from_periods((p.weekday, p.opens, p.closes) for p in body.periods)
        return await self._change(who, store_id, "hours.set", {"hours": msgspec.to_builtins(body.periods)})

    async def set_zones(self, who: Principal, store_id: str, body: ZonesIn) -> dict[str, Any]:
        geoms = [parse_zone(z, f"zones[{i}]") for i, z in enumerate(body.zones)]
        bands = [FeeBandRule(b.up_to_m, b.fee) for b in body.fee_bands]
        check_fee_bands(bands, body.max_delivery_m)
        cells = cover_zone(union_zones(geoms))
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            updated = await db.update_store(conn, store_id, {
                "zones": body.zones, "max_delivery_m": body.max_delivery_m,
                "fee_bands": msgspec.to_builtins(body.fee_bands), "zone_version": row["zone_version"] + 1,
            })
            await db.replace_zone_cells(conn, store_id, [(c.cell, c.interior) for c in cells])
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "zones.set",
                           {"zones": len(body.zones), "cells": len(cells), "max_delivery_m": body.max_delivery_m})
        return updated

    # ---- status -----------------------------------------------------------------------------

    async def pause(self, who: Principal, store_id: str, body: PauseIn) -> dict[str, Any]:
        if body.until is not None and (body.until.tzinfo is None or body.until <= self.clock.now()):
            raise ValidationFailed("until must be a future time with a UTC offset", param="until")
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            if row["status"] == "closed":
                raise ValidationFailed("a closed store cannot be paused; open it first", param="status")
            updated = await db.update_store(conn, store_id, {"status": "paused", "paused_until": body.until})
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "store.paused",
                           msgspec.to_builtins(body))
            await announce(conn, StorePaused(store_id=store_id, tenant_id=row["tenant_id"], until=body.until,
                                             reason=body.reason), store_id)
        return updated

    async def set_status(self, who: Principal, store_id: str, status: str) -> dict[str, Any]:
        """Open (from paused or closed) or close the store."""
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            updated = await db.update_store(conn, store_id, {"status": status, "paused_until": None})
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, f"store.{status}", {})
            if status == "online" and row["status"] != "online":
                await announce(conn, StoreOpened(store_id=store_id, tenant_id=row["tenant_id"]), store_id)
        return updated

    async def reopen_expired_pauses(self) -> int:
        """Pauses whose end has passed become online (with their `store.opened` events)."""
        async with self._tx() as conn:
            rows = await db.reopen_expired_pauses(conn, self.clock.now())
            for r in rows:
                await db.audit(conn, r["tenant_id"], r["id"], "system", "store.online", {"reason": "pause ended"})
                await announce(conn, StoreOpened(store_id=r["id"], tenant_id=r["tenant_id"]), r["id"])
        return len(rows)

    # ---- special days -----------------------------------------------------------------------

    async def special_days(self, who: Principal, store_id: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            await self._owned(conn, who, store_id)
            return await db.special_days(conn, [store_id])

    async def put_special_day(self, who: Principal, store_id: str, day: date, body: SpecialDayIn) -> None:
        if body.closed and body.periods:
            raise ValidationFailed("a closed day has no periods", param="periods")
        if not body.closed and not body.periods:
            raise ValidationFailed("give periods, or closed: true", param="periods")
        day_periods((p.opens, p.closes) for p in body.periods)
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            await db.upsert_special_day(conn, store_id, day, body.closed, msgspec.to_builtins(body.periods),
                                        body.note)
            await db.update_store(conn, store_id, {})
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "special_day.set",
                           {"day": day.isoformat(), **msgspec.to_builtins(body)})

    async def delete_special_day(self, who: Principal, store_id: str, day: date) -> None:
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            if not await db.delete_special_day(conn, store_id, day):
                raise StoreNotFound("no special day on that date", param="day")
            await db.update_store(conn, store_id, {})  # every change bumps the version
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "special_day.deleted",
                           {"day": day.isoformat()})

    # ---- menus ------------------------------------------------------------------------------

    async def publish_menu(self, who: Principal, store_id: str, body: MenuIn) -> tuple[int, MenuIn, datetime]:
        """Validate the whole menu, then store it as the next version. Nothing changes on failure.
        Sold-out items get their end (`settle_sold_out`); newly sold-out ones emit `item.sold_out`."""
        menu = prepare_menu(body, new_id)
        now = self.clock.now()
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            before = menu_at(await read_menu(conn, row), now)
            menu = settle_sold_out(menu, items_by_id(before), ZoneInfo(row["timezone"]), now)
            version = await self._store_menu(conn, who, row, menu)
            await self._sold_out_events(conn, row, before, menu)
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "menu.published",
                           {"version": version, "items": sum(len(c.items) for c in menu.categories)})
            at = await db.menu_published_at(conn, store_id, version)
        return version, menu, at  # type: ignore[return-value]

    async def _store_menu(self, conn: asyncpg.Connection, who: Principal, row: dict, menu: MenuIn) -> int:
        items = [(item_id, i.name, i.description, i.price, i.availability, i.sold_out_until)
                 for item_id, i in items_by_id(menu).items()]
        taken = set(await db.items_owned_elsewhere(conn, row["id"], [i[0] for i in items]))
        if taken:
            for ci, cat in enumerate(menu.categories):
                for ii, item in enumerate(cat.items):
                    if item.id in taken:
                        raise ValidationFailed(f"item id {item.id!r} belongs to another store",
                                               param=f"categories[{ci}].items[{ii}].id")
        version = row["menu_version"] + 1
        await db.insert_menu(conn, row["id"], version, msgspec.json.encode(menu), who.account_id, items)
        await announce(conn, MenuPublished(store_id=row["id"], tenant_id=row["tenant_id"], version=version), row["id"])
        return version

    async def current_menu(self, who: Principal, store_id: str) -> tuple[dict, MenuIn, datetime | None]:
        """The current menu as it reads now: a sold-out item whose end has come shows as in stock."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            row = await self._owned(conn, who, store_id)
            menu = await read_menu(conn, row)
            at = await db.menu_published_at(conn, store_id, row["menu_version"])
        return row, menu_at(menu, now), at

    async def patch_item(self, who: Principal, store_id: str, item_id: str, body: ItemPatch) -> tuple[int, Any]:
        """Change one item (name, price, availability...) as a new menu version, applied to the menu
        as it reads now. A new availability drops the old `sold_out_until`; `sold_out` without one
        is sold out today (see `settle_sold_out`)."""
        changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
        if "availability" in changes:
            changes.setdefault("sold_out_until", None)
        now = self.clock.now()
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            before = menu_at(await read_menu(conn, row), now)
            try:
                patched, _ = apply_item_patch(before, item_id, changes)
            except KeyError:
                raise ItemNotFound("no such item on this store's menu") from None
            try:
                menu = settle_sold_out(prepare_menu(patched, new_id), items_by_id(before), ZoneInfo(row["timezone"]),
                                       now)
            except ValidationFailed as err:  # only the patched item can be wrong: name the body's field
                err.param = "sold_out_until"
                raise
            version = await self._store_menu(conn, who, row, menu)
            item = items_by_id(menu)[item_id]
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "item.updated",
                           {"item_id": item_id, "changes": changes, "version": version,
                            "sold_out_until": item.sold_out_until})
            await self._sold_out_events(conn, row, before, menu)
        return version, item

    async def _sold_out_events(self, conn: asyncpg.Connection, row: dict, before: MenuIn, after: MenuIn) -> None:
        """`item.sold_out` for each item the merchant sold out, or whose end moved, from `before`
        (as it read) to `after`. Nothing is emitted when a sold-out ends by itself: consumers that
        keep sold-out state drop it at `sold_out_until` (see docs/EVENTS.md)."""
        was = items_by_id(before)
        for item_id, item in items_by_id(after).items():
            if item.availability != "sold_out":
                continue
            old = was.get(item_id)
            if old is not None and old.availability == "sold_out" and old.sold_out_until == item.sold_out_until:
                continue
            until = item.sold_out_until
            await announce(conn, ItemSoldOut(
                store_id=row["id"], tenant_id=row["tenant_id"], item_id=item_id, reason="merchant",
                sold_out_until=until.astimezone(UTC) if until is not None else None,
            ), row["id"])

    # ---- stock ------------------------------------------------------------------------------

    async def stock(self, who: Principal, store_id: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            await self._owned(conn, who, store_id)
            return await db.store_stock(conn, store_id)

    async def set_stock(self, who: Principal, store_id: str, item_id: str, count: int | None) -> None:
        async with self._tx() as conn:
            row = await self._owned(conn, who, store_id, for_update=True)
            menu = await read_menu(conn, row)
            if not any(i.id == item_id for c in menu.categories for i in c.items):
                raise ItemNotFound("no such item on this store's menu")
            await db.set_stock(conn, store_id, item_id, count)
            await db.audit(conn, row["tenant_id"], store_id, who.account_id, "stock.set",
                           {"item_id": item_id, "count": count})
            if count == 0:
                await announce(conn, ItemSoldOut(store_id=store_id, tenant_id=row["tenant_id"], item_id=item_id,
                                                 reason="stock", sold_out_until=None), store_id)

    async def audit_log(self, who: Principal, store_id: str, before: int | None, limit: int) -> list:
        async with self.pool.acquire() as conn:
            await self._owned(conn, who, store_id)
            return await db.audit_entries(conn, store_id, before, limit)
