"""Routes of the events API (`GET /v1/events`, `GET /v1/events/{event_id}`) and of a manual webhook
redelivery (`POST /v1/merchant/webhook_endpoints/{endpoint_id}/deliveries`). See orders.merchant_events."""

from __future__ import annotations

import msgspec
from aiohttp import web

from kernel.errors import Forbidden, NotFound
from kernel.http import (
    OPERATOR,
    STAFF,
    Principal,
    decode_body,
    decode_query,
    endpoint,
    json_response,
    principal,
    refuse_store_scoped,
)
from orders.errors import EndpointDisabled
from orders.merchant_events import EventFilter, MerchantEvents
from orders.messages import EventListQuery, EventOut, EventPage, EventPageRaw, RedeliveryRequest, WebhookDeliveryOut
from orders.web import WEBHOOKS

EVENTS = web.AppKey("orders_merchant_events", MerchantEvents)
routes = web.RouteTableDef()
TAGS = ["events"]


def _scope(who: Principal) -> str | None:
    """The tenant whose events the caller sees; None for an operator (every tenant's)."""
    if who.is_operator():
        return None
    if not who.tenant_id:
        raise Forbidden("events belong to a restaurant tenant")
    refuse_store_scoped(who, "the tenant's events")
    return who.tenant_id


@routes.get("/v1/events")
@endpoint(roles={STAFF, OPERATOR}, query=EventListQuery, response=EventPage, tags=TAGS, errors=[403, 404, 422],
          summary="The tenant's events of the last 30 days, newest first, as its webhooks carry them (the same "
                  "`id` and body), so missed deliveries can be fetched. Filters: `type` (one or several, "
                  "comma-separated; `order.*` for a family), `created[gte]` / `created[lte]` (unix seconds). "
                  "Page with `cursor` = the previous page's `next_cursor` (a malformed cursor is 400 "
                  "`cursor_invalid`). Operators see every tenant's events, or one tenant's with `tenant_id`; "
                  "staff may name only their own (another is 404); store-scoped API keys get 403")
async def list_events(request: web.Request) -> web.Response:
    q = decode_query(request, EventListQuery)
    tenant = _scope(principal(request))
    if q.tenant_id is not None:
        if tenant is not None and q.tenant_id != tenant:
            raise NotFound("no such tenant", param="tenant_id")
        tenant = q.tenant_id
    events, next_cursor = await request.app[EVENTS].page(
        tenant, EventFilter.parse(q.type, q.created_gte, q.created_lte), q.cursor, q.limit)
    return json_response(EventPageRaw([msgspec.Raw(e.payload) for e in events], next_cursor))


@routes.get("/v1/events/{event_id}")
@endpoint(roles={STAFF, OPERATOR}, response=EventOut, tags=TAGS, errors=[403, 404],
          summary="One event, byte for byte the body its webhook deliveries carry (their `id` and "
                  "`Fooddispatch-Event-Id` header name it). Another tenant's event, or one older than 30 "
                  "days, is 404 `resource_missing`")
async def get_event(request: web.Request) -> web.Response:
    event = await request.app[EVENTS].get(request.match_info["event_id"], _scope(principal(request)))
    return web.Response(body=event.payload, content_type="application/json")


@routes.post("/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries")
@endpoint(roles={STAFF, OPERATOR}, body=RedeliveryRequest, response=WebhookDeliveryOut, status=201,
          tags=["webhooks"], errors=[404, EndpointDisabled, 422],
          summary="Redeliver one event of the tenant to this endpoint now (whether or not the endpoint "
                  "subscribes to its type or had it already): a new delivery in the endpoint's log, signed "
                  "and retried like any other, with the same body and event id. A disabled endpoint is 409 "
                  "`webhook_endpoint_disabled`; another tenant's endpoint or event is 404. Send an "
                  "`Idempotency-Key` to make a retry return the first delivery instead of adding another")
async def redeliver(request: web.Request) -> web.Response:
    endpoint_id = request.match_info["endpoint_id"]
    tenant = _scope(principal(request))
    await request.app[WEBHOOKS].get_endpoint(endpoint_id, tenant)  # 404 before the body is read
    body = await decode_body(request, RedeliveryRequest)
    row = await request.app[WEBHOOKS].redeliver(endpoint_id, tenant, body.event_id)
    return json_response(WebhookDeliveryOut(
        id=row["id"], event_id=row["event_id"], event_type=row["event_type"], status=row["status"], attempts=[],
        next_attempt_at=row["next_attempt_at"], created_at=row["created_at"]), status=201)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
