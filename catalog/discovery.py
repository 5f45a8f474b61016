"""The customer side: stores that deliver to a point, a store's menu as customers see it, search.

Discovery never scans: the point's H3 cell and its parents select the candidate stores whose zone
cover holds them (`catalog_zone_cells`, an index lookup), and only those candidates get the exact
point-in-polygon test, the distance limit and the hours check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from catalog import store as db
from catalog.errors import StoreNotFound
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
from catalog.rules import StoreRules, parse_special_days
from geo.distance import haversine_m
from geo.zones import lookup_cells
from kernel.errors import ValidationFailed

if TYPE_CHECKING:
    from catalog.service import CatalogService


@dataclass(frozen=True, slots=True)
class _Ranked:
    key: tuple[float, str]
    card: StoreCard


def _encode_cursor(key: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[float, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return float(value[0]), str(value[1])
    except (ValueError, TypeError, IndexError):
        raise ValidationFailed("cursor is not one this API returned", param="cursor") from None


class Customer:
    def __init__(self, service: CatalogService) -> None:
        self.s = service

    async def discover(self, query: DiscoveryQuery, at: datetime, *, scan_all: bool = False) -> StoreCards:
        """Stores delivering to (lat, lng), open now or later today, sorted and paginated.
        `scan_all` skips the cell prefilter: the baseline the benchmark compares against."""
        after = _decode_cursor(query.cursor) if query.cursor else None
        first, last = at.date() - timedelta(days=2), at.date() + timedelta(days=2)
        async with self.s.pool.acquire() as conn:
            if scan_all:
                rows = await db.all_open_stores(conn, first, last)
            else:
                rows = await db.candidate_stores(conn, lookup_cells(query.lat, query.lng), first, last)
            rules = await self.rules(conn, rows)
        ranked = self.rank(rows, rules, query, at)
        if after is not None:
            ranked = [r for r in ranked if r.key > after]
        page = ranked[: query.limit]
        more = len(ranked) > query.limit
        return StoreCards(items=[r.card for r in page], next_cursor=_encode_cursor(page[-1].key) if more else None)

    async def rules(self, conn: asyncpg.Connection, rows: Sequence[Any]) -> dict[str, StoreRules]:
        """Parsed rules of each candidate: from the cache, else parsed once from a second query."""
        out: dict[str, StoreRules] = {}
        missing = []
        for row in rows:
            found = self.s.rules.cached(row["id"], row["version"])
            if found is None:
                missing.append(row["id"])
            else:
                out[row["id"]] = found
        if missing:
            for full in await db.rules_rows(conn, missing):
                out[full["id"]] = self.s.rules.get(full)
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
            travel = self.s.travel.seconds((row["lat"], row["lng"]), point, self.s.vehicle)
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
        """The published menu without hidden items; sold-out items (flag or no stock) are flagged."""
        async with self.s.pool.acquire() as conn:
            row = await db.get_store(conn, store_id)
            if row is None or row["status"] == "closed":
                raise StoreNotFound("no such store")
            menu = await self.s.merchant._load_menu(conn, row)
            ids = [i.id for c in menu.categories for i in c.items if i.id]
            stock = await db.stock_counts(conn, ids)
        categories = []
        for cat in menu.categories:
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
        first, last = at.date() - timedelta(days=2), at.date() + timedelta(days=2)
        async with self.s.pool.acquire() as conn:
            rows = await db.candidate_stores(conn, lookup_cells(query.lat, query.lng), first, last)
            ranked = self.rank(rows, await self.rules(conn, rows), _as_discovery(query), at)
            cards = {r.card.id: r.card for r in ranked}
            if not cards:
                return []
            hits = await db.search(conn, query.q, list(cards), query.limit)
        return [_hit(h, cards[h["store_id"]]) for h in hits]


def _as_discovery(query: SearchQuery) -> DiscoveryQuery:
    return DiscoveryQuery(lat=query.lat, lng=query.lng, sort="distance", limit=100)


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
