"""The customer side: stores that deliver to a point, a store's menu as customers see it, search.

Discovery never scans and does no I/O per request: it answers from `catalog.index`, an in-memory
copy of every store's discovery data and of the H3 cells covering its zones (the same cells as
`catalog_zone_cells`). The point's cell and its parents select the candidates; each gets a cheap
ordering key (distance; ETA from distance and its hours, cached per minute) and the exact test
where needed; cards are built for the requested page only.

Freshness: the index is loaded on first use, then kept current by version: at most every
`poll_s` seconds (and before the next answer after a change made through this process) one query
lists the stores whose row changed since the last look (`updated_at`, with a margin for
transactions still open then), and only those whose `version` moved on are re-read. Every store
change bumps `version`, so another process's change shows up within `poll_s`; checkout re-checks
the store against the database anyway (`cart_quote`, one statement per quote).

`Customer` is a collaborator of the `CatalogService` facade (see `service`), built with the pool,
the clock, the parsed store rules (`RulesCache`, shared with checkout) and the travel-time model
and vehicle its ETAs use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from catalog import store as db
from catalog.errors import StoreNotFound
from catalog.index import DiscoveryIndex, Key, Listing, card, decode_cursor, encode_cursor, page, rank
from catalog.menu import menu_at
from catalog.messages import (
    CatalogMoney,
    CustomerCategory,
    CustomerGroup,
    CustomerItem,
    CustomerMenu,
    CustomerOption,
    DiscoveryQuery,
    ModifierGroupIn,
    SearchHit,
    SearchQuery,
    StoreCard,
    StoreCards,
)
from catalog.model import fee_for_distance
from catalog.published import read_menu
from catalog.rules import RulesCache, StoreRules, parse_special_days
from geo.distance import haversine_m
from geo.eta import HaversineTravelTime
from kernel.clock import Clock

POLL_S = 1.0  # how stale another process's store change may be in discovery
CHANGE_MARGIN = timedelta(seconds=60)  # longer than any catalog write transaction stays open


@dataclass(frozen=True, slots=True)
class _Ranked:
    key: Key
    card: StoreCard


class Customer:
    """The customer side of the catalog: discovery, a store's menu, search."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock, rules: RulesCache, *, travel: HaversineTravelTime,
                 vehicle: str, poll_s: float = POLL_S) -> None:
        self.pool = pool
        self.clock = clock
        self.rules = rules
        self.travel = travel
        self.vehicle = vehicle
        self.index = DiscoveryIndex()
        self.poll_s = poll_s
        self._lock = asyncio.Lock()
        self._since: datetime | None = None  # the database clock at the last look
        self._polled = 0.0  # monotonic time of the last look
        self._dirty = False  # a change was committed through this process since the last look

    def changed(self) -> None:
        """A store change was committed through this process: look before the next answer."""
        self._dirty = True

    async def discover(self, query: DiscoveryQuery, at: datetime, *, scan_all: bool = False) -> StoreCards:
        """Stores delivering to (lat, lng), open now or later today, sorted and paginated.
        `scan_all` reads every store from the database and tests every zone with shapely: the exact,
        unindexed path, kept as the benchmark's baseline and as the reference the index must match."""
        if query.cursor:
            decode_cursor(query.cursor)  # a bad cursor is a 400 before any work
        if scan_all:
            return await self._scan(query, at)
        await self.refresh()
        return page(rank(self.index, query, at, self.travel, self.vehicle), query)

    async def refresh(self) -> None:
        """Bring the index up to date (all stores on first use, then only those whose version moved)."""
        must = self._since is None or self._dirty
        if not must and self.clock.monotonic() - self._polled < self.poll_s:
            return
        if not must and self._lock.locked():
            return  # another request is looking; answer from the index as it is
        async with self._lock:
            must = self._since is None or self._dirty
            if not must and self.clock.monotonic() - self._polled < self.poll_s:
                return
            self._dirty = False  # before the read: a change committed meanwhile marks it again
            async with self.pool.acquire() as conn:
                if self._since is None:
                    now = await db.database_now(conn)
                    await self._load(conn, now, None)
                else:
                    now, seen = await db.changed_stores(conn, self._since - CHANGE_MARGIN)
                    stale = [store_id for store_id, version in seen if self.index.version(store_id) != version]
                    if stale:
                        await self._load(conn, now, stale)
            self._since = now
            self._polled = self.clock.monotonic()

    async def _load(self, conn: asyncpg.Connection, now: datetime, store_ids: list[str] | None) -> None:
        """(Re)load stores into the index: rows and cells from one snapshot, so they agree."""
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await db.listing_rows(conn, (now - timedelta(days=2)).date(), store_ids)
            cells = await db.zone_cells_of(conn, store_ids)
        by_store: dict[str, list[tuple[int, bool]]] = {}
        for c in cells:
            by_store.setdefault(c["store_id"], []).append((c["cell"], c["interior"]))
        loaded = set()
        for row in rows:
            if row["zone_version"] == 0:
                continue
            loaded.add(row["id"])
            self.index.put(Listing(
                id=row["id"], version=row["version"], name=row["name"], lat=row["lat"], lng=row["lng"],
                currency=row["currency"], status=row["status"], paused_until=row["paused_until"],
                prep_time_default_s=row["prep_time_default_s"], rules=self.rules.get(row),
                special=parse_special_days(row["specials"]),
            ), by_store.get(row["id"], ()))
        for store_id in store_ids or ():
            if store_id not in loaded:
                self.index.drop(store_id)

    async def _scan(self, query: DiscoveryQuery, at: datetime) -> StoreCards:
        after = decode_cursor(query.cursor) if query.cursor else None
        first, last = at.date() - timedelta(days=2), at.date() + timedelta(days=2)
        async with self.pool.acquire() as conn:
            rows = await db.all_open_stores(conn, first, last)
            rules = await self.rules_of(conn, rows)
        ranked = self.rank(rows, rules, query, at)
        if after is not None:
            ranked = [r for r in ranked if r.key > after]
        chosen = ranked[: query.limit]
        more = len(ranked) > query.limit
        return StoreCards(items=[r.card for r in chosen],
                          next_cursor=encode_cursor(chosen[-1].key) if more else None)

    async def rules_of(self, conn: asyncpg.Connection, rows: Sequence[Any]) -> dict[str, StoreRules]:
        """Parsed rules of each candidate: from the cache, else parsed once from a second query."""
        out: dict[str, StoreRules] = {}
        missing = []
        for row in rows:
            found = self.rules.cached(row["id"], row["version"])
            if found is None:
                missing.append(row["id"])
            else:
                out[row["id"]] = found
        if missing:
            for full in await db.rules_rows(conn, missing):
                out[full["id"]] = self.rules.get(full)
        return out

    def rank(self, rows: Sequence[Any], all_rules: dict[str, StoreRules], query: DiscoveryQuery,
             at: datetime) -> list[_Ranked]:
        out = []
        point = (query.lat, query.lng)
        for row in rows:
            rules = all_rules.get(row["id"])
            if rules is None:  # deleted between the two queries
                continue
            distance = haversine_m((row["lat"], row["lng"]), point)
            if distance > rules.max_delivery_m:
                continue
            if not row["interior"] and not rules.delivers_to(query.lat, query.lng):
                continue
            special = parse_special_days(row["specials"])
            open_now = rules.open_at(row["status"], row["paused_until"], special, at)
            opens_at = None if open_now else rules.opens_later_today(row["status"], row["paused_until"], special, at)
            if not open_now and opens_at is None:
                continue
            wait = 0.0 if opens_at is None else (opens_at - at).total_seconds()
            travel = self.travel.seconds((row["lat"], row["lng"]), point, self.vehicle)
            eta = round(wait + row["prep_time_default_s"] + travel)
            fee = fee_for_distance(rules.fee_bands, distance, row["currency"])
            card = StoreCard(
                id=row["id"], name=row["name"], lat=row["lat"], lng=row["lng"], currency=row["currency"],
                open_now=open_now, opens_at=opens_at.astimezone(UTC) if opens_at else None,
                distance_m=round(distance), eta_s=eta,
                delivery_fee=CatalogMoney(fee.amount, fee.currency),
            )
            key = (float(eta if query.sort == "eta" else round(distance)), row["id"])
            out.append(_Ranked(key, card))
        out.sort(key=lambda r: r.key)
        return out

    async def menu(self, store_id: str) -> CustomerMenu:
        """The published menu without hidden items; sold-out items (flag or no stock) are flagged.
        A sold-out whose `sold_out_until` has come reads as in stock (decided now, at every read)."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            row = await db.get_store(conn, store_id)
            if row is None or row["status"] == "closed":
                raise StoreNotFound("no such store")
            menu = await read_menu(conn, row)
            ids = [i.id for c in menu.categories for i in c.items if i.id]
            stock = await db.stock_counts(conn, ids)
        categories = []
        for cat in menu_at(menu, now).categories:
            items = [
                CustomerItem(
                    id=i.id or "", name=i.name, description=i.description, price=i.price,
                    sold_out=i.availability == "sold_out" or stock.get(i.id or "", 1) <= 0,
                    dietary_tags=i.dietary_tags, image_url=i.image_url, modifier_groups=_groups(i.modifier_groups),
                )
                for i in cat.items if i.availability != "hidden"
            ]
            if items:
                categories.append(CustomerCategory(id=cat.id or "", name=cat.name, items=items))
        return CustomerMenu(store_id=row["id"], store_name=row["name"], currency=row["currency"],
                            version=row["menu_version"], categories=categories)

    async def search(self, query: SearchQuery, at: datetime) -> list[SearchHit]:
        """Dishes and stores that deliver to the point, ranked by full-text rank + trigram similarity."""
        await self.refresh()
        where = DiscoveryQuery(lat=query.lat, lng=query.lng, sort="distance", limit=100)
        cards = {h[1].id: card(h) for h in rank(self.index, where, at, self.travel, self.vehicle)}
        if not cards:
            return []
        async with self.pool.acquire() as conn:
            hits = await db.search(conn, query.q, list(cards), query.limit)
        return [_hit(h, cards[h["store_id"]]) for h in hits]


def _hit(h: asyncpg.Record, card: StoreCard) -> SearchHit:
    return SearchHit(
        kind=h["kind"], store_id=h["store_id"], store_name=card.name, item_id=h["item_id"], name=h["name"],
        price=CatalogMoney(h["price"], card.currency) if h["price"] is not None else None,
        score=round(float(h["score"]), 4), distance_m=card.distance_m,
    )


def _groups(groups: Sequence[ModifierGroupIn]) -> list[CustomerGroup]:
    convert: Callable[[Sequence[ModifierGroupIn]], list[CustomerGroup]] = _groups
    return [
        CustomerGroup(id=g.id or "", name=g.name, min=g.min, max=g.max, options=[
            CustomerOption(id=o.id or "", name=o.name, price=o.price, max_quantity=o.max_quantity,
                           available=o.available, modifier_groups=convert(o.modifier_groups))
            for o in g.options
        ])
        for g in groups
    ]
