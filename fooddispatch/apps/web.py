"""The apps people hold, served by the server itself (static files, no CDN, no build step): the customer's
tracking page `/t/{token}`, the restaurant tablet `/tablet`, the courier web app `/courier` (a PWA), and
what they need beyond the packages' own API: the tracking view as JSON, its live socket for link holders,
and the map settings. Shared files (the vendored Leaflet, the map helper) are under `/assets/`, for any
page of ours to reuse (`/assets/vendor/leaflet/leaflet.js`, `/assets/apps/map.js`)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from catalog import web as catalog_web
from fooddispatch import auth, i18n
from fooddispatch.apps.view import TrackingView, first_name, tracking_view
from fooddispatch.keys import SETTINGS
from kernel.errors import DomainError, NotFound, Unauthenticated
from kernel.fielddoc import doc
from kernel.http import OPERATOR, Principal, encode, endpoint, json_response, optional_principal
from orders import web as orders_web
from orders.errors import TrackingLinkGone
from orders.link_web import TRACKING_LINKS
from orders.model import SYSTEM
from tracking import web as tracking_web
from tracking.public_view import LinkSender, courier_position
from tracking.watchers import find_order, serve_watcher

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
LINK_RECHECK_S = 30.0  # an open link socket re-checks its link this often (revoked: closed)
LINK_RECHECK = web.AppKey("apps_link_recheck_s", float)  # tests shorten it
LINK_GONE = 4410  # close code: the tracking link was revoked or expired
TOKEN_HEADER = "X-Tracking-Token"
POLL_CACHE = "private, max-age=2"  # pollers ask again every few seconds; revalidation is a 304
SYSTEM_READER = Principal("system:apps", OPERATOR, name="apps")
routes = web.RouteTableDef()
TAGS = ["apps"]

_REVOKED = (TrackingLinkGone.status, "tracking_link_revoked")  # a revoked link: 410 with its own code


class Names:
    """Restaurant and courier names for the views, remembered a while (they rarely change, and a view is
    polled every few seconds)."""

    SIZE = 4096
    TTL_S = 300.0

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._stores: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._couriers: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._zones: OrderedDict[str, tuple[str | None, float]] = OrderedDict()  # the stores' time zones

    @staticmethod
    def _keep(cache: OrderedDict[str, tuple[str | None, float]], key: str, value: str | None) -> str | None:
        cache[key] = (value, time.monotonic() + Names.TTL_S)
        cache.move_to_end(key)
        if len(cache) > Names.SIZE:
            cache.popitem(last=False)
        return value

    @staticmethod
    def _known(cache: OrderedDict[str, tuple[str | None, float]], key: str) -> tuple[bool, str | None]:
        found = cache.get(key)
        if found is None or found[1] < time.monotonic():
            return False, None
        return True, found[0]

    async def store(self, store_id: str) -> str | None:
        known, name = self._known(self._stores, store_id)
        if known:
            return name
        try:
            row = await self.app[catalog_web.CATALOG].merchant.get_store(SYSTEM_READER, store_id)
        except DomainError:
            return None
        self._keep(self._zones, store_id, row.get("timezone"))
        return self._keep(self._stores, store_id, row.get("name"))

    async def store_zone(self, store_id: str) -> str | None:
        """The store's IANA time zone: the pages show its times in it."""
        known, zone = self._known(self._zones, store_id)
        if not known:
            await self.store(store_id)
            zone = self._known(self._zones, store_id)[1]
        return zone

    async def courier(self, courier_id: str) -> str | None:
        known, name = self._known(self._couriers, courier_id)
        if known:
            return name
        try:
            who = await self.app[auth.IDENTITY_SERVICE].get_account(courier_id)
        except DomainError:
            return None
        return self._keep(self._couriers, courier_id, first_name(who.name))


NAMES = web.AppKey("apps_names", Names)


class MapConfig(msgspec.Struct, frozen=True):
    """The maps' tile server."""

    tile_url: Annotated[str | None, doc(  # {z}/{x}/{y} tiles; null: draw on a plain background
        "A {z}/{x}/{y} tile URL template; null: draw on a plain background",
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png")]
    attribution: Annotated[str | None, doc("The tiles' attribution, to show on the map",
                                           "© OpenStreetMap contributors")]


# ---- pages ------------------------------------------------------------------------------------------

def _tile_origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url.replace("{s}", "tiles"))
    host = parts.netloc.replace("tiles.", "*.") if "{s}" in url else parts.netloc
    return f" {parts.scheme}://{host}"


def _page(request: web.Request, path: Path) -> web.Response:
    """A page in the language the browser asks for: `<html lang>` tells the page's scripts
    (`/assets/apps/i18n.js`) which words to use."""
    tiles = _tile_origin(request.app[SETTINGS].map_tile_url)
    csp = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
           f"img-src 'self' data: blob:{tiles}; connect-src 'self' ws: wss:; worker-src 'self'; "
           "manifest-src 'self'; base-uri 'none'; frame-ancestors 'none'")
    language = i18n.negotiate(request.headers.get("Accept-Language"))
    html = path.read_bytes().replace(b'<html lang="en">', f'<html lang="{language}">'.encode(), 1)
    return web.Response(body=html, content_type="text/html", charset="utf-8", headers={
        "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp,
        # A tracking link's token is in the page's address: never send it to the tile server.
        "Referrer-Policy": "no-referrer", "Content-Language": language, "Vary": "Accept-Language",
    })


@routes.get("/t/{token}")
@endpoint(roles=None, summary="The customer's tracking page of a tracking link (a page; its data needs the link)",
          tags=TAGS)
async def tracking_page(request: web.Request) -> web.StreamResponse:
    return _page(request, STATIC / "track" / "index.html")


@routes.get("/tablet")
@endpoint(roles=None, summary="The restaurant tablet (a page; staff sign in or use an API key)", tags=TAGS)
async def tablet_page(request: web.Request) -> web.StreamResponse:
    return _page(request, STATIC / "tablet" / "index.html")


@routes.get("/courier")
@endpoint(roles=None, summary="The courier web app (an installable page; couriers sign in)", tags=TAGS)
async def courier_page(request: web.Request) -> web.StreamResponse:
    return _page(request, STATIC / "courier" / "index.html")


@routes.get("/courier/sw.js")
@endpoint(roles=None, summary="The courier app's service worker (keeps the app's shell for offline starts)",
          tags=TAGS)
async def courier_worker(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "courier" / "sw.js", headers={
        "Content-Type": "text/javascript", "Cache-Control": "no-cache", "Service-Worker-Allowed": "/courier",
    })


@routes.get("/courier/manifest.webmanifest")
@endpoint(roles=None, summary="The courier app's web app manifest", tags=TAGS)
async def courier_manifest(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "courier" / "manifest.webmanifest",
                            headers={"Content-Type": "application/manifest+json", "Cache-Control": "no-cache"})


@routes.get("/v1/maps/config")
@endpoint(roles=None, response=MapConfig, summary="The maps' tile server and attribution (null: no tiles)",
          tags=TAGS)
async def map_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return json_response(MapConfig(settings.map_tile_url, settings.map_attribution if settings.map_tile_url else None),
                         headers={"Cache-Control": "public, max-age=300"})


# ---- the tracking view -----------------------------------------------------------------------------

async def _view(request: web.Request, order_id: str) -> TrackingView:
    app = request.app
    token = request.headers.get(TOKEN_HEADER) or request.query.get("token")
    if token:
        await app[TRACKING_LINKS].check(token, order_id)
        caller = SYSTEM
    else:
        who = optional_principal(request)
        if who is None:
            raise Unauthenticated(f"send a bearer token, or a tracking link's token in {TOKEN_HEADER}",
                                  headers={"WWW-Authenticate": "Bearer"})
        caller = orders_web.caller_of(who)
    order = await app[orders_web.ORDERS].queries.order(order_id, caller)
    tracking = app.get(tracking_web.TRACKING)
    position = await courier_position(tracking, order_id) if tracking is not None else None
    if position is not None and position.courier_id != order.courier_id:
        position = None  # orders and tracking disagree for a moment after a reassignment: show no one
    names = app[NAMES]
    courier_name = await names.courier(position.courier_id) if position is not None else None
    return tracking_view(order, await names.store(order.store_id), position, courier_name,
                         await names.store_zone(order.store_id))


@routes.get("/v1/orders/{order_id}/tracking")
@endpoint(roles=None, response=TrackingView, tags=TAGS, errors=[401, 404, TrackingLinkGone, _REVOKED],
          summary="The order's tracking view (what the tracking page shows) for pollers: status, timeline, ETA, "
                  f"the courier's position while they carry it. The order's customer, staff or operators (bearer), "
                  f"or a tracking link's token in {TOKEN_HEADER} (or ?token=). Cache-Control private, max-age=2, "
                  "with an ETag: send If-None-Match for a 304 when nothing changed")
async def tracking_json(request: web.Request) -> web.Response:
    body = encode(await _view(request, request.match_info["order_id"]))
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    headers = {"Cache-Control": POLL_CACHE, "ETag": etag, "Vary": f"Authorization, {TOKEN_HEADER}"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


@routes.get("/v1/orders/{order_id}/tracking/ws")
@endpoint(roles=None, websocket=True, tags=TAGS, errors=[404, TrackingLinkGone, _REVOKED],
          summary="Live frames of the order for a tracking link's holder (?token=): status changes and the "
                  "courier's position inside the tracking window, without account ids")
async def tracking_socket(request: web.Request) -> web.StreamResponse:
    order_id = request.match_info["order_id"]
    token = request.query.get("token", "")
    await request.app[TRACKING_LINKS].check(token, order_id)
    tracking = request.app[tracking_web.TRACKING]
    order = await find_order(tracking, order_id)
    if order is None:
        raise NotFound("no such order", param="order_id")
    senders: list[LinkSender] = []

    def sender(ws: web.WebSocketResponse, limit: int, transport: asyncio.BaseTransport | None) -> LinkSender:
        senders.append(LinkSender(ws, limit, transport))
        return senders[0]

    watchdog = asyncio.create_task(_close_when_gone(request, token, order_id, senders))
    try:
        # The link shows the customer's order: it closes when they are erased (its link is revoked then too).
        return await serve_watcher(request, tracking, request.app[tracking_web.WATCHERS], order_id, order,
                                   sender=sender, customer_id=order.customer_id, gone="tracking_link_revoked")
    finally:
        watchdog.cancel()


async def _close_when_gone(request: web.Request, token: str, order_id: str, senders: list[LinkSender]) -> None:
    """A link revoked (or expired) while its page is open: the page's socket closes with `LINK_GONE`
    within `LINK_RECHECK` seconds (the page then reads the view and says why)."""
    links = request.app[TRACKING_LINKS]
    every = request.app.get(LINK_RECHECK, LINK_RECHECK_S)
    while True:
        await asyncio.sleep(every)
        try:
            await links.check(token, order_id)
        except DomainError as exc:
            for s in senders:
                s.close(LINK_GONE, exc.code)
            return
        except Exception:  # a database hiccup: keep the socket, ask again next time
            log.warning("tracking link re-check failed", exc_info=True)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_static("/assets/", STATIC, append_version=False)
