"""Wire formats of the catalog (msgspec Structs): merchant requests, customer responses, and the
cart-line input that `orders/` reuses as its own wire format."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from kernel.fielddoc import AMOUNT, CURRENCY, LAT, LIMIT, LNG, NEXT_CURSOR, doc
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
    """One chosen option of a modifier group (an extra, a size), with the options nested under it."""

    option_id: Annotated[str, doc("The option's id, as the menu names it", "extra_cheese")]
    quantity: Annotated[int, Meta(ge=1, le=99), doc("How many of this option, up to its `max_quantity`", 1)] = 1
    options: Annotated[list[SelectedOption], doc("Options chosen in the option's own modifier groups", [])] = []


class CartLineInput(Struct, frozen=True, forbid_unknown_fields=True):
    """One line of a cart: an item, how many, and the options chosen for it."""

    item_id: Annotated[str, doc("The menu item's id", "margherita")]
    quantity: Annotated[int, Meta(ge=1, le=99), doc("How many of the item", 2)]
    options: Annotated[list[SelectedOption], doc("The options chosen, each within its modifier group's rules",
                                                 [{"option_id": "extra_cheese", "quantity": 1}])] = []


# ---- tenants and stores --------------------------------------------------------------------------

class TenantCreate(Struct, forbid_unknown_fields=True):
    """A new tenant: a merchant that owns stores."""

    name: Annotated[Name, doc("The merchant's name", "Pizza Uno GmbH")]


class TenantOut(Struct):
    """A tenant: a merchant that owns stores, staff accounts and API keys."""

    id: Annotated[str, doc("The tenant's id", "ten_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    name: Annotated[str, doc("The merchant's name", "Pizza Uno GmbH")]
    created_at: Annotated[datetime, doc("When the tenant was created (UTC)", "2026-12-01T09:30:00Z")]


class FeeBand(Struct, frozen=True, forbid_unknown_fields=True):
    """The delivery fee for drop-offs up to a distance from the store."""

    up_to_m: Annotated[int, Meta(ge=1, le=200_000), doc("Upper bound of the band: road distance in meters", 3000)]
    fee: Annotated[Price, doc("Delivery fee in this band, in minor units of the store's currency", 199)]


TIMEZONE = doc("IANA timezone of the store; opening hours are wall-clock times there", "Europe/Berlin")
TAX_RATE = doc("Tax rate in basis points (1900 = 19%)", 1900)
TAX_INCLUSIVE = doc("Whether menu prices include tax (true) or tax is added on top (false)", True)
PREP_DEFAULT = doc("Preparation time in seconds an order gets unless the store says otherwise on accepting", 900)
ACCEPT_WINDOW = doc("Seconds the store has to accept a placed order before it expires", 300)
REGION = doc("The dispatch region the store belongs to (couriers are pooled per region)", "berlin")
STORE_ID = doc("The store's id", "sto_01JE3ZK4Q8N3W6V5T2R1P0M9XA")
ITEM_ID = doc("The menu item's id (the merchant's own, or generated when left out)", "margherita")
DIETARY = doc("Free-form dietary tags customers can filter on", ["vegetarian"])
IMAGE_URL = doc("Absolute http(s) URL of the item's picture", "https://cdn.example.com/margherita.jpg")
ZONE = {"type": "Polygon", "coordinates": [[[13.37, 52.50], [13.45, 52.50], [13.45, 52.54], [13.37, 52.54],
                                            [13.37, 52.50]]]}


class StoreCreate(Struct, forbid_unknown_fields=True):
    """A new store of the tenant. Hours, zones and the menu are set with their own calls."""

    name: Annotated[Name, doc("The store's name, as customers see it", "Pizza Uno Mitte")]
    lat: Annotated[Lat, LAT]
    lng: Annotated[Lng, LNG]
    timezone: Annotated[str, TIMEZONE]
    currency: Annotated[str, CURRENCY]
    tax_rate_bps: Annotated[int, Meta(ge=0, le=10_000), TAX_RATE] = 0
    tax_inclusive: Annotated[bool, TAX_INCLUSIVE] = False
    prep_time_default_s: Annotated[int, Meta(ge=0, le=4 * 3600), PREP_DEFAULT] = 900
    accept_window_s: Annotated[int, Meta(ge=10, le=3600), ACCEPT_WINDOW] = 300
    region: Annotated[str | None, REGION] = None


class StorePatch(Struct, forbid_unknown_fields=True):
    """Store settings to change; fields left out keep their value."""

    name: Annotated[Name | None, doc("The store's name, as customers see it", "Pizza Uno Mitte")] = None
    lat: Annotated[Lat | None, LAT] = None
    lng: Annotated[Lng | None, LNG] = None
    timezone: Annotated[str | None, TIMEZONE] = None
    currency: Annotated[str | None, CURRENCY] = None
    tax_rate_bps: Annotated[Annotated[int, Meta(ge=0, le=10_000)] | None, TAX_RATE] = None
    tax_inclusive: Annotated[bool | None, TAX_INCLUSIVE] = None
    prep_time_default_s: Annotated[Annotated[int, Meta(ge=0, le=4 * 3600)] | None, PREP_DEFAULT] = None
    accept_window_s: Annotated[Annotated[int, Meta(ge=10, le=3600)] | None, ACCEPT_WINDOW] = None
    region: Annotated[str | None, REGION] = None


class Period(Struct, frozen=True, forbid_unknown_fields=True):
    """Open from `opens` to `closes` local time; `closes` <= `opens` crosses midnight into the next day."""

    weekday: Annotated[int, Meta(ge=0, le=6), doc("Day of the week it opens: 0 = Monday ... 6 = Sunday", 4)]
    opens: Annotated[Hhmm, doc("Opening time, local HH:MM", "11:30")]
    closes: Annotated[Hhmm, doc("Closing time, local HH:MM (24:00 for midnight)", "22:00")]


class DayPeriod(Struct, frozen=True, forbid_unknown_fields=True):
    """Open from `opens` to `closes` local time on a special day."""

    opens: Annotated[Hhmm, doc("Opening time, local HH:MM", "12:00")]
    closes: Annotated[Hhmm, doc("Closing time, local HH:MM (24:00 for midnight)", "16:00")]


class HoursIn(Struct, forbid_unknown_fields=True):
    """The whole weekly schedule; it replaces the current one."""

    periods: Annotated[list[Period], doc("Opening periods; a weekday without one is closed",
                                         [{"weekday": 0, "opens": "11:30", "closes": "22:00"}])]


class SpecialDayIn(Struct, forbid_unknown_fields=True):
    """Replaces the weekly hours that open on this date: `closed`, or the given `periods`."""

    closed: Annotated[bool, doc("Closed all day (then `periods` must be empty)", False)] = False
    periods: Annotated[list[DayPeriod], doc("Opening periods of the day, instead of the weekly ones",
                                            [{"opens": "12:00", "closes": "16:00"}])] = []
    note: Annotated[str | None, doc("Why (shown to staff only)", "Christmas Eve")] = None


class SpecialDayOut(Struct):
    """A date whose hours differ from the weekly schedule."""

    day: Annotated[date, doc("The local date", "2026-12-24")]
    closed: Annotated[bool, doc("Closed all day", False)]
    periods: Annotated[list[DayPeriod], doc("Opening periods of the day", [{"opens": "12:00", "closes": "16:00"}])]
    note: Annotated[str | None, doc("Why (shown to staff only)", "Christmas Eve")] = None


class SpecialDays(Struct):
    """The store's special days, by date."""

    items: Annotated[list[SpecialDayOut], doc("Special days, earliest first",
                                              [{"day": "2026-12-24", "closed": True, "periods": []}])]


class ZonesIn(Struct, forbid_unknown_fields=True):
    """Where the store delivers and what delivery costs."""

    zones: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=20),
                     doc("GeoJSON Polygon or MultiPolygon objects ([lng, lat] positions) the store delivers to",
                         [ZONE])]
    max_delivery_m: Annotated[int, Meta(ge=100, le=100_000),
                              doc("Farthest drop-off by road distance, in meters", 5000)] = 5000
    fee_bands: Annotated[list[FeeBand], doc("Delivery fees by distance, nearest band first",
                                            [{"up_to_m": 3000, "fee": 199}, {"up_to_m": 5000, "fee": 299}])] = []


class PauseIn(Struct, forbid_unknown_fields=True):
    """A pause: no new orders until `until` (or until the store is opened again)."""

    until: Annotated[datetime | None, doc("When the pause ends by itself; null: until opened",
                                          "2026-12-07T19:00:00Z")] = None
    reason: Annotated[str | None, doc("Why (shown to staff and operators)", "kitchen overloaded")] = None


class StoreOut(Struct):
    """A store with all its settings."""

    id: Annotated[str, STORE_ID]
    tenant_id: Annotated[str, doc("The tenant that owns the store", "ten_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    name: Annotated[str, doc("The store's name, as customers see it", "Pizza Uno Mitte")]
    lat: Annotated[float, LAT]
    lng: Annotated[float, LNG]
    timezone: Annotated[str, TIMEZONE]
    currency: Annotated[str, CURRENCY]
    tax_rate_bps: Annotated[int, TAX_RATE]
    tax_inclusive: Annotated[bool, TAX_INCLUSIVE]
    prep_time_default_s: Annotated[int, PREP_DEFAULT]
    accept_window_s: Annotated[int, ACCEPT_WINDOW]
    status: Annotated[StoreStatus, doc("`online` takes orders; `paused` until `paused_until`; `closed` until opened",
                                       "online")]
    paused_until: Annotated[datetime | None, doc("When a pause ends by itself; null when not paused or open-ended",
                                                 None)]
    region: Annotated[str, REGION]
    hours: Annotated[list[Period], doc("Weekly opening hours", [{"weekday": 0, "opens": "11:30", "closes": "22:00"}])]
    zones: Annotated[list[dict[str, Any]], doc("GeoJSON delivery zones", [ZONE])]
    max_delivery_m: Annotated[int, doc("Farthest drop-off by road distance, in meters", 5000)]
    fee_bands: Annotated[list[FeeBand], doc("Delivery fees by distance", [{"up_to_m": 3000, "fee": 199}])]
    menu_version: Annotated[int, doc("Version of the published menu (0: none yet)", 3)]
    version: Annotated[int, doc("Version of the store's settings; grows with every change", 7)]
    created_at: Annotated[datetime, doc("When the store was created (UTC)", "2026-12-01T09:30:00Z")]
    updated_at: Annotated[datetime, doc("When the settings last changed (UTC)", "2026-12-05T14:02:11Z")]


class StorePage(Struct):
    """A page of stores."""

    items: Annotated[list[StoreOut], doc("The stores of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page",
                                           "sto_01JE3ZK4Q8N3W6V5T2R1P0M9XA")] = None


class StorePageQuery(Struct, forbid_unknown_fields=True):
    """Paging through the tenant's stores."""

    limit: Annotated[int, Meta(ge=1, le=100), LIMIT] = 20
    cursor: Annotated[Annotated[str, id_cursor("sto")] | None,  # malformed: 400 cursor_invalid, like every list
                      doc("The `next_cursor` of the previous page", "sto_01JE3ZK4Q8N3W6V5T2R1P0M9XA")] = None


class AuditPageQuery(Struct, forbid_unknown_fields=True):
    """Paging through the audit log."""

    limit: Annotated[int, Meta(ge=1, le=100), LIMIT] = 20
    # An audit row id (bigint); malformed: 400 cursor_invalid (kernel/pagination.py).
    cursor: Annotated[Annotated[str, Meta(pattern="^[0-9]{1,18}$")] | None,
                      doc("The `next_cursor` of the previous page", "4711")] = None


# ---- menus ---------------------------------------------------------------------------------------

class OptionIn(Struct, forbid_unknown_fields=True):
    """One option of a modifier group; it may have modifier groups of its own."""

    name: Annotated[Name, doc("The option's name", "Extra cheese")]
    id: Annotated[str | None, doc("The option's id (generated when left out)", "extra_cheese")] = None
    price: Annotated[Price, doc("Price added per unit, in minor units", 150)] = 0
    max_quantity: Annotated[int, Meta(ge=1, le=99), doc("How many of it one line may take", 1)] = 1
    available: Annotated[bool, doc("Whether it can be chosen now", True)] = True
    modifier_groups: Annotated[list[ModifierGroupIn], doc("Groups nested under this option", [])] = []


class ModifierGroupIn(Struct, forbid_unknown_fields=True):
    """A choice on an item (size, extras): between `min` and `max` of its options."""

    name: Annotated[Name, doc("The group's name", "Extras")]
    options: Annotated[list[OptionIn], Meta(min_length=1, max_length=100),
                       doc("The options", [{"name": "Extra cheese", "price": 150}])]
    id: Annotated[str | None, doc("The group's id (generated when left out)", "extras")] = None
    min: Annotated[int, Meta(ge=0, le=99), doc("Fewest options to choose (1 or more: required)", 0)] = 0
    max: Annotated[int, Meta(ge=1, le=99), doc("Most options to choose", 3)] = 1


class ItemIn(Struct, forbid_unknown_fields=True):
    """A menu item."""

    name: Annotated[Name, doc("The item's name", "Margherita")]
    price: Annotated[Price, doc("Price in minor units of the store's currency", 890)]
    id: Annotated[str | None, ITEM_ID] = None
    description: Annotated[str, Meta(max_length=2000), doc("What it is", "Tomato, mozzarella, basil")] = ""
    availability: Annotated[Availability, doc("`in_stock`, `sold_out` (see `sold_out_until`) or `hidden`",
                                              "in_stock")] = "in_stock"
    sold_out_until: Annotated[SoldOutUntil | None, doc(
        "When a sold-out item is back by itself (an instant with a UTC offset, at most 30 days ahead); left out, "
        "`sold_out` lasts until the store's next local midnight", "2026-12-08T10:00:00+01:00")] = None
    dietary_tags: Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]], DIETARY] = []
    image_url: Annotated[Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None, IMAGE_URL] = None
    modifier_groups: Annotated[list[ModifierGroupIn], doc("Choices on the item",
                                                          [{"name": "Extras", "options": [{"name": "Basil"}]}])] = []


class CategoryIn(Struct, forbid_unknown_fields=True):
    """A menu category and its items, in order."""

    name: Annotated[Name, doc("The category's name", "Pizza")]
    items: Annotated[list[ItemIn], doc("The items, in menu order", [{"name": "Margherita", "price": 890}])]
    id: Annotated[str | None, doc("The category's id (generated when left out)", "pizza")] = None


class MenuIn(Struct, forbid_unknown_fields=True):
    """The whole menu, validated as a unit; it replaces the current one and becomes a new version."""

    categories: Annotated[list[CategoryIn], Meta(max_length=200),
                          doc("The categories, in menu order", [{"name": "Pizza", "items": []}])]


class MenuOut(Struct):
    """The menu as it reads now: a sold-out item shows its `sold_out_until`; once that has passed,
    the item shows as `in_stock` (without an end)."""

    store_id: Annotated[str, STORE_ID]
    version: Annotated[int, doc("The menu's version; every replacement publishes a new one", 3)]
    currency: Annotated[str, CURRENCY]
    categories: Annotated[list[CategoryIn], doc("The categories, in menu order", [{"name": "Pizza", "items": []}])]
    published_at: Annotated[datetime | None, doc("When this version was published", "2026-12-05T14:02:11Z")] = None


class ItemPatch(Struct, forbid_unknown_fields=True):
    """Changes to one item; fields left out keep their value."""

    name: Annotated[Name | None, doc("The item's name", "Margherita")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None,
                           doc("What it is", "Tomato, mozzarella, basil")] = None
    price: Annotated[Price | None, doc("Price in minor units of the store's currency", 890)] = None
    availability: Annotated[Availability | None, doc("`in_stock`, `sold_out` or `hidden`", "sold_out")] = None
    sold_out_until: Annotated[SoldOutUntil | None, doc(
        "When a sold-out item is back by itself; left out, until the store's next local midnight",
        "2026-12-08T10:00:00+01:00")] = None
    dietary_tags: Annotated[list[Annotated[str, Meta(min_length=1, max_length=40)]] | None, DIETARY] = None
    image_url: Annotated[Annotated[str, Meta(pattern=r"^https?://", max_length=2000)] | None, IMAGE_URL] = None


class ItemOut(Struct):
    """An item as it reads after a change, with the menu version that carries it."""

    store_id: Annotated[str, STORE_ID]
    menu_version: Annotated[int, doc("The menu version published by the change", 4)]
    item: Annotated[ItemIn, doc("The item")]


class StockIn(Struct, forbid_unknown_fields=True):
    """A stock count to set."""

    count: Annotated[Annotated[int, Meta(ge=0, le=1_000_000)] | None,  # null: stop counting this item
                     doc("Units left (orders take from it; 0 is sold out); null stops counting the item", 24)]


class StockOut(Struct):
    """An item's counted stock."""

    item_id: Annotated[str, ITEM_ID]
    count: Annotated[int | None, doc("Units left; null: not counted", 24)]


class StockList(Struct):
    """The store's counted items."""

    items: Annotated[list[StockOut], doc("Counted items", [{"item_id": "margherita", "count": 24}])]


class AuditEntry(Struct):
    """One change to the store, its menu or its stock."""

    id: Annotated[int, doc("The entry's id (also the paging cursor)", 4711)]
    at: Annotated[datetime, doc("When (UTC)", "2026-12-05T14:02:11Z")]
    actor: Annotated[str, doc("Who: an account id or an API key's id", "stf_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    action: Annotated[str, doc("What was done", "item.updated")]
    detail: Annotated[dict[str, Any], doc("The change's particulars", {"item_id": "margherita", "price": 890})]


class AuditPage(Struct):
    """A page of the audit log, newest first."""

    items: Annotated[list[AuditEntry], doc("The entries of this page", [])]
    next_cursor: Annotated[str | None, doc("Pass as `cursor` for the next page; null on the last page", "4711")] = None


# ---- customer side -------------------------------------------------------------------------------

class CatalogMoney(Struct, frozen=True):
    """An amount of money: integer minor units and a currency."""

    amount: Annotated[int, AMOUNT]
    currency: Annotated[str, CURRENCY]


class DiscoveryQuery(Struct, forbid_unknown_fields=True):
    """Where the customer wants food delivered."""

    lat: Annotated[Lat, doc("Latitude of the drop-off point (WGS84)", 52.52)]
    lng: Annotated[Lng, doc("Longitude of the drop-off point (WGS84)", 13.405)]
    sort: Annotated[Literal["eta", "distance"], doc("Order by delivery time or by distance", "eta")] = "eta"
    limit: Annotated[int, Meta(ge=1, le=100), LIMIT] = 20
    cursor: Annotated[OpaqueCursor | None, doc("The `next_cursor` of the previous page", "MjA")] = None


class StoreCard(Struct):
    """A store that delivers to the point, as a list shows it."""

    id: Annotated[str, STORE_ID]
    name: Annotated[str, doc("The store's name", "Pizza Uno Mitte")]
    lat: Annotated[float, LAT]
    lng: Annotated[float, LNG]
    currency: Annotated[str, CURRENCY]
    open_now: Annotated[bool, doc("Whether it takes orders now", True)]
    opens_at: Annotated[datetime | None, doc("When it opens later today, if closed now", None)]
    distance_m: Annotated[int, doc("Distance to the drop-off point in meters", 1800)]
    eta_s: Annotated[int, doc("Estimated seconds from ordering to delivery", 1980)]
    delivery_fee: Annotated[CatalogMoney, doc("The delivery fee to this point")]


class StoreCards(Struct):
    """A page of stores that deliver to the point."""

    items: Annotated[list[StoreCard], doc("The stores of this page", [])]
    next_cursor: Annotated[str | None, NEXT_CURSOR] = None


class SearchQuery(Struct, forbid_unknown_fields=True):
    """A full-text search for dishes and stores near a point."""

    q: Annotated[str, Meta(min_length=1, max_length=100), doc("What to look for (typos are tolerated)", "margarita")]
    lat: Annotated[Lat, doc("Latitude of the drop-off point (WGS84)", 52.52)]
    lng: Annotated[Lng, doc("Longitude of the drop-off point (WGS84)", 13.405)]
    limit: Annotated[int, Meta(ge=1, le=50), LIMIT] = 20


class SearchHit(Struct):
    """A store or a dish that matches, best first."""

    kind: Annotated[Literal["store", "item"], doc("Whether the hit is a store or a dish", "item")]
    store_id: Annotated[str, STORE_ID]
    store_name: Annotated[str, doc("The store's name", "Pizza Uno Mitte")]
    item_id: Annotated[str | None, doc("The dish's id; null for a store", "margherita")]
    name: Annotated[str, doc("The dish's or the store's name", "Margherita")]
    price: Annotated[CatalogMoney | None, doc("The dish's price; null for a store")]
    score: Annotated[float, doc("Relevance; higher is better", 0.82)]
    distance_m: Annotated[int, doc("Distance of the store to the point in meters", 1800)]


class SearchResults(Struct):
    """Search hits, best first."""

    items: Annotated[list[SearchHit], doc("The hits", [])]


class CustomerOption(Struct):
    """An option of a modifier group, as customers see it."""

    id: Annotated[str, doc("The option's id", "extra_cheese")]
    name: Annotated[str, doc("The option's name", "Extra cheese")]
    price: Annotated[int, doc("Price added per unit, in minor units of the menu's currency", 150)]
    max_quantity: Annotated[int, doc("How many of it one line may take", 1)]
    available: Annotated[bool, doc("Whether it can be chosen now", True)]
    modifier_groups: Annotated[list[CustomerGroup], doc("Groups nested under this option", [])]


class CustomerGroup(Struct):
    """A choice on an item: between `min` and `max` of its options."""

    id: Annotated[str, doc("The group's id", "extras")]
    name: Annotated[str, doc("The group's name", "Extras")]
    min: Annotated[int, doc("Fewest options to choose (1 or more: required)", 0)]
    max: Annotated[int, doc("Most options to choose", 3)]
    options: Annotated[list[CustomerOption], doc("The options", [])]


class CustomerItem(Struct):
    """A dish, as customers see it."""

    id: Annotated[str, doc("The dish's id", "margherita")]
    name: Annotated[str, doc("The dish's name", "Margherita")]
    description: Annotated[str, doc("What it is", "Tomato, mozzarella, basil")]
    price: Annotated[int, doc("Price in minor units of the menu's currency", 890)]
    sold_out: Annotated[bool, doc("Sold out now (cannot be ordered)", False)]
    dietary_tags: Annotated[list[str], DIETARY]
    image_url: Annotated[str | None, IMAGE_URL]
    modifier_groups: Annotated[list[CustomerGroup], doc("Choices on the dish", [])]


class CustomerCategory(Struct):
    """A menu category and its dishes."""

    id: Annotated[str, doc("The category's id", "pizza")]
    name: Annotated[str, doc("The category's name", "Pizza")]
    items: Annotated[list[CustomerItem], doc("The dishes, in menu order", [])]


class CustomerMenu(Struct):
    """A store's published menu, as customers see it (hidden items left out)."""

    store_id: Annotated[str, STORE_ID]
    store_name: Annotated[str, doc("The store's name", "Pizza Uno Mitte")]
    currency: Annotated[str, CURRENCY]
    version: Annotated[int, doc("The menu's version (a quote names the version it priced)", 3)]
    categories: Annotated[list[CustomerCategory], doc("The categories, in menu order", [])]


menu_decoder = msgspec.json.Decoder(MenuIn)
