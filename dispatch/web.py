"""Operator endpoints of dispatch: the surge heat map, a region's open pool and live offers,
and this process's round statistics. Thin: read, encode."""

from __future__ import annotations

import h3
from aiohttp import web

from dispatch import store
from dispatch.live import DispatchKeys, SurgeBoardStore
from dispatch.messages import (
    HeatCell,
    LatLng,
    LiveOffer,
    MoneyOut,
    PoolOrder,
    PoolView,
    RoundStats,
    SurgeMap,
)
from dispatch.service import Dispatcher, iso
from kernel.http import OPERATOR, STAFF, endpoint, json_response


class DispatchApp:
    """What the handlers need: the dispatchers of this process by region."""

    def __init__(self, dispatchers: dict[str, Dispatcher]) -> None:
        self.dispatchers = dispatchers

    def get(self, region: str) -> Dispatcher:
        found = self.dispatchers.get(region)
        if found is None:
            from dispatch.errors import RegionNotFound

            raise RegionNotFound(f"no dispatcher for region {region!r} in this deployment", param="region")
        return found


DISPATCH = web.AppKey("dispatch", DispatchApp)

routes = web.RouteTableDef()


@routes.get("/v1/dispatch/regions/{region}/surge")
@endpoint(roles={OPERATOR, STAFF}, response=SurgeMap, errors=[404], tags=["dispatch"],
          summary="Surge heat map: open orders, available couriers and the published fee multiplier per H3 cell")
async def surge_map(request: web.Request) -> web.Response:
    d = request.app[DISPATCH].get(request.match_info["region"])
    at, cells = await SurgeBoardStore(d.redis, DispatchKeys(d.prefix, d.region)).heat()
    out = []
    for cell, e in sorted(cells.items()):
        lat, lng = h3.cell_to_latlng(cell)
        out.append(HeatCell(cell, lat, lng, e.open_orders, e.available_couriers, e.multiplier, e.changed_at))
    return json_response(SurgeMap(d.region, iso(at) if at else None, out))


@routes.get("/v1/dispatch/regions/{region}/pool")
@endpoint(roles={OPERATOR}, response=PoolView, errors=[404], tags=["dispatch"],
          summary="A region's dispatch pool: orders waiting, offered or assigned, and the live offers")
async def pool_view(request: web.Request) -> web.Response:
    d = request.app[DISPATCH].get(request.match_info["region"])
    async with d.pool.acquire() as conn:
        rows = await store.pool_orders(conn, d.region)
        offers = await store.live_offers(conn, d.region)
    orders = [
        PoolOrder(r["order_id"], r["store_id"], r["status"], LatLng(r["pickup_lat"], r["pickup_lng"]),
                  LatLng(r["dropoff_lat"], r["dropoff_lng"]), r["placed_at"], r["ready_at"], r["promised_at"],
                  list(r["excluded"]), r["offer_id"], r["courier_id"])
        for r in rows
    ]
    live = [LiveOffer(o.offer_id, o.courier_id, list(o.order_ids), o.status, o.expires_at,
                      MoneyOut(o.payout_amount, o.currency)) for o in offers]
    return json_response(PoolView(d.region, orders, live))


@routes.get("/v1/dispatch/regions/{region}/rounds")
@endpoint(roles={OPERATOR}, response=RoundStats, errors=[404], tags=["dispatch"],
          summary="Recent dispatch rounds run by this process, offer outcomes and the region's lease holder")
async def round_stats(request: web.Request) -> web.Response:
    d = request.app[DISPATCH].get(request.match_info["region"])
    holder = await d.lease.holder()
    c = d.counters
    return json_response(RoundStats(
        d.region, holder[1] if holder else None, holder[0] if holder else None, d.leading,
        c.offers_sent, c.offers_accepted, c.offers_declined, c.offers_expired, list(d.rounds),
    ))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
