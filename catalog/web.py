"""HTTP handlers of the catalog: decode, call the service, encode. Thin.

Merchant routes (staff of the tenant, its API keys, operators) live under `/v1/tenants/{tenant_id}`
and `/v1/merchant/stores/{store_id}`; every one of them resolves its tenant or store first
(`owner_first`), before its body or query is read, and answers "not found" for another tenant's,
whatever was sent. Customer routes are public.
"""

from __future__ import annotations

import functools
from datetime import date
from typing import Any

import msgspec
from aiohttp import web

from catalog.errors import CurrencyFixed
from catalog.messages import (
    AuditEntry,
    AuditPage,
    AuditPageQuery,
    CustomerMenu,
    DiscoveryQuery,
    HoursIn,
    ItemOut,
    ItemPatch,
    MenuIn,
    MenuOut,
    PauseIn,
    SearchQuery,
    SearchResults,
    SpecialDayIn,
    SpecialDayOut,
    SpecialDays,
    StockIn,
    StockList,
    StockOut,
    StoreCards,
    StoreCreate,
    StoreOut,
    StorePage,
    StorePageQuery,
    StorePatch,
    TenantCreate,
    TenantOut,
    ZonesIn,
)
from catalog.service import CatalogService
from kernel.errors import ValidationFailed
from kernel.http import (
    OPERATOR,
    STAFF,
    Handler,
    decode_body,
    decode_query,
    endpoint,
    json_response,
    principal,
    refuse_store_scoped,
)

CATALOG = web.AppKey("catalog", CatalogService)
MERCHANT = frozenset({STAFF, OPERATOR})
TAGS = ["catalog"]
MERCHANT_TAGS = ["catalog: merchant"]

routes = web.RouteTableDef()


def _service(request: web.Request) -> CatalogService:
    return request.app[CATALOG]


def _store_out(row: dict[str, Any]) -> StoreOut:
    return msgspec.convert(row, StoreOut, from_attributes=False)


def owner_first(handler: Handler) -> Handler:
    """Resolve the path's store (or tenant) for the caller before the handler reads anything else:
    another tenant's, or an unknown one, is 404 whatever the body or query holds (a 422 first would
    answer a question about a resource the caller may not know exists). The handler's service
    call checks again, in its own transaction, under its lock."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        merchant, who = _service(request).merchant, principal(request)
        if "store_id" in request.match_info:
            await merchant.get_store(who, request.match_info["store_id"])
        else:
            await merchant.get_tenant(who, request.match_info["tenant_id"])
        return await handler(request)

    return checked


def _day(request: web.Request) -> date:
    try:
        return date.fromisoformat(request.match_info["day"])
    except ValueError:
        raise ValidationFailed("day is a date, YYYY-MM-DD", param="day") from None


# ---- tenants and stores --------------------------------------------------------------------------

@routes.post("/v1/tenants")
@endpoint(roles={OPERATOR}, body=TenantCreate, response=TenantOut, status=201,
          summary="Create a tenant (a merchant)", tags=MERCHANT_TAGS)
async def create_tenant(request: web.Request) -> web.Response:
    body = await decode_body(request, TenantCreate)
    row = await _service(request).merchant.create_tenant(principal(request), body.name)
    return json_response(TenantOut(**dict(row)), status=201)


@routes.get("/v1/tenants/{tenant_id}")
@endpoint(roles=MERCHANT, response=TenantOut, summary="A tenant", tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def get_tenant(request: web.Request) -> web.Response:
    row = await _service(request).merchant.get_tenant(principal(request), request.match_info["tenant_id"])
    return json_response(TenantOut(**dict(row)))


@routes.post("/v1/tenants/{tenant_id}/stores")
@endpoint(roles=MERCHANT, body=StoreCreate, response=StoreOut, status=201,
          summary="Create a store (not with a store-scoped key: 403)", tags=MERCHANT_TAGS, errors=[403, 404, 422])
@owner_first
async def create_store(request: web.Request) -> web.Response:
    refuse_store_scoped(principal(request), "stores")  # before the body: its 422 would not be the answer
    body = await decode_body(request, StoreCreate)
    row = await _service(request).merchant.create_store(principal(request), request.match_info["tenant_id"], body)
    return json_response(_store_out(row), status=201)


@routes.get("/v1/tenants/{tenant_id}/stores")
@endpoint(roles=MERCHANT, query=StorePageQuery, response=StorePage, summary="The tenant's stores",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def list_stores(request: web.Request) -> web.Response:
    query = decode_query(request, StorePageQuery)
    rows = await _service(request).merchant.list_stores(
        principal(request), request.match_info["tenant_id"], query.cursor, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return json_response(StorePage([_store_out(r) for r in rows], rows[-1]["id"] if more else None))


@routes.get("/v1/merchant/stores/{store_id}")
@endpoint(roles=MERCHANT, response=StoreOut, summary="A store", tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def get_store(request: web.Request) -> web.Response:
    row = await _service(request).merchant.get_store(principal(request), request.match_info["store_id"])
    return json_response(_store_out(row))


@routes.patch("/v1/merchant/stores/{store_id}")
@endpoint(roles=MERCHANT, body=StorePatch, response=StoreOut, summary="Change store settings",
          tags=MERCHANT_TAGS, errors=[404, CurrencyFixed, 422])
@owner_first
async def patch_store(request: web.Request) -> web.Response:
    body = await decode_body(request, StorePatch)
    row = await _service(request).merchant.patch_store(principal(request), request.match_info["store_id"], body)
    return json_response(_store_out(row))


@routes.put("/v1/merchant/stores/{store_id}/hours")
@endpoint(roles=MERCHANT, body=HoursIn, response=StoreOut, summary="Set the weekly opening hours",
          tags=MERCHANT_TAGS, errors=[404, 422])
@owner_first
async def set_hours(request: web.Request) -> web.Response:
    body = await decode_body(request, HoursIn)
    row = await _service(request).merchant.set_hours(principal(request), request.match_info["store_id"], body)
    return json_response(_store_out(row))


@routes.put("/v1/merchant/stores/{store_id}/zones")
@endpoint(roles=MERCHANT, body=ZonesIn, response=StoreOut,
          summary="Set delivery zones (GeoJSON), fee bands and the maximum distance", tags=MERCHANT_TAGS,
          errors=[404, 422])
@owner_first
async def set_zones(request: web.Request) -> web.Response:
    body = await decode_body(request, ZonesIn)
    row = await _service(request).merchant.set_zones(principal(request), request.match_info["store_id"], body)
    return json_response(_store_out(row))


@routes.post("/v1/merchant/stores/{store_id}/pause")
@endpoint(roles=MERCHANT, body=PauseIn, response=StoreOut, summary="Pause the store (optionally until a time)",
          tags=MERCHANT_TAGS, errors=[404, 422])
@owner_first
async def pause_store(request: web.Request) -> web.Response:
    body = await decode_body(request, PauseIn)
    row = await _service(request).merchant.pause(principal(request), request.match_info["store_id"], body)
    return json_response(_store_out(row))


@routes.post("/v1/merchant/stores/{store_id}/open")
@endpoint(roles=MERCHANT, response=StoreOut, summary="Open the store (end a pause or a closure)",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def open_store(request: web.Request) -> web.Response:
    row = await _service(request).merchant.set_status(principal(request), request.match_info["store_id"], "online")
    return json_response(_store_out(row))


@routes.post("/v1/merchant/stores/{store_id}/close")
@endpoint(roles=MERCHANT, response=StoreOut, summary="Close the store until it is opened again",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def close_store(request: web.Request) -> web.Response:
    row = await _service(request).merchant.set_status(principal(request), request.match_info["store_id"], "closed")
    return json_response(_store_out(row))


# ---- special days --------------------------------------------------------------------------------

@routes.get("/v1/merchant/stores/{store_id}/special_days")
@endpoint(roles=MERCHANT, response=SpecialDays, summary="Special days (holidays, closures, extended hours)",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def list_special_days(request: web.Request) -> web.Response:
    rows = await _service(request).merchant.special_days(principal(request), request.match_info["store_id"])
    return json_response(SpecialDays([msgspec.convert(
        {**dict(r), "periods": msgspec.json.decode(r["periods"]) if isinstance(r["periods"], str) else r["periods"]},
        SpecialDayOut) for r in rows]))


@routes.put("/v1/merchant/stores/{store_id}/special_days/{day}")
@endpoint(roles=MERCHANT, body=SpecialDayIn, response=SpecialDayOut,
          summary="Add or replace one special day (the others stay)", tags=MERCHANT_TAGS, errors=[404, 422])
@owner_first
async def put_special_day(request: web.Request) -> web.Response:
    day = _day(request)
    body = await decode_body(request, SpecialDayIn)
    await _service(request).merchant.put_special_day(principal(request), request.match_info["store_id"], day, body)
    return json_response(SpecialDayOut(day, body.closed, body.periods, body.note))


@routes.delete("/v1/merchant/stores/{store_id}/special_days/{day}")
@endpoint(roles=MERCHANT, status=204, summary="Remove one special day", tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def delete_special_day(request: web.Request) -> web.Response:
    day = _day(request)
    await _service(request).merchant.delete_special_day(principal(request), request.match_info["store_id"], day)
    return web.Response(status=204)


# ---- menus and stock -----------------------------------------------------------------------------

@routes.put("/v1/merchant/stores/{store_id}/menu")
@endpoint(roles=MERCHANT, body=MenuIn, response=MenuOut,
          summary="Replace the whole menu (validated as a unit; publishes a new version)", tags=MERCHANT_TAGS,
          errors=[404, 422])
@owner_first
async def put_menu(request: web.Request) -> web.Response:
    body = await decode_body(request, MenuIn)
    service = _service(request)
    store_id = request.match_info["store_id"]
    version, menu, at = await service.merchant.publish_menu(principal(request), store_id, body)
    row = await service.merchant.get_store(principal(request), store_id)
    return json_response(MenuOut(store_id, version, row["currency"], menu.categories, at))


@routes.get("/v1/merchant/stores/{store_id}/menu")
@endpoint(roles=MERCHANT, response=MenuOut, summary="The current menu, hidden items included",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def get_menu(request: web.Request) -> web.Response:
    row, menu, at = await _service(request).merchant.current_menu(principal(request), request.match_info["store_id"])
    return json_response(MenuOut(row["id"], row["menu_version"], row["currency"], menu.categories, at))


@routes.patch("/v1/merchant/stores/{store_id}/items/{item_id}")
@endpoint(roles=MERCHANT, body=ItemPatch, response=ItemOut,
          summary="Change one item (price, availability: in_stock / sold_out today or until sold_out_until / "
                  "hidden...)", tags=MERCHANT_TAGS,
          errors=[404, 422])
@owner_first
async def patch_item(request: web.Request) -> web.Response:
    body = await decode_body(request, ItemPatch)
    store_id = request.match_info["store_id"]
    version, item = await _service(request).merchant.patch_item(
        principal(request), store_id, request.match_info["item_id"], body)
    return json_response(ItemOut(store_id, version, item))


@routes.get("/v1/merchant/stores/{store_id}/stock")
@endpoint(roles=MERCHANT, response=StockList, summary="Counted stock of the store's items", tags=MERCHANT_TAGS,
          errors=[404])
@owner_first
async def get_stock(request: web.Request) -> web.Response:
    rows = await _service(request).merchant.stock(principal(request), request.match_info["store_id"])
    return json_response(StockList([StockOut(r["item_id"], r["count"]) for r in rows]))


@routes.put("/v1/merchant/stores/{store_id}/stock/{item_id}")
@endpoint(roles=MERCHANT, body=StockIn, response=StockOut, summary="Set an item's stock count (null: uncounted)",
          tags=MERCHANT_TAGS, errors=[404, 422])
@owner_first
async def set_stock(request: web.Request) -> web.Response:
    body = await decode_body(request, StockIn)
    item_id = request.match_info["item_id"]
    await _service(request).merchant.set_stock(principal(request), request.match_info["store_id"], item_id, body.count)
    return json_response(StockOut(item_id, body.count))


@routes.get("/v1/merchant/stores/{store_id}/audit")
@endpoint(roles=MERCHANT, query=AuditPageQuery, response=AuditPage, summary="Who changed what, newest first",
          tags=MERCHANT_TAGS, errors=[404])
@owner_first
async def audit_log(request: web.Request) -> web.Response:
    query = decode_query(request, AuditPageQuery)
    before = int(query.cursor) if query.cursor else None
    rows = await _service(request).merchant.audit_log(
        principal(request), request.match_info["store_id"], before, query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [AuditEntry(r["id"], r["at"], r["actor"], r["action"], msgspec.json.decode(r["detail"])) for r in rows]
    return json_response(AuditPage(items, str(rows[-1]["id"]) if more else None))


# ---- customer side -------------------------------------------------------------------------------

@routes.get("/v1/stores")
@endpoint(roles=None, query=DiscoveryQuery, response=StoreCards,
          summary="Stores that deliver to a point, open now or later today", tags=TAGS, errors=[422])
async def discover(request: web.Request) -> web.Response:
    query = decode_query(request, DiscoveryQuery)
    service = _service(request)
    return json_response(await service.customer.discover(query, service.clock.now()))


@routes.get("/v1/stores/{store_id}/menu")
@endpoint(roles=None, response=CustomerMenu, summary="A store's menu as customers see it", tags=TAGS,
          errors=[404])
async def customer_menu(request: web.Request) -> web.Response:
    return json_response(await _service(request).customer.menu(request.match_info["store_id"]))


@routes.get("/v1/search")
@endpoint(roles=None, query=SearchQuery, response=SearchResults,
          summary="Dishes and stores that deliver to a point (full-text, typo tolerant)", tags=TAGS, errors=[422])
async def search(request: web.Request) -> web.Response:
    query = decode_query(request, SearchQuery)
    service = _service(request)
    return json_response(SearchResults(await service.customer.search(query, service.clock.now())))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
