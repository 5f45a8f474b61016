"""Published menus as they are stored: the document of a store's menu version, decoded, and the
process's cache of menus indexed for checkout (`PublishedMenus`), by (store, version).

The cache holds menus raw on purpose: availability is decided per read at the read's instant
(`menu.availability_at`), so a cached "sold out" cannot outlive its `sold_out_until`. A version
is never rewritten once published, so an entry never goes stale; the cache is only bounded.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from catalog import store as db
from catalog.errors import StoreNotFound
from catalog.menu import IndexedMenu, index_menu
from catalog.messages import MenuIn, menu_decoder

MAX_CACHED_MENUS = 10_000  # (store, version) pairs; the cache starts over beyond it


async def read_menu(conn: asyncpg.Connection, row: dict[str, Any]) -> MenuIn:
    """The store's current menu (`row` is its store row), as published; empty before the first."""
    document = await db.menu_document(conn, row["id"], row["menu_version"]) if row["menu_version"] else None
    return menu_decoder.decode(document) if document else MenuIn(categories=[])


class PublishedMenus:
    """Indexed menus by (store, version), read from the database once per process."""

    def __init__(self, max_entries: int = MAX_CACHED_MENUS) -> None:
        self.max_entries = max_entries
        self._menus: dict[tuple[str, int], IndexedMenu] = {}

    async def current(self, conn: asyncpg.Connection, store_id: str) -> IndexedMenu:
        """The store's current menu version (one small read), indexed."""
        head = await db.menu_head(conn, store_id)
        if head is None:
            raise StoreNotFound("no such store")
        return await self.at_version(conn, store_id, head["menu_version"], head["currency"])

    async def at_version(self, conn: asyncpg.Connection, store_id: str, version: int, currency: str) -> IndexedMenu:
        """Version `version` of the store's menu, indexed; read only when not cached yet."""
        key = (store_id, version)
        cached = self._menus.get(key)
        if cached is not None:
            return cached
        document = await db.menu_document(conn, store_id, version) if version else None
        menu = menu_decoder.decode(document) if document else MenuIn(categories=[])
        indexed = index_menu(menu, version, currency)
        if len(self._menus) > self.max_entries:
            self._menus.clear()
        self._menus[key] = indexed
        return indexed
