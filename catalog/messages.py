"""Wire formats of the catalog (msgspec Structs): merchant requests, customer responses, and the
cart-line input that `orders/` reuses as its own wire format."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from kernel.pagination import OpaqueCursor, id_cursor

Price = Annotated[int, Meta(ge=0, le=100_000_000, description="integer minor units of the store's currency")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Hhmm = Annotated[str, Meta(pattern=r"^([01]\d|2[0-4]):[0-5]\d$", description="local wall-clock time HH:MM")]
Lat = Annotated[float, Meta(ge=-90, le=90)]
Lng = Annotated[float, Meta(ge=-180, le=180)]
Availability = Literal["in_stock", "sold_out", "hidden"]
SoldOutUntil = Annotated[datetime, Meta(
    tz=True,
    description="when a sold-out item is back in stock by itself (an instant with a UTC offset, in the future, "
                "at most 30 days ahead). Left out, `sold_out` means sold out today: until the next local "
                "midnight of the store's timezone (an item already sold out keeps its end). Only for `sold_out` "
                "items; once it has passed, the item reads as `in_stock`.")]
StoreStatus = Literal["online", "paused", "closed"]


# ---- cart lines (shared with orders) -------------------------------------------------------------

class SelectedOption(Struct, frozen=True, forbid_unknown_fields=True):
    option_id: str
    quantity: Annotated[int, Meta(ge=1, le=99)] = 1
    options: list[SelectedOption] = []


class CartLineInput(Struct, frozen=True, forbid_unknown_fields=True):
    item_id: str
    quantity: Annotated[int, Meta(ge=1, le=99)]
    options: list[SelectedOption] = []


# ---- tenants and stores --------------------------------------------------------------------------

class TenantCreate(Struct, forbid_unknown_fields=True):
    name: Name


class TenantOut(Struct):
    id: str
    name: str
    created_at: datetime


class FeeBand(Struct, frozen=True, forbid_unknown_fields=True):
    up_to_m: Annotated[int, Meta(ge=1, le=200_000)]
    fee: Price


class StoreCreate(Struct, forbid_unknown_fields=True):
    name: Name
    lat: Lat
    lng: Lng
    timezone: str
    currency: str
    tax_rate_bps: Annotated[int, Meta(ge=0, le=10_000)] = 0
    tax_inclusive: bool = False
    prep_time_default_s: Annotated[int, Meta(ge=0, le=4 * 3600)] = 900
    accept_window_s: Annotated[int, Meta(ge=10, le=3600)] = 300
    region: str | None = None


class StorePatch(Struct, forbid_unknown_fields=True):
    name: Name | None = None
    lat: Lat | None = None
    lng: Lng | None = None
    timezone: str | None = None
    currency: str | None = None
    tax_rate_bps: Annotated[int, Meta(ge=0, le=10_000)] | None = None
    tax_inclusive: bool | None = None
    prep_time_default_s: Annotated[int, Meta(ge=0, le=4 * 3600)] | None = None
    accept_window_s: Annotated[int, Meta(ge=10, le=3600)] | None = None
    region: str | None = None


class Period(Struct, frozen=True, forbid_unknown_fields=True):
    """Open from `opens` to `closes` local time; `closes` <= `opens` crosses midnight into the next day."""

    weekday: Annotated[int, Meta(ge=0, le=6, description="0 = Monday ... 6 = Sunday")]
    opens: Hhmm
    closes: Hhmm


class DayPeriod(Struct, frozen=True, forbid_unknown_fields=True):
    opens: Hhmm
    closes: Hhmm


class HoursIn(Struct, forbid_unknown_fields=True):
    periods: list[Period]


class SpecialDayIn(Struct, forbid_unknown_fields=True):
    """Replaces the weekly hours that open on this date: `closed`, or the given `periods`."""

    closed: bool = False
    periods: list[DayPeriod] = []
    note: str | None = None


class SpecialDayOut(Struct):
    day: date
    closed: bool
    periods: list[DayPeriod]
    note: str | None = None


class SpecialDays(Struct):
    items: list[SpecialDayOut]


class ZonesIn(Struct, forbid_unknown_fields=True):
    zones: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=20,
                                                description="GeoJSON Polygon or MultiPolygon objects")]
    max_delivery_m: Annotated[int, Meta(ge=100, le=100_000)] = 5000
    fee_bands: list[FeeBand] = []


class PauseIn(Struct, forbid_unknown_fields=True):
    until: datetime | None = None
    reason: str | None = None


class StoreOut(Struct):
    id: str
    tenant_id: str
    name: str
    lat: float
    lng: float
    timezone: str
    currency: str
    tax_rate_bps: int
    tax_inclusive: bool
    prep_time_default_s: int
    accept_window_s: int
    status: StoreStatus
    paused_until: datetime | None
    region: str
    hours: list[Period]
    zones: list[dict[str, Any]]
    max_delivery_m: int
    fee_bands: list[FeeBand]
    menu_version: int
    version: int
    created_at: datetime
    updated_at: datetime


class StorePage(Struct):
    items: list[StoreOut]
    next_cursor: str | None = None


class StorePageQuery(Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    cursor: Annotated[str, id_cursor("sto")] | None = None  # malformed: 400 cursor_invalid, like every list


class AuditPageQuery(Struct, forbid_unknown_fields=True):
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    # An audit row id (bigint); malformed: 400 cursor_invalid (kernel/pagination.py).
    cursor: Annotated[str, Meta(pattern="^[0-9]{1,18}$", description="the previous page's `next_cursor`")] | None = None


# ---- menus ---------------------------------------------------------------------------------------

class OptionIn(Struct, forbid_unknown_fields=True):
    name: Name
    id: str | None = None
    price: Price = 0
    max_quantity: Annotated[int, Meta(ge=1, le=99)] = 1
    available: bool = True
    modifier_groups: list[ModifierGroupIn] = []


class ModifierGroupIn(Struct, forbid_unknown_fields=True):
    name: Name
    options: Annotated[list[OptionIn], Meta(min_length=1, max_length=100)]
    id: str | None = None
    min: Annotated[int, Meta(ge=0, le=99)] = 0
    max: Annotated[int, Meta(ge=1, le=99)] = 1


class ItemIn(Struct, forbid_unknown_fields=True):
    name: Name
    price: Price
    id: str | None = None
    description: Annotated[str, Meta(max_length=2000)] = ""
    availability: Availability = "in_stock"
    sold_out_until: SoldOutUntil | None = None
    dietary_tags: list[Annotated[str, Meta(min_length=1, max_length=40)]] = []
    image_url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None = None
    modifier_groups: list[ModifierGroupIn] = []


class CategoryIn(Struct, forbid_unknown_fields=True):
    name: Name
    items: list[ItemIn]
    id: str | None = None


class MenuIn(Struct, forbid_unknown_fields=True):
    """The whole menu, validated as a unit; it replaces the current one and becomes a new version."""

    categories: Annotated[list[CategoryIn], Meta(max_length=200)]


class MenuOut(Struct):
    """The menu as it reads now: a sold-out item shows its `sold_out_until`; once that has passed,
    the item shows as `in_stock` (without an end)."""

    store_id: str
    version: int
    currency: str
    categories: list[CategoryIn]
    published_at: datetime | None = None


class ItemPatch(Struct, forbid_unknown_fields=True):
    name: Name | None = None
    description: Annotated[str, Meta(max_length=2000)] | None = None
    price: Price | None = None
    availability: Availability | None = None
    sold_out_until: SoldOutUntil | None = None
    dietary_tags: list[Annotated[str, Meta(min_length=1, max_length=40)]] | None = None
    image_url: Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None = None


class ItemOut(Struct):
    store_id: str
    menu_version: int
    item: ItemIn


class StockIn(Struct, forbid_unknown_fields=True):
    count: Annotated[int, Meta(ge=0, le=1_000_000)] | None  # null: stop counting this item


class StockOut(Struct):
    item_id: str
    count: int | None


class StockList(Struct):
    items: list[StockOut]


class AuditEntry(Struct):
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class AuditPage(Struct):
    items: list[AuditEntry]
    next_cursor: str | None = None


# ---- customer side -------------------------------------------------------------------------------

class CatalogMoney(Struct, frozen=True):
    amount: int
    currency: str


class DiscoveryQuery(Struct, forbid_unknown_fields=True):
    lat: Lat
    lng: Lng
    sort: Literal["eta", "distance"] = "eta"
    limit: Annotated[int, Meta(ge=1, le=100)] = 20
    cursor: OpaqueCursor | None = None


class StoreCard(Struct):
    id: str
    name: str
    lat: float
    lng: float
    currency: str
    open_now: bool
    opens_at: datetime | None
    distance_m: int
    eta_s: int
    delivery_fee: CatalogMoney


class StoreCards(Struct):
    items: list[StoreCard]
    next_cursor: str | None = None


class SearchQuery(Struct, forbid_unknown_fields=True):
    q: Annotated[str, Meta(min_length=1, max_length=100)]
    lat: Lat
    lng: Lng
    limit: Annotated[int, Meta(ge=1, le=50)] = 20


class SearchHit(Struct):
    kind: Literal["store", "item"]
    store_id: str
    store_name: str
    item_id: str | None
    name: str
    price: CatalogMoney | None
    score: float
    distance_m: int


class SearchResults(Struct):
    items: list[SearchHit]


class CustomerOption(Struct):
    id: str
    name: str
    price: int
    max_quantity: int
    available: bool
    modifier_groups: list[CustomerGroup]


class CustomerGroup(Struct):
    id: str
    name: str
    min: int
    max: int
    options: list[CustomerOption]


class CustomerItem(Struct):
    id: str
    name: str
    description: str
    price: int
    sold_out: bool
    dietary_tags: list[str]
    image_url: str | None
    modifier_groups: list[CustomerGroup]


class CustomerCategory(Struct):
    id: str
    name: str
    items: list[CustomerItem]


class CustomerMenu(Struct):
    store_id: str
    store_name: str
    currency: str
    version: int
    categories: list[CustomerCategory]


menu_decoder = msgspec.json.Decoder(MenuIn)
