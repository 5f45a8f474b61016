"""Routes of live tracking: the courier socket and the order tracking socket."""

from __future__ import annotations

from aiohttp import web

from kernel.http import COURIER, CUSTOMER, OPERATOR, STAFF, endpoint, json_response, principal
from tracking.courier import courier_ws
from tracking.messages import CourierStatusOut
from tracking.service import TRACKING
from tracking.watchers import Watchers, order_socket

WATCHERS = web.AppKey("tracking_watchers", Watchers)
__all__ = ["TRACKING", "WATCHERS", "routes", "setup"]

routes = web.RouteTableDef()


# Registered as it is, not wrapped in another coroutine: each frame on the way to the session
# loop stays alive for as long as the socket is open (see BENCHMARKS.md, idle RSS).
routes.get("/v1/courier/ws")(endpoint(
    roles={COURIER}, websocket=True, auth_in_first_frame=True, tags=["tracking"],
    summary="Courier socket: stream GPS, change status, answer offers, report pick-up and delivery",
)(courier_ws))


@routes.get("/v1/orders/{order_id}/track")
@endpoint(roles={CUSTOMER, STAFF, OPERATOR}, websocket=True, errors=[404], tags=["tracking"],
          summary="Live view of an order: status changes and, while a courier carries it, its position and ETA")
async def track_order(request: web.Request) -> web.WebSocketResponse:
    return await order_socket(request, request.app[TRACKING], request.app[WATCHERS], principal(request))


@routes.post("/v1/couriers/{courier_id}/offline")
@endpoint(roles={OPERATOR}, idempotent=True, response=CourierStatusOut, errors=[404], tags=["tracking"],
          summary="Take a courier offline (as if its app said so): it leaves the available index, dispatch "
                  "withdraws its offers and re-dispatches what it has not picked up, and its app is told")
async def take_courier_offline(request: web.Request) -> web.Response:
    return json_response(await request.app[TRACKING].take_offline(request.match_info["courier_id"]))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
