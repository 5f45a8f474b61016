"""The console's routes: the page, its websocket, drill-down reads, the action route map, and the
event dead letters (list, replay)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from fooddispatch.keys import DB
from fooddispatch.openapi import build_openapi
from fooddispatch.ops import people
from fooddispatch.ops.discovery import find_routes
from fooddispatch.ops.feed import OpsFeed
from fooddispatch.ops.messages import DeadLetterPage, DeadLetterQuery, ReplayOut
from kernel import eventstore
from kernel.errors import NotFound
from kernel.http import OPERATOR, decode_query, endpoint, json_response

OPS_FEED = web.AppKey("ops_feed", OpsFeed)
PAGE = Path(__file__).with_name("static") / "ops.html"
# Operator actions and the reads the page makes itself, against the owning packages' routes.
ACTIONS = ("get_store", "pause_store", "open_store", "refund_payment", "refund_order", "cancel_order",
           "courier_offline", "get_order", "surge", "assign_courier")
routes = web.RouteTableDef()


@routes.get("/ops")
@endpoint(roles=None, summary="The operations console (a page; its data needs an operator token)", tags=["ops"])
async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@routes.get("/v1/ops/ws")
@endpoint(roles={OPERATOR}, websocket=True, summary="Live console feed: snapshots and ops-channel messages",
          tags=["ops"])
async def feed(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
    await ws.prepare(request)
    await request.app[OPS_FEED].serve(ws)
    return ws


@routes.get("/v1/ops/orders/{order_id}")
@endpoint(roles={OPERATOR}, summary="An order's timeline: status history, offers, courier track, payments",
          tags=["ops"], errors=[404])
async def order_detail(request: web.Request) -> web.Response:
    found = request.app[OPS_FEED].projection.order_detail(request.match_info["order_id"])
    if found is None:
        raise NotFound("no such order in the console's view", param="order_id")
    return json_response(found)


@routes.get("/v1/ops/couriers/{courier_id}")
@endpoint(roles={OPERATOR}, summary="A courier's day: status changes, offers, deliveries, track", tags=["ops"],
          errors=[404])
async def courier_detail(request: web.Request) -> web.Response:
    found = request.app[OPS_FEED].projection.courier_detail(request.match_info["courier_id"])
    if found is None:
        raise NotFound("no such courier in the console's view", param="courier_id")
    return json_response(found)


@routes.get("/v1/ops/routes")
@endpoint(roles={OPERATOR}, summary="Where the console's actions live in this API (missing ones are absent)",
          tags=["ops"])
async def action_routes(request: web.Request) -> web.Response:
    found = find_routes(build_openapi(request.app))
    return json_response({name: {"method": r.method, "path": r.path} for name, r in found.items() if name in ACTIONS})


@routes.get("/v1/ops/dead_letters")
@endpoint(roles={OPERATOR}, query=DeadLetterQuery, response=DeadLetterPage, tags=["ops"],
          summary="Events a consumer group could not handle: parked (given up on, waiting for a replay) or "
                  "still being retried, oldest first")
async def list_dead_letters(request: web.Request) -> web.Response:
    query = decode_query(request, DeadLetterQuery)
    found = await eventstore.dead_letters(request.app[DB], group=query.group, parked=query.state == "parked",
                                          after=query.cursor, limit=query.limit + 1)
    more = len(found) > query.limit
    items = found[:query.limit]
    return json_response(DeadLetterPage(items=items, next_cursor=items[-1].id if more else None))


@routes.post("/v1/ops/dead_letters/{dead_letter_id}/replay")
@endpoint(roles={OPERATOR}, idempotent=True, response=ReplayOut, status=202, errors=[404], tags=["ops"],
          summary="Replay a parked event: it is published again and its group handles it (groups that "
                  "handled it already skip it); a new failure parks it again after the usual retries")
async def replay_dead_letter(request: web.Request) -> web.Response:
    replayed = await eventstore.replay(request.app[DB], request.match_info["dead_letter_id"])
    if replayed is None:
        raise NotFound("no parked dead letter with this id", param="dead_letter_id")
    return json_response(ReplayOut(replayed=replayed), status=202)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    people.setup(app)
