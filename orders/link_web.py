"""Routes of tracking links: issue and revoke (the page and the JSON view that a link opens are served by
the composition root, `fooddispatch/apps`, since they show what tracking and catalog know too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from kernel.fielddoc import doc
from kernel.http import CUSTOMER, OPERATOR, endpoint, json_response, principal
from orders.link_store import EVERY_LINK
from orders.links import TrackingLinks
from orders.web import caller_of

TRACKING_LINKS = web.AppKey("orders_tracking_links", TrackingLinks)
routes = web.RouteTableDef()
TAGS = ["orders"]


class TrackingLinkOut(msgspec.Struct, frozen=True):
    """A shareable tracking link."""

    id: Annotated[str, doc("The link's id (to revoke it)", "tl_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    order_id: Annotated[str, doc("The order it shows", "ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    token: Annotated[str, doc("The signed token", "tl_01JE3ZK4Q8.sig")]
    url: Annotated[str, doc("The tracking page, relative to this server", "/t/tl_01JE3ZK4Q8.sig")]  # relative
    expires_at: Annotated[datetime, doc("When the link stops working (UTC)", "2026-12-08T18:00:00Z")]


@routes.post("/v1/orders/{order_id}/tracking_links")
@endpoint(roles={CUSTOMER, OPERATOR}, response=TrackingLinkOut, status=201, tags=TAGS, errors=[404],
          summary="A shareable tracking link to the order: a signed, expiring token that opens this order's "
                  "tracking page (/t/{token}) and its JSON view, nothing else, without a login")
async def issue_link(request: web.Request) -> web.Response:
    link = await request.app[TRACKING_LINKS].issue(request.match_info["order_id"], caller_of(principal(request)))
    return json_response(TrackingLinkOut(link.id, link.order_id, link.token, f"/t/{link.token}", link.expires_at),
                         status=201)


@routes.delete("/v1/orders/{order_id}/tracking_links/{link_id}")
@endpoint(roles={CUSTOMER, OPERATOR}, status=204, tags=TAGS, errors=[404],
          summary=f"Revoke a tracking link by its id, or every link issued so far with `{EVERY_LINK}`")
async def revoke_link(request: web.Request) -> web.Response:
    await request.app[TRACKING_LINKS].revoke(request.match_info["order_id"], request.match_info["link_id"],
                                             caller_of(principal(request)))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
