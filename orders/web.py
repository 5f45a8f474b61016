"""HTTP and websocket handlers of orders: parse, call the service, encode. Thin."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import TypeVar

import msgspec
import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType, web

from catalog.errors import InvalidSelection, ItemUnavailable, OutOfStock
from kernel.clientip import client_ip
from kernel.errors import Forbidden, InvalidTransition, NotFound, Unauthenticated, ValidationFailed
from kernel.http import (
    COURIER,
    CUSTOMER,
    OPERATOR,
    STAFF,
    ErrorDeclaration,
    Principal,
    decode_body,
    decode_query,
    endpoint,
    idempotency_key,
    json_response,
    principal,
    refuse_store_scoped,
)
from kernel.netguard import DnsUnavailable, WebhookUrlForbidden
from orders.checkout_rules import ClientContext
from orders.errors import (
    AlreadyRated,
    NotDeliverable,
    OrderNotFound,
    PriceChanged,
    PromoCodeTaken,
    PromoRejected,
    QuoteAlreadyUsed,
    QuoteExpired,
    StoreUnavailable,
    TipNotChangeable,
)
from orders.lifecycle import OrderLifecycle
from orders.live import FeedOverflow, TenantFeed
from orders.messages import (
    AcceptRequest,
    AssignRequest,
    CancelRequest,
    CheckoutRequest,
    CourierStepRequest,
    FeedHello,
    MissingItemsRequest,
    OrderListQuery,
    OrderOut,
    OrderPage,
    PageQuery,
    PrepTimeRequest,
    PromoCreate,
    PromoOut,
    QuoteOut,
    QuoteRequest,
    RatingRequest,
    RejectRequest,
    RotateSecretRequest,
    TipRequest,
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointOut,
    feed_encoder,
)
from orders.model import Action, Actor, Caller, can_see
from orders.service import OrdersService
from orders.tenancy import tenant_scope
from orders.views import promo_out, quote_out
from orders.webhooks import Webhooks
from payments.errors import (
    IdempotencyMismatch,
    IntentAmountMismatch,
    IntentUnexpectedState,
    PaymentDeclined,
    PaymentRequiresAction,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Feed:
    redis: aioredis.Redis
    prefix: str


ORDERS = web.AppKey("orders", OrdersService)
WEBHOOKS = web.AppKey("orders_webhooks", Webhooks)
FEED = web.AppKey("orders_feed", Feed)

routes = web.RouteTableDef()
TAGS = ["orders"]
# A checkout from the wallet in another currency than it holds (payments' `currency_mismatch`), and a
# conversion quote it cannot accept.
WALLET_CURRENCY: list[tuple[int, str]] = [(409, "currency_mismatch"), (409, "conversion_quote_used"),
                                          (409, "conversion_quote_expired"), (409, "conversion_quote_mismatch")]

# The answers routes below give besides every route's (fooddispatch/openapi.py lists them per operation).
PRICING: list[ErrorDeclaration] = [  # pricing a cart: the store, the drop-off, the promo, the menu's rules
    StoreUnavailable, NotDeliverable, PromoRejected, (PromoRejected.status, "promo_unknown"),
    (PromoRejected.status, "promo_wrong_store"), ItemUnavailable, InvalidSelection]
CHECKOUT: list[ErrorDeclaration] = [  # and then the quote, the stock and the payment
    *PRICING, QuoteExpired, PriceChanged, QuoteAlreadyUsed, OutOfStock,
    (PromoRejected.status, "promo_budget_exhausted"), IntentUnexpectedState,
    (IntentUnexpectedState.status, "payment_intent_already_used"), IntentAmountMismatch, IdempotencyMismatch]
STEP: list[ErrorDeclaration] = [404, InvalidTransition]  # a lifecycle step the order's status does not allow

_ACTORS = {CUSTOMER: Actor.CUSTOMER, STAFF: Actor.RESTAURANT, COURIER: Actor.COURIER, OPERATOR: Actor.OPERATOR}


def caller_of(who: Principal) -> Caller:
    return Caller(_ACTORS[who.role], who.account_id, who.tenant_id, who.store_ids)


def _caller(request: web.Request) -> Caller:
    return caller_of(principal(request))


def _lifecycle(request: web.Request) -> OrderLifecycle:
    return request.app[ORDERS].lifecycle


async def _order_body(request: web.Request, model: type[T]) -> T:
    """The body of a command on the path's order, read only once the caller may see that order: an
    order of another customer or tenant is the same 404 as one that does not exist, whatever the body
    says (a 422 first would tell the caller the order exists)."""
    parties = await request.app[ORDERS].queries.parties(request.match_info["order_id"])
    if parties is None or not can_see(_caller(request), parties.customer_id, parties.tenant_id, parties.store_id,
                                      parties.courier_id):
        raise OrderNotFound("no such order", param="order_id")
    return await decode_body(request, model)


async def _order(request: web.Request) -> web.Response:
    """The path's order as the caller sees it: what every command on an order answers."""
    return json_response(await request.app[ORDERS].queries.order(request.match_info["order_id"], _caller(request)))


# ---- customer: quote and checkout ---------------------------------------------------------------

DEVICE_ID_HEADER = "X-Device-Id"  # the app's install id: the fraud screen counts attempts and promos per device
DEVICE_ID_MAX = 128


def _client(request: web.Request, service: OrdersService) -> ClientContext:
    """Where the checkout comes from, for the fraud screen (see kernel.clientip for the IP)."""
    device = request.headers.get(DEVICE_ID_HEADER, "").strip() or None
    if device is not None and (len(device) > DEVICE_ID_MAX or not device.isprintable()):
        raise ValidationFailed(f"{DEVICE_ID_HEADER} must be at most {DEVICE_ID_MAX} printable characters",
                               param=DEVICE_ID_HEADER)
    ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), service.config.trusted_proxies)
    return ClientContext(ip=ip, device_id=device)


@routes.post("/v1/quotes")
@endpoint(roles={CUSTOMER}, body=QuoteRequest, response=QuoteOut, status=201, tags=TAGS, errors=[404, *PRICING],
          summary="Price a cart for a drop-off point; the quote is valid for 5 minutes")
async def create_quote(request: web.Request) -> web.Response:
    body = await decode_body(request, QuoteRequest)
    quote = await request.app[ORDERS].checkout.quote(principal(request).account_id, body)
    return json_response(quote_out(quote), status=201)


@routes.post("/v1/orders")
@endpoint(roles={CUSTOMER}, idempotent=True, body=CheckoutRequest, response=OrderOut, status=201, tags=TAGS,
          errors=[PaymentDeclined, PaymentRequiresAction, 404, *CHECKOUT, *WALLET_CURRENCY],
          summary="Check out a quote: re-check, reserve stock, hold the payment (or take the authorized "
                  "payment_intent a 3-D Secure 402 named), place the order. A quote makes one order: ordering "
                  "it again (another Idempotency-Key) is 409 quote_already_used with the order's id. Apps send "
                  f"the device's id in {DEVICE_ID_HEADER} (optional, at most {DEVICE_ID_MAX} characters) for "
                  "the fraud screen")
async def checkout(request: web.Request) -> web.Response:
    body = await decode_body(request, CheckoutRequest)
    who = principal(request)
    key = idempotency_key(request) or ""
    orders = request.app[ORDERS]
    order = await orders.checkout.place(who.account_id, key, body, _client(request, orders))
    return json_response(orders.queries.view(order, caller_of(who)), status=201)


@routes.get("/v1/orders")
@endpoint(roles={CUSTOMER, OPERATOR}, query=OrderListQuery, response=OrderPage, tags=TAGS,
          summary="The caller's orders, newest first (cursor pagination)")
async def list_my_orders(request: web.Request) -> web.Response:
    q = decode_query(request, OrderListQuery)
    return json_response(await request.app[ORDERS].queries.orders(_caller(request), q))


@routes.get("/v1/orders/{order_id}")
@endpoint(roles={CUSTOMER, STAFF, COURIER, OPERATOR}, response=OrderOut, tags=TAGS, errors=[404],
          summary="An order: status, lines, amounts, ETA, cancel terms, history")
async def get_order(request: web.Request) -> web.Response:
    return await _order(request)


@routes.post("/v1/orders/{order_id}/cancel")
@endpoint(roles={CUSTOMER, STAFF, OPERATOR}, body=CancelRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="Cancel: free before acceptance, a fee after (see the order's cancel terms), never after pickup")
async def cancel(request: web.Request) -> web.Response:
    body = await _order_body(request, CancelRequest)
    await _lifecycle(request).act(request.match_info["order_id"], _caller(request), Action.CANCEL,
                                     reason=body.reason)
    return await _order(request)


@routes.post("/v1/orders/{order_id}/tip")
@endpoint(roles={CUSTOMER}, body=TipRequest, response=OrderOut, tags=TAGS,
          errors=[PaymentDeclined, PaymentRequiresAction, 404, TipNotChangeable],
          summary="Change the tip (until one hour after delivery; never lower after delivery)")
async def change_tip(request: web.Request) -> web.Response:
    body = await _order_body(request, TipRequest)
    await _lifecycle(request).change_tip(request.match_info["order_id"], _caller(request), body.tip)
    return await _order(request)


@routes.post("/v1/orders/{order_id}/rating")
@endpoint(roles={CUSTOMER}, body=RatingRequest, response=OrderOut, tags=TAGS,
          errors=[404, InvalidTransition, AlreadyRated],
          summary="Rate a delivered order, once")
async def rate(request: web.Request) -> web.Response:
    body = await _order_body(request, RatingRequest)
    await _lifecycle(request).rate(request.match_info["order_id"], _caller(request), body.stars, body.comment)
    return await _order(request)


# ---- restaurant -------------------------------------------------------------------------------------

async def _own_store(request: web.Request) -> str:
    """The path's store, when the caller may act for it: 404 for another tenant's (or none), before
    anything else of the request is read."""
    store_id, who = request.match_info["store_id"], principal(request)
    if not who.may_act_for_store(store_id):  # another store of the tenant, for a store's key: the same 404
        raise NotFound("no such store", param="store_id")
    await request.app[ORDERS].stores.owner(store_id, tenant_scope(who))
    return store_id


@routes.get("/v1/stores/{store_id}/orders")
@endpoint(roles={STAFF, OPERATOR}, query=OrderListQuery, response=OrderPage, tags=TAGS, errors=[404],
          summary="A store's orders (status=placed, status=active, or a comma list), newest first")
async def store_orders(request: web.Request) -> web.Response:
    store_id = await _own_store(request)
    q = decode_query(request, OrderListQuery)
    page = await request.app[ORDERS].queries.orders(_caller(request), q, store_id)
    return json_response(page)


async def _step(request: web.Request, action: Action, **kw: object) -> web.Response:
    await _lifecycle(request).act(request.match_info["order_id"], _caller(request), action, **kw)  # type: ignore[arg-type]
    return await _order(request)


@routes.post("/v1/orders/{order_id}/accept")
@endpoint(roles={STAFF, OPERATOR}, body=AcceptRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="Accept a placed order with a prep time (another tablet was first: 409)")
async def accept(request: web.Request) -> web.Response:
    body = await _order_body(request, AcceptRequest)
    return await _step(request, Action.ACCEPT, prep_time_s=body.prep_time_s)


@routes.post("/v1/orders/{order_id}/reject")
@endpoint(roles={STAFF, OPERATOR}, body=RejectRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="Reject a placed order with a reason code; the hold is voided")
async def reject(request: web.Request) -> web.Response:
    body = await _order_body(request, RejectRequest)
    return await _step(request, Action.REJECT, reason=body.reason)


@routes.post("/v1/orders/{order_id}/preparing")
@endpoint(roles={STAFF, OPERATOR}, response=OrderOut, tags=TAGS, errors=STEP, summary="Mark preparing")
async def preparing(request: web.Request) -> web.Response:
    return await _step(request, Action.START_PREPARING)


@routes.post("/v1/orders/{order_id}/ready")
@endpoint(roles={STAFF, OPERATOR}, response=OrderOut, tags=TAGS, errors=STEP, summary="Mark ready")
async def ready(request: web.Request) -> web.Response:
    return await _step(request, Action.MARK_READY)


@routes.post("/v1/orders/{order_id}/prep_time")
@endpoint(roles={STAFF, OPERATOR}, body=PrepTimeRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="Adjust the prep time of an accepted order")
async def prep_time(request: web.Request) -> web.Response:
    body = await _order_body(request, PrepTimeRequest)
    await _lifecycle(request).set_prep_time(request.match_info["order_id"], _caller(request), body.prep_time_s)
    return await _order(request)


@routes.post("/v1/orders/{order_id}/missing_items")
@endpoint(roles={STAFF, OPERATOR}, body=MissingItemsRequest, response=OrderOut, tags=TAGS, errors=[*STEP, 422],
          summary="Report items that cannot be sent after acceptance: a partial refund")
async def missing_items(request: web.Request) -> web.Response:
    body = await _order_body(request, MissingItemsRequest)
    missing: dict[int, int] = {}
    for line in body.lines:
        missing[line.line_no] = missing.get(line.line_no, 0) + line.quantity
    await _lifecycle(request).report_missing(request.match_info["order_id"], _caller(request), missing)
    return await _order(request)


# ---- courier (REST fallback of the tracking events) and operator ----------------------------------------

@routes.post("/v1/orders/{order_id}/pickup")
@endpoint(roles={COURIER, OPERATOR}, body=CourierStepRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="The assigned courier picked the order up")
async def pickup(request: web.Request) -> web.Response:
    body = await _order_body(request, CourierStepRequest)
    return await _step(request, Action.PICK_UP, proof=msgspec.to_builtins(body.proof) if body.proof else None)


@routes.post("/v1/orders/{order_id}/deliver")
@endpoint(roles={COURIER, OPERATOR}, body=CourierStepRequest, response=OrderOut, tags=TAGS, errors=STEP,
          summary="The assigned courier delivered the order (proof: photo URL or code)")
async def deliver(request: web.Request) -> web.Response:
    body = await _order_body(request, CourierStepRequest)
    return await _step(request, Action.DELIVER, proof=msgspec.to_builtins(body.proof) if body.proof else None)


@routes.post("/v1/orders/{order_id}/courier")
@endpoint(roles={OPERATOR}, body=AssignRequest, response=OrderOut, tags=TAGS, errors=[*STEP, 422],
          summary="Assign or reassign a courier by hand, before pickup (dispatch normally does it). Announced as "
                  "`order.courier_assigned`: dispatch stops offering the order, both couriers' apps are told, "
                  "the customer's tracking shows the new courier")
async def assign(request: web.Request) -> web.Response:
    body = await _order_body(request, AssignRequest)
    await _lifecycle(request).assign(request.match_info["order_id"], _caller(request), body.courier_id)
    return await _order(request)


@routes.post("/v1/promos")
@endpoint(roles={STAFF, OPERATOR}, body=PromoCreate, response=PromoOut, status=201, tags=TAGS,
          errors=[403, 404, PromoCodeTaken, 422, (422, "invalid_currency")],
          summary="Create a promo code: restaurants for one of their stores (another tenant's store: 404), "
                  "operators for any store or platform-wide; codes are unique per tenant")
async def create_promo(request: web.Request) -> web.Response:
    body = await decode_body(request, PromoCreate)
    if body.store_id is not None and not principal(request).may_act_for_store(body.store_id):
        raise NotFound("no such store", param="store_id")  # a store's key naming another store
    promo = await request.app[ORDERS].create_promo(tenant_scope(principal(request)), msgspec.to_builtins(body) | {
        "valid_from": body.valid_from, "valid_until": body.valid_until})
    return json_response(promo_out(promo), status=201)


# ---- webhooks -------------------------------------------------------------------------------------

def _tenant_scope(who: Principal) -> str | None:
    if who.is_operator():
        return None
    if not who.tenant_id:
        raise Forbidden("webhook endpoints belong to a restaurant tenant")
    refuse_store_scoped(who, "webhook endpoints")
    return who.tenant_id


async def _own_endpoint(request: web.Request) -> str | None:
    """The caller's tenant scope, once the path's endpoint is known to be its: 404 before the body."""
    tenant = _tenant_scope(principal(request))
    await request.app[WEBHOOKS].get_endpoint(request.match_info["endpoint_id"], tenant)
    return tenant


def _endpoint_out(row: object, secret: str | None = None) -> WebhookEndpointOut:
    r = dict(row)  # type: ignore[call-overload]
    return WebhookEndpointOut(
        id=r["id"], tenant_id=r["tenant_id"], url=r["url"], event_types=list(r["event_types"]), enabled=r["enabled"],
        disabled_reason=r["disabled_reason"], consecutive_failures=r["consecutive_failures"],
        created_at=r["created_at"], previous_secret_expires_at=r["previous_expires_at"], secret=secret,
    )


@routes.post("/v1/merchant/webhook_endpoints")
@endpoint(roles={STAFF}, body=WebhookEndpointCreate, response=WebhookEndpointOut, status=201, tags=["webhooks"],
          errors=[WebhookUrlForbidden, DnsUnavailable],
          summary="Register an endpoint for order events (https, public addresses only: 422 webhook_url_forbidden "
                  "with a reason); the signing secret is shown once")
async def create_endpoint(request: web.Request) -> web.Response:
    body = await decode_body(request, WebhookEndpointCreate)
    tenant = _tenant_scope(principal(request))
    assert tenant is not None
    row, secret = await request.app[WEBHOOKS].create_endpoint(tenant, body.url, list(body.event_types))
    return json_response(_endpoint_out(row, secret), status=201)


@routes.get("/v1/merchant/webhook_endpoints")
@endpoint(roles={STAFF, OPERATOR}, response=WebhookEndpointList, tags=["webhooks"], summary="List endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    rows = await request.app[WEBHOOKS].list_endpoints(_tenant_scope(principal(request)))
    return json_response(WebhookEndpointList([_endpoint_out(r) for r in rows]))


@routes.post("/v1/merchant/webhook_endpoints/{endpoint_id}/rotate_secret")
@endpoint(roles={STAFF, OPERATOR}, body=RotateSecretRequest, response=WebhookEndpointOut, tags=["webhooks"],
          errors=[404], summary="New signing secret; the old one keeps signing during the overlap")
async def rotate_secret(request: web.Request) -> web.Response:
    tenant = await _own_endpoint(request)
    body = await decode_body(request, RotateSecretRequest)
    row, secret = await request.app[WEBHOOKS].rotate_secret(
        request.match_info["endpoint_id"], tenant, body.overlap_seconds)
    return json_response(_endpoint_out(row, secret))


@routes.post("/v1/merchant/webhook_endpoints/{endpoint_id}/enable")
@endpoint(roles={STAFF, OPERATOR}, response=WebhookEndpointOut, tags=["webhooks"], errors=[404],
          summary="Re-enable an endpoint that was disabled after failures")
async def enable_endpoint(request: web.Request) -> web.Response:
    row = await request.app[WEBHOOKS].enable(request.match_info["endpoint_id"], _tenant_scope(principal(request)))
    return json_response(_endpoint_out(row))


@routes.delete("/v1/merchant/webhook_endpoints/{endpoint_id}")
@endpoint(roles={STAFF, OPERATOR}, status=204, tags=["webhooks"], errors=[404], summary="Delete an endpoint")
async def delete_endpoint(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(request.match_info["endpoint_id"], _tenant_scope(principal(request)))
    return web.Response(status=204)


@routes.get("/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries")
@endpoint(roles={STAFF, OPERATOR}, query=PageQuery, response=WebhookDeliveryPage, tags=["webhooks"], errors=[404],
          summary="The endpoint's delivery log, newest first, with every attempt")
async def endpoint_deliveries(request: web.Request) -> web.Response:
    tenant = await _own_endpoint(request)
    q = decode_query(request, PageQuery)
    rows = await request.app[WEBHOOKS].deliveries(request.match_info["endpoint_id"], tenant, q.cursor, q.limit + 1)
    items = [
        WebhookDeliveryOut(
            id=r["id"], event_id=r["event_id"], event_type=r["event_type"], status=r["status"],
            attempts=msgspec.convert(json.loads(r["attempts"]), list[WebhookAttemptOut], strict=False),
            next_attempt_at=r["next_attempt_at"], created_at=r["created_at"],
        )
        for r in rows[: q.limit]
    ]
    return json_response(WebhookDeliveryPage(items, items[-1].id if len(rows) > q.limit else None))


# ---- the tablet feed ---------------------------------------------------------------------------------

@routes.get("/v1/stores/{store_id}/orders/feed")
@endpoint(roles={STAFF}, websocket=True, tags=TAGS,
          summary="Websocket: a hello with the store's active orders, then one frame per order event")
async def tablet_feed(request: web.Request) -> web.StreamResponse:
    who = principal(request)
    if not who.tenant_id:
        raise Unauthenticated("a restaurant account is required")
    store_id = await _own_store(request)  # another tenant's store: 404, the socket never opens
    feed = request.app[FEED]
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    subscription = TenantFeed(feed.redis, feed.prefix, who.tenant_id)
    await subscription.open()

    page = await request.app[ORDERS].queries.orders(caller_of(who), OrderListQuery(status="active", limit=100),
                                                    store_id)
    # JSON goes in text frames, as on every other socket of ours (browsers hand binary frames over as Blobs).
    await ws.send_str(feed_encoder.encode(FeedHello(store_id=store_id, active_orders=page.items)).decode())

    async def pump() -> None:
        try:
            while True:
                data = await subscription.next()
                if json.loads(data).get("data", {}).get("store_id") != store_id:
                    continue
                # A tablet that cannot take a frame within 5 s is dropped, never waited for.
                await asyncio.wait_for(ws.send_str(data.decode() if isinstance(data, bytes) else data), timeout=5)
        except (TimeoutError, FeedOverflow):
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow: reconnect to catch up")
        except (aioredis.RedisError, OSError):
            # The subscription is gone (it is not healed: see orders.live.TenantFeed), and frames
            # published meanwhile were missed. A silent socket would leave the tablet deaf: it is told
            # to reconnect, and the hello it gets then lists every active order, so it catches up
            # (it keys orders by id).
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"redis_unavailable; reconnect to catch up")

    task = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await subscription.close()
    return ws


def setup(app: web.Application) -> None:
    from orders import merchant_web

    app.add_routes(routes)
    app.add_routes(merchant_web.routes)
