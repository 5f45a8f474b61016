"""Discovery's in-memory index: every store as discovery sees it, and the H3 cells covering its zones.

Discovery is the hottest read, and ~100 stores deliver to a typical city point, so the per-result
work decides its speed, not the candidate scan. This index keeps, per store, what ranking needs
already parsed (hours, prepared zone, fee bands, special days) and a cell -> stores map of the zone
covers, so a request does no I/O: it looks up the point's cells, computes a cheap ordering key for
every candidate (distance, or ETA from distance and the cached open state), sorts, and builds cards
only for the requested page.

Exactness: every candidate goes through the same predicates as the scan (`covers` for candidates
whose cover cell is not wholly inside the zone, the max distance, the same hours rules), so the
answers are identical to the exact path; only *when* the work is done changes:
- hours are evaluated once per store per UTC minute (`Listing.hours_at`): the rules compare whole
  local minutes, so the answer cannot change inside a minute of a whole-minute UTC offset;
- pause and status are still checked per request (a timed pause ends at any instant).

The index is replaced store by store when a store's `version` moves on (see `Customer.refresh`).
Pure: no I/O, no asyncio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import shapely

from catalog.messages import CatalogMoney, DiscoveryQuery, StoreCard, StoreCards
from catalog.model import SpecialDay, effective_status, fee_for_distance, is_open, next_opening_today
from catalog.rules import StoreRules
from geo.distance import EARTH_RADIUS_M
from geo.eta import HaversineTravelTime
from geo.zones import lookup_cells
from kernel.pagination import CursorInvalid, decode_opaque, encode_opaque

Key = tuple[float, str]


def encode_cursor(key: Key) -> str:
    return encode_opaque(list(key))


def decode_cursor(text: str) -> Key:
    """The sort key a discovery cursor carries; 400 `cursor_invalid` for anything else."""
    value = decode_opaque(text)
    try:
        return float(value[0]), str(value[1])
    except (ValueError, TypeError, IndexError, KeyError):
        raise CursorInvalid("cursor is not a cursor this list handed out", param="cursor") from None


@dataclass(slots=True)
class Listing:
    """One store as discovery sees it, at one `version` of its row."""

    id: str
    version: int
    name: str
    lat: float
    lng: float
    currency: str
    status: str
    paused_until: datetime | None
    prep_time_default_s: int
    rules: StoreRules
    special: Mapping[date, SpecialDay]
    # hours evaluated at one UTC minute: (minute, open by the hours, next opening later today)
    _hours: tuple[int, bool, datetime | None] = field(default=(-1, False, None), repr=False)
    # the location in radians and its cosine, as `geo.distance.haversine_m` computes them
    rlat: float = field(init=False, repr=False)
    rlng: float = field(init=False, repr=False)
    cos_rlat: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rlat, self.rlng = math.radians(self.lat), math.radians(self.lng)
        self.cos_rlat = math.cos(self.rlat)

    def hours_at(self, at: datetime, minute: int) -> tuple[bool, datetime | None]:
        """(open by the hours, next opening later today) at `at`, evaluated once per UTC minute
        (`minute` = whole minutes since the epoch of `at`)."""
        cached = self._hours
        if cached[0] == minute:
            return cached[1], cached[2]
        open_now = is_open(self.rules.weekly, self.special, self.rules.tz, at)
        # Needed even when the hours say open: a paused store may reopen for a later period.
        opening = next_opening_today(self.rules.weekly, self.special, self.rules.tz, at)
        offset = at.astimezone(self.rules.tz).utcoffset()
        if offset is not None and offset.total_seconds() % 60 == 0:  # local minutes = UTC minutes
            self._hours = (minute, open_now, opening)
        return open_now, opening

    def state_at(self, at: datetime, minute: int) -> tuple[bool, datetime | None] | None:
        """(open now, opens at later today), or None when it takes no orders today: the same rule
        as `StoreRules.open_at` / `opens_later_today`, with the hours part cached per minute."""
        if self.status == "closed":
            return None
        hours_open, opening = self.hours_at(at, minute)
        if self.status == "online":  # the common case: no pause to weigh
            if hours_open:
                return True, None
            return None if opening is None else (False, opening)
        online_now = effective_status(self.status, self.paused_until, at) == "online"
        if online_now and hours_open:
            return True, None
        if opening is None or effective_status(self.status, self.paused_until, opening) != "online":
            return None
        return False, opening


class DiscoveryIndex:
    """Listings by store id and the cover cells (H3, compacted, as ints) -> {store id: interior}."""

    def __init__(self) -> None:
        self.listings: dict[str, Listing] = {}
        self._cells: dict[int, dict[str, bool]] = {}
        self._cells_of: dict[str, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.listings)

    def version(self, store_id: str) -> int | None:
        found = self.listings.get(store_id)
        return None if found is None else found.version

    def put(self, listing: Listing, cells: Iterable[tuple[int, bool]]) -> None:
        """Add or replace a store with its cover cells."""
        self.drop(listing.id)
        self.listings[listing.id] = listing
        own = []
        for cell, interior in cells:
            self._cells.setdefault(cell, {})[listing.id] = interior
            own.append(cell)
        self._cells_of[listing.id] = tuple(own)

    def drop(self, store_id: str) -> None:
        self.listings.pop(store_id, None)
        for cell in self._cells_of.pop(store_id, ()):
            holders = self._cells.get(cell)
            if holders is not None:
                holders.pop(store_id, None)
                if not holders:
                    del self._cells[cell]

    def candidates(self, lat: float, lng: float) -> dict[str, bool]:
        """Stores whose cover holds the point's cell or a parent: store id -> a cell is wholly inside."""
        out: dict[str, bool] = {}
        for cell in lookup_cells(lat, lng):
            holders = self._cells.get(cell)
            if holders:
                for store_id, interior in holders.items():
                    out[store_id] = out.get(store_id, False) or interior
        return out


_Hit = tuple[Key, Listing, float, bool, "datetime | None", int]  # key, store, distance, open, opens_at, eta


def rank(index: DiscoveryIndex, query: DiscoveryQuery, at: datetime, travel: HaversineTravelTime,
         vehicle: str) -> list[_Hit]:
    """Every store delivering to the point and open now or later today, with its ordering key,
    sorted. Per candidate: one distance, the max-distance test, a cached hours lookup, and for
    candidates off interior cells one `covers`, all of those in a single vectorised shapely call."""
    lat, lng = query.lat, query.lng
    # geo.distance.haversine_m inlined with each store's radians precomputed: the same operations
    # in the same order, so the same floats as the exact path.
    rlat2, rlng2 = math.radians(lat), math.radians(lng)
    cos2 = math.cos(rlat2)
    sin, sqrt, asin = math.sin, math.sqrt, math.asin
    # Same arithmetic as HaversineTravelTime.seconds (distance x detour / speed), so ETAs are identical.
    speed = travel.speed_mps.get(vehicle, travel.speed_mps[travel.default_vehicle])
    detour = travel.detour_factor
    by_eta = query.sort == "eta"
    listings = index.listings
    near: list[tuple[Listing, float]] = []
    edge: list[tuple[Listing, float]] = []
    for store_id, interior in index.candidates(lat, lng).items():
        listing = listings[store_id]
        h = sin((rlat2 - listing.rlat) / 2) ** 2 + listing.cos_rlat * cos2 * sin((rlng2 - listing.rlng) / 2) ** 2
        distance = 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))
        if distance > listing.rules.max_delivery_m:
            continue
        if interior:
            near.append((listing, distance))
        elif listing.rules.zone is not None:
            edge.append((listing, distance))
    if edge:
        inside = shapely.covers([listing.rules.zone.context for listing, _ in edge],  # type: ignore[union-attr]
                                shapely.Point(lng, lat))
        near += [e for e, ok in zip(edge, inside, strict=True) if ok]
    out: list[_Hit] = []
    minute = int(at.timestamp() // 60)
    for listing, distance in near:
        state = listing.state_at(at, minute)
        if state is None:
            continue
        open_now, opens_at = state
        wait = 0.0 if opens_at is None else (opens_at - at).total_seconds()
        eta = round(wait + listing.prep_time_default_s + distance * detour / speed)
        key = (float(eta if by_eta else round(distance)), listing.id)
        out.append((key, listing, distance, open_now, opens_at, eta))
    out.sort(key=_key)
    return out


def _key(hit: _Hit) -> Key:
    return hit[0]


def card(hit: _Hit) -> StoreCard:
    _, listing, distance, open_now, opens_at, eta = hit
    fee = fee_for_distance(listing.rules.fee_bands, distance, listing.currency)
    return StoreCard(
        id=listing.id, name=listing.name, lat=listing.lat, lng=listing.lng, currency=listing.currency,
        open_now=open_now, opens_at=opens_at.astimezone(UTC) if opens_at else None,
        distance_m=round(distance), eta_s=eta, delivery_fee=CatalogMoney(fee.amount, fee.currency),
    )


def page(hits: Sequence[_Hit], query: DiscoveryQuery) -> StoreCards:
    """The requested page after the cursor: cards are built for these stores only."""
    start = 0
    if query.cursor:
        after = decode_cursor(query.cursor)
        start = next((i for i, h in enumerate(hits) if h[0] > after), len(hits))
    chosen = hits[start:start + query.limit]
    more = len(hits) > start + query.limit
    return StoreCards(items=[card(h) for h in chosen],
                      next_cursor=encode_cursor(chosen[-1][0]) if more else None)
