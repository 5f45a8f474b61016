"""Every write route honours Idempotency-Key: a walk over the app's route table sends each one
a valid request twice with the same key and checks that the second is the first response,
byte for byte, marked `Idempotent-Replayed: true`, and that the handler ran once. A write
route the table below does not know fails the walk: a new route must come with its request."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from idempotency_world import CARD, HOOK_URL, LAT, LNG, World, ok, unique

from fooddispatch.app import create_app
from fooddispatch.keys import DB
from kernel.http import Handler, endpoint_spec
from kernel.ids import new_id
from kernel.outbox import encode_event, make_event
from memberships.web import MEMBERSHIPS
from payments import ledger, model
from payments.model import Account, credit, debit

READS = frozenset({"GET", "HEAD", "OPTIONS"})  # every other method writes


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    json: Any = None  # None: no body


Builder = Callable[[World], Awaitable[Call]]
ROUTES: dict[tuple[str, str], tuple[str, Builder]] = {}


def route(method: str, path: str, group: str) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        ROUTES[(method, path)] = (group, build)
        return build
    return register


# ---- auth ------------------------------------------------------------------------------------------------

@route("POST", "/v1/auth/register", "auth")
async def _register(w: World) -> Call:
    return Call("POST", "/v1/auth/register", {},
                {"email": f"{unique('walk')}@example.com", "password": "correct horse battery", "name": "Walk"})


@route("POST", "/v1/auth/login", "auth")
async def _login(w: World) -> Call:
    body = {"email": f"{unique('walk')}@example.com", "password": "correct horse battery"}
    await w.post("/v1/auth/register", {}, body)
    return Call("POST", "/v1/auth/login", {}, body)


@route("POST", "/v1/accounts", "auth")
async def _create_account(w: World) -> Call:
    return Call("POST", "/v1/accounts", await w.operator(), {"role": "courier", "name": "Walk courier"})


@route("POST", "/v1/tenants/{tenant_id}/api_keys", "auth")
async def _create_api_key(w: World) -> Call:
    tenant_id, staff = await w.tenant()
    return Call("POST", f"/v1/tenants/{tenant_id}/api_keys", staff, {"name": "pos"})


@route("DELETE", "/v1/api_keys/{key_id}", "auth")
async def _revoke_api_key(w: World) -> Call:
    tenant_id, staff = await w.tenant()
    created = await w.post(f"/v1/tenants/{tenant_id}/api_keys", staff, {"name": "old pos"})
    return Call("DELETE", f"/v1/api_keys/{created['id']}", staff)


# ---- catalog ---------------------------------------------------------------------------------------------

@route("POST", "/v1/tenants", "catalog")
async def _create_tenant(w: World) -> Call:
    return Call("POST", "/v1/tenants", await w.operator(), {"name": "Walk Pizza"})


@route("POST", "/v1/tenants/{tenant_id}/stores", "catalog")
async def _create_store(w: World) -> Call:
    tenant_id, staff = await w.tenant()
    return Call("POST", f"/v1/tenants/{tenant_id}/stores", staff, {
        "name": "Prenzlauer Berg", "lat": 52.54, "lng": 13.42, "timezone": "Europe/Berlin", "currency": "EUR"})


async def _spare(w: World, method: str, tail: str, body: Any = None) -> Call:
    store_id = await w.spare_store()
    return Call(method, f"/v1/merchant/stores/{store_id}{tail}", (await w.tenant())[1], body)


@route("PATCH", "/v1/merchant/stores/{store_id}", "catalog")
async def _patch_store(w: World) -> Call:
    return await _spare(w, "PATCH", "", {"name": "Mitte (renamed)"})


@route("PUT", "/v1/merchant/stores/{store_id}/hours", "catalog")
async def _set_hours(w: World) -> Call:
    return await _spare(w, "PUT", "/hours", {"periods": [{"weekday": 0, "opens": "10:00", "closes": "22:00"}]})


@route("PUT", "/v1/merchant/stores/{store_id}/zones", "catalog")
async def _set_zones(w: World) -> Call:
    from idempotency_world import SQUARE

    return await _spare(w, "PUT", "/zones", {"zones": [SQUARE], "max_delivery_m": 6000})


@route("POST", "/v1/merchant/stores/{store_id}/pause", "catalog")
async def _pause(w: World) -> Call:
    return await _spare(w, "POST", "/pause", {"reason": "kitchen busy"})


@route("POST", "/v1/merchant/stores/{store_id}/open", "catalog")
async def _open(w: World) -> Call:
    return await _spare(w, "POST", "/open")


@route("POST", "/v1/merchant/stores/{store_id}/close", "catalog")
async def _close(w: World) -> Call:
    return await _spare(w, "POST", "/close")


@route("PUT", "/v1/merchant/stores/{store_id}/special_days/{day}", "catalog")
async def _put_special_day(w: World) -> Call:
    return await _spare(w, "PUT", "/special_days/2031-12-24", {"closed": True, "note": "Christmas Eve"})


@route("DELETE", "/v1/merchant/stores/{store_id}/special_days/{day}", "catalog")
async def _delete_special_day(w: World) -> Call:
    put = await _spare(w, "PUT", "/special_days/2031-12-31", {"closed": True})
    await w.client.put(put.path, json=put.json, headers=put.headers)
    return Call("DELETE", put.path, put.headers)


@route("PUT", "/v1/merchant/stores/{store_id}/menu", "catalog")
async def _put_menu(w: World) -> Call:
    from idempotency_world import MENU

    return await _spare(w, "PUT", "/menu", MENU)


@route("PATCH", "/v1/merchant/stores/{store_id}/items/{item_id}", "catalog")
async def _patch_item(w: World) -> Call:
    return await _spare(w, "PATCH", "/items/itm_fries", {"price": 450})


@route("PUT", "/v1/merchant/stores/{store_id}/stock/{item_id}", "catalog")
async def _set_stock(w: World) -> Call:
    return await _spare(w, "PUT", "/stock/itm_burger", {"count": 40})


# ---- payments --------------------------------------------------------------------------------------------

@route("POST", "/v1/payment_methods", "payments")
async def _create_payment_method(w: World) -> Call:
    _, customer, _ = await w.customer()
    return Call("POST", "/v1/payment_methods", customer, {"card": CARD})


@route("POST", "/v1/payment_methods/{id}/detach", "payments")
async def _detach(w: World) -> Call:
    _, customer, pm = await w.customer()
    return Call("POST", f"/v1/payment_methods/{pm}/detach", customer)


@route("POST", "/v1/payment_methods/{id}/default", "payments")
async def _default(w: World) -> Call:
    _, customer, pm = await w.customer()
    return Call("POST", f"/v1/payment_methods/{pm}/default", customer)


@route("POST", "/v1/payment_intents", "payments")
async def _create_intent(w: World) -> Call:
    _, customer, pm = await w.customer()
    return Call("POST", "/v1/payment_intents", customer,
                {"amount": 1200, "currency": "EUR", "payment_method": pm, "confirm": True})


@route("POST", "/v1/payment_intents/{id}/confirm", "payments")
async def _confirm(w: World) -> Call:
    intent, customer, pm = await w.intent(confirm=False)
    return Call("POST", f"/v1/payment_intents/{intent['id']}/confirm", customer, {"payment_method": pm})


@route("POST", "/v1/payment_intents/{id}/capture", "payments")
async def _capture(w: World) -> Call:
    intent, _, _ = await w.intent()
    return Call("POST", f"/v1/payment_intents/{intent['id']}/capture", await w.operator(), {})


@route("POST", "/v1/payment_intents/{id}/cancel", "payments")
async def _cancel_intent(w: World) -> Call:
    intent, customer, _ = await w.intent()
    return Call("POST", f"/v1/payment_intents/{intent['id']}/cancel", customer,
                {"cancellation_reason": "requested_by_customer"})


@route("POST", "/v1/refunds", "payments")
async def _refund(w: World) -> Call:
    intent, _, _ = await w.intent()
    operator = await w.operator()
    await w.post(f"/v1/payment_intents/{intent['id']}/capture", operator, {}, key=True)
    return Call("POST", "/v1/refunds", operator, {"payment_intent": intent["id"], "amount": 500})


@route("POST", "/v1/customer_credits", "payments")
async def _grant_credit(w: World) -> Call:
    customer_id, _, _ = await w.customer()
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return Call("POST", "/v1/customer_credits", await w.operator(),
                {"customer": customer_id, "amount": 1000, "currency": "EUR", "expires_at": expires})


@route("POST", "/v1/payouts", "payments")
async def _cash_out(w: World) -> Call:
    _, courier = await w.earning_courier()
    return Call("POST", "/v1/payouts", courier, {"amount": 100, "currency": "EUR", "method": "standard"})


@route("POST", "/v1/payout_batches", "payments")
async def _payout_batch(w: World) -> Call:
    await w.earning_courier()  # its delivered order left the restaurant a payable balance
    return Call("POST", "/v1/payout_batches", await w.operator(), {"kind": "restaurant", "currency": "EUR"})


@route("POST", "/v1/payouts/{id}", "payments")
async def _update_payout(w: World) -> Call:
    _, courier = await w.earning_courier()
    payout = await w.post("/v1/payouts", courier, {"amount": 50, "currency": "EUR", "method": "instant"}, key=True)
    return Call("POST", f"/v1/payouts/{payout['id']}", await w.operator(),
                {"status": "failed", "failure_reason": "account closed"})


@route("POST", "/v1/reconciliation/runs", "payments")
async def _reconcile(w: World) -> Call:
    return Call("POST", "/v1/reconciliation/runs", await w.operator(), {"day": date.today().isoformat()})


@route("POST", "/v1/webhook_endpoints", "payments")
async def _payments_webhook(w: World) -> Call:
    return Call("POST", "/v1/webhook_endpoints", await w.operator(), {"url": HOOK_URL, "enabled_events": ["*"]})


@route("POST", "/v1/exchange_rates", "payments")
async def _load_rate(w: World) -> Call:
    return Call("POST", "/v1/exchange_rates", await w.operator(),
                {"base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "walk", "as_of": "2026-01-05T16:00:00Z"})


@route("POST", "/v1/conversion_quotes", "payments")
async def _conversion_quote(w: World) -> Call:
    await w.post("/v1/exchange_rates", await w.operator(), {
        "base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "walk",
        "as_of": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}, key=True)
    _, customer, _ = await w.customer()
    return Call("POST", "/v1/conversion_quotes", customer, {"from_currency": "EUR", "to_currency": "GBP",
                                                             "to_amount": 1000})


@route("POST", "/v1/conversions", "payments")
async def _conversion(w: World) -> Call:
    """A restaurant balance in EUR (the platform's cash paid it), converted to GBP at the latest rate."""
    await w.post("/v1/exchange_rates", await w.operator(), {
        "base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "walk",
        "as_of": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()}, key=True)
    tenant = new_id("ten")
    async with w.client.app[DB].acquire() as conn:
        await ledger.post(conn, model.entry("adjustment", "EUR", [
            debit(Account("platform_cash", "EUR"), 5000), credit(Account("restaurant_payable", "EUR", tenant), 5000)],
            actor="walk", reason="walk", reference="walk", idempotency_key=new_id("k")))
    return Call("POST", "/v1/conversions", await w.operator(), {
        "kind": "restaurant_payable", "owner": tenant, "from_currency": "EUR", "to_currency": "GBP", "amount": 1000})


# ---- tracking --------------------------------------------------------------------------------------------

@route("POST", "/v1/couriers/{courier_id}/offline", "tracking")
async def _take_offline(w: World) -> Call:
    courier_id = await w.online_courier()
    return Call("POST", f"/v1/couriers/{courier_id}/offline", await w.operator())


# ---- apps: tracking links and tracker devices ------------------------------------------------------------

async def _device_key(w: World) -> dict:
    courier_id, _ = await w.courier()
    return await w.post(f"/v1/couriers/{courier_id}/device_keys", await w.operator(), {"name": "phone"}, key=True)


@route("POST", "/v1/couriers/{courier_id}/device_keys", "apps")
async def _issue_device_key(w: World) -> Call:
    courier_id, _ = await w.courier()
    return Call("POST", f"/v1/couriers/{courier_id}/device_keys", await w.operator(), {"name": "Ada's phone"})


@route("DELETE", "/v1/device_keys/{id}", "apps")
async def _revoke_device_key(w: World) -> Call:
    return Call("DELETE", f"/v1/device_keys/{(await _device_key(w))['id']}", await w.operator())


@route("POST", "/osmand", "apps")
async def _osmand_fix(w: World) -> Call:
    key = (await _device_key(w))["key"]
    return Call("POST", "/osmand", {}, {"device_id": key, "location": {
        "timestamp": datetime.now(UTC).isoformat(), "coords": {"latitude": LAT, "longitude": LNG}}})


@route("POST", "/v1/orders/{order_id}/tracking_links", "apps")
async def _issue_tracking_link(w: World) -> Call:
    order = await w.order("placed")
    return Call("POST", f"/v1/orders/{order.id}/tracking_links", order.customer)


@route("DELETE", "/v1/orders/{order_id}/tracking_links/{link_id}", "apps")
async def _revoke_tracking_link(w: World) -> Call:
    order = await w.order("placed")
    link = await w.post(f"/v1/orders/{order.id}/tracking_links", order.customer, key=True)
    return Call("DELETE", f"/v1/orders/{order.id}/tracking_links/{link['id']}", order.customer)


# ---- ops --------------------------------------------------------------------------------------------------

@route("POST", "/v1/ops/dead_letters/{dead_letter_id}/replay", "ops")
async def _replay_dead_letter(w: World) -> Call:
    # A parked dead letter, as a consumer leaves one after its last failed attempt.
    event = make_event("order.placed", {"order_id": new_id("ord")}, None)
    async with w.client.app[DB].acquire() as conn:
        dead_letter_id = await conn.fetchval(
            "INSERT INTO dead_letters (id, group_name, event_id, event_type, payload, error, attempts, parked_at) "
            "VALUES ($1, 'orders', $2, $3, $4, 'KeyError: courier_id', 5, now()) RETURNING id",
            new_id("dlq"), event.id, event.type, encode_event(event).decode())
    return Call("POST", f"/v1/ops/dead_letters/{dead_letter_id}/replay", await w.operator())


# ---- orders ----------------------------------------------------------------------------------------------

@route("POST", "/v1/quotes", "orders")
async def _quote(w: World) -> Call:
    _, customer, _ = await w.customer()
    return Call("POST", "/v1/quotes", customer, w.cart(await w.store()))


@route("POST", "/v1/orders", "orders")
async def _checkout(w: World) -> Call:
    _, customer, pm = await w.customer()
    quote = await w.quote(customer)
    return Call("POST", "/v1/orders", customer, {"quote_id": quote["id"], "payment_method_id": pm})


async def _staff_step(w: World, state: str, step: str, body: Any = None) -> Call:
    order = await w.order(state)
    return Call("POST", f"/v1/orders/{order.id}/{step}", (await w.tenant())[1], body)


@route("POST", "/v1/orders/{order_id}/cancel", "orders")
async def _cancel(w: World) -> Call:
    order = await w.order("placed")
    return Call("POST", f"/v1/orders/{order.id}/cancel", order.customer, {"reason": "changed my mind"})


@route("POST", "/v1/orders/{order_id}/tip", "orders")
async def _tip(w: World) -> Call:
    order = await w.order("placed")
    return Call("POST", f"/v1/orders/{order.id}/tip", order.customer, {"tip": 500})


@route("POST", "/v1/orders/{order_id}/rating", "orders")
async def _rate(w: World) -> Call:
    order = await w.order("delivered")
    return Call("POST", f"/v1/orders/{order.id}/rating", order.customer, {"stars": 5, "comment": "warm"})


@route("POST", "/v1/orders/{order_id}/accept", "orders")
async def _accept(w: World) -> Call:
    return await _staff_step(w, "placed", "accept", {"prep_time_s": 900})


@route("POST", "/v1/orders/{order_id}/reject", "orders")
async def _reject(w: World) -> Call:
    return await _staff_step(w, "placed", "reject", {"reason": "capacity"})


@route("POST", "/v1/orders/{order_id}/preparing", "orders")
async def _preparing(w: World) -> Call:
    return await _staff_step(w, "accepted", "preparing")


@route("POST", "/v1/orders/{order_id}/ready", "orders")
async def _ready(w: World) -> Call:
    return await _staff_step(w, "preparing", "ready")


@route("POST", "/v1/orders/{order_id}/prep_time", "orders")
async def _prep_time(w: World) -> Call:
    return await _staff_step(w, "accepted", "prep_time", {"prep_time_s": 1200})


@route("POST", "/v1/orders/{order_id}/missing_items", "orders")
async def _missing_items(w: World) -> Call:
    return await _staff_step(w, "accepted", "missing_items", {"lines": [{"line_no": 1, "quantity": 1}]})


@route("POST", "/v1/merchant/orders/{order_id}/refunds", "orders")
async def _merchant_refund(w: World) -> Call:
    order = await w.order("delivered")
    return Call("POST", f"/v1/merchant/orders/{order.id}/refunds", (await w.tenant())[1],
                {"amount": 100, "reason": "quality"})


@route("PUT", "/v1/merchant/payout_schedule", "payments")
async def _payout_schedule(w: World) -> Call:
    return Call("PUT", "/v1/merchant/payout_schedule", (await w.tenant())[1],
                {"every": "weekly", "weekday": 4, "currency": "EUR", "minimum_amount": 5000})


@route("POST", "/v1/orders/{order_id}/pickup", "orders")
async def _pickup(w: World) -> Call:
    order = await w.order("assigned")
    assert order.courier is not None
    return Call("POST", f"/v1/orders/{order.id}/pickup", order.courier[1], {})


@route("POST", "/v1/orders/{order_id}/deliver", "orders")
async def _deliver(w: World) -> Call:
    order = await w.order("picked_up")
    assert order.courier is not None
    return Call("POST", f"/v1/orders/{order.id}/deliver", order.courier[1], {"proof": {"code": "0000"}})


@route("POST", "/v1/orders/{order_id}/courier", "orders")
async def _assign(w: World) -> Call:
    order = await w.order("accepted")
    courier_id, _ = await w.courier()
    return Call("POST", f"/v1/orders/{order.id}/courier", await w.operator(), {"courier_id": courier_id})


@route("POST", "/v1/promos", "orders")
async def _promo(w: World) -> Call:
    _, staff = await w.tenant()
    return Call("POST", "/v1/promos", staff,
                {"code": "WALK10", "kind": "percent", "percent_bps": 1000, "store_id": await w.store()})


async def _merchant_endpoint(w: World) -> tuple[str, dict[str, str]]:
    _, staff = await w.tenant()
    created = await w.post("/v1/merchant/webhook_endpoints", staff, {"url": HOOK_URL, "event_types": ["order.placed"]})
    return f"/v1/merchant/webhook_endpoints/{created['id']}", staff


@route("POST", "/v1/merchant/webhook_endpoints", "orders")
async def _create_merchant_endpoint(w: World) -> Call:
    _, staff = await w.tenant()
    return Call("POST", "/v1/merchant/webhook_endpoints", staff, {"url": HOOK_URL, "event_types": ["order.ready"]})


@route("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/rotate_secret", "orders")
async def _rotate_secret(w: World) -> Call:
    url, staff = await _merchant_endpoint(w)
    return Call("POST", f"{url}/rotate_secret", staff, {"overlap_seconds": 600})


@route("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/enable", "orders")
async def _enable_endpoint(w: World) -> Call:
    url, staff = await _merchant_endpoint(w)
    return Call("POST", f"{url}/enable", staff)


@route("DELETE", "/v1/merchant/webhook_endpoints/{endpoint_id}", "orders")
async def _delete_endpoint(w: World) -> Call:
    url, staff = await _merchant_endpoint(w)
    return Call("DELETE", url, staff)


@route("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries", "orders")
async def _redeliver(w: World) -> Call:
    url, staff = await _merchant_endpoint(w)
    await w.order("placed")
    deadline = asyncio.get_running_loop().time() + 30
    while not (events := (await ok(await w.client.get("/v1/events", headers=staff)))["items"]):
        assert asyncio.get_running_loop().time() < deadline, "the order's event was not recorded"
        await asyncio.sleep(0.05)
    return Call("POST", f"{url}/deliveries", staff, {"event_id": events[0]["id"]})


# ---- memberships -----------------------------------------------------------------------------------------

MEMBERSHIP_PLAN = {"name": "Walk Plus", "region": "default", "amount": 499, "currency": "EUR", "interval": "month"}


async def _subscribed(w: World) -> tuple[dict, dict[str, str]]:
    """(a new customer's subscription, the customer's headers)."""
    plan = await w.post("/v1/plans", await w.operator(), MEMBERSHIP_PLAN, key=True)
    _, customer, pm = await w.customer()
    sub = await w.post("/v1/subscriptions", customer, {"plan": plan["id"], "payment_method": pm}, key=True)
    return sub, customer


@route("POST", "/v1/plans", "memberships")
async def _create_plan(w: World) -> Call:
    return Call("POST", "/v1/plans", await w.operator(), MEMBERSHIP_PLAN)


@route("POST", "/v1/plans/{id}", "memberships")
async def _update_plan(w: World) -> Call:
    plan = await w.post("/v1/plans", await w.operator(), MEMBERSHIP_PLAN, key=True)
    return Call("POST", f"/v1/plans/{plan['id']}", await w.operator(), {"active": False})


@route("POST", "/v1/subscriptions", "memberships")
async def _subscribe(w: World) -> Call:
    plan = await w.post("/v1/plans", await w.operator(), MEMBERSHIP_PLAN, key=True)
    _, customer, pm = await w.customer()
    return Call("POST", "/v1/subscriptions", customer, {"plan": plan["id"], "payment_method": pm})


@route("POST", "/v1/subscriptions/{id}", "memberships")
async def _update_subscription(w: World) -> Call:
    sub, customer = await _subscribed(w)
    return Call("POST", f"/v1/subscriptions/{sub['id']}", customer, {"cancel_at_period_end": True})


@route("POST", "/v1/subscriptions/{id}/cancel", "memberships")
async def _cancel_subscription(w: World) -> Call:
    sub, customer = await _subscribed(w)
    return Call("POST", f"/v1/subscriptions/{sub['id']}/cancel", customer, {"refund": True})


@route("DELETE", "/v1/subscriptions/{id}", "memberships")
async def _delete_subscription(w: World) -> Call:
    sub, customer = await _subscribed(w)
    return Call("DELETE", f"/v1/subscriptions/{sub['id']}", customer)


@route("POST", "/v1/invoices/{id}/pay", "memberships")
async def _pay_invoice(w: World) -> Call:
    """An invoice left open by a declined renewal (the card changed to one that declines), paid with a good card."""
    sub, customer = await _subscribed(w)
    declining = await w.post("/v1/payment_methods", customer, {"card": {**CARD, "number": "4000000000000002"}},
                             key=True)
    good = await w.post("/v1/payment_methods", customer, {"card": CARD}, key=True)
    await w.post(f"/v1/subscriptions/{sub['id']}", customer, {"payment_method": declining["id"]}, key=True)
    async with w.client.app[DB].acquire() as conn:  # the renewal falls due now
        await conn.execute("UPDATE membership_subscriptions SET next_action_at = now() - interval '1 second' "
                           "WHERE id = $1", sub["id"])
    await w.client.app[MEMBERSHIPS].run_due()
    open_invoice = (await ok(await w.client.get(f"/v1/subscriptions/{sub['id']}", headers=customer)))["latest_invoice"]
    assert open_invoice is not None
    return Call("POST", f"/v1/invoices/{open_invoice}/pay", customer, {"payment_method": good["id"]})


# ---- privacy ---------------------------------------------------------------------------------------------

@route("POST", "/v1/privacy/erasure", "privacy")
async def _erase(w: World) -> Call:
    # By an operator: a person erasing themselves loses their token with the first answer, so their
    # retry is 401 (token_revoked), which tells them it was done (docs/PRIVACY.md).
    customer_id, _, _ = await w.customer()
    return Call("POST", "/v1/privacy/erasure", await w.operator(), {"account_id": customer_id, "reason": "walk"})


# ---- the walk --------------------------------------------------------------------------------------------

def write_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every HTTP write route: the methods the idempotency middleware does not pass through."""
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.method not in READS and r.resource is not None}


@pytest.fixture
def handler_runs() -> Counter[tuple[str, str]]:
    return Counter()


@pytest.fixture
def app(settings, handler_runs):
    """The whole app, with one more middleware innermost: it counts the handler's own runs."""
    app = create_app(settings)

    @web.middleware
    async def count_runs(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if resource is not None:
            handler_runs[(request.method, resource.canonical)] += 1
        return await handler(request)

    app.middlewares.append(count_runs)
    return app


def test_every_write_route_of_the_app_has_a_request_in_the_walk(settings) -> None:
    routes = write_routes(create_app(settings))
    assert len(routes) >= 50
    assert sorted(routes - ROUTES.keys()) == [], "write routes the idempotency walk does not know: add a builder"
    assert sorted(ROUTES.keys() - routes) == [], "builders for routes the app no longer has"


async def test_openapi_declares_the_key_on_every_write_and_requires_it_where_the_route_does(client, app) -> None:
    spec = await (await client.get("/openapi.json")).json()
    required = {(r.method, r.resource.canonical): bool(getattr(endpoint_spec(r.handler), "idempotent", False))
                for r in app.router.routes() if r.resource is not None}
    writes = write_routes(app)
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            headers = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
            if (method.upper(), path) not in writes:
                assert headers == [], (method, path)
                continue
            assert len(headers) == 1, (method, path)
            assert headers[0]["required"] is required[(method.upper(), path)], (method, path)
            assert "409" in op["responses"], (method, path)
    assert any(required.values()) and not all(required[w] for w in writes)


@pytest.mark.parametrize("group", sorted({group for group, _ in ROUTES.values()}))
async def test_every_write_route_replays_the_first_response_for_the_same_key(
        group, client, app, make_principal, handler_runs) -> None:
    world = World(client, make_principal)
    failures: list[str] = []
    for (method, path), (in_group, build) in ROUTES.items():
        if in_group != group:
            continue
        if (method, path) not in write_routes(app):
            failures.append(f"{method} {path}: not a route of the app")
            continue
        call = await build(world)
        assert call.method == method
        headers = {**call.headers, "Idempotency-Key": unique("walk-")}
        before = handler_runs[(method, path)]
        first = await client.request(method, call.path, json=call.json, headers=headers)
        first_body = await first.read()
        second = await client.request(method, call.path, json=call.json, headers=headers)
        second_body = await second.read()
        runs = handler_runs[(method, path)] - before
        if not 200 <= first.status < 300:
            failures.append(f"{method} {path}: the walk's request is not valid: {first.status} {first_body[:300]!r}")
        elif (second.status, second_body) != (first.status, first_body):
            failures.append(f"{method} {path}: second answer differs: {second.status} {second_body[:200]!r}")
        elif second.headers.get("Idempotent-Replayed") != "true" or "Idempotent-Replayed" in first.headers:
            failures.append(f"{method} {path}: replay not marked (first {dict(first.headers)}, "
                            f"second {dict(second.headers)})")
        elif second.headers.get("Content-Type") != first.headers.get("Content-Type"):
            failures.append(f"{method} {path}: content type {second.headers.get('Content-Type')!r} on replay, "
                            f"{first.headers.get('Content-Type')!r} first")
        elif runs != 1:
            failures.append(f"{method} {path}: the handler ran {runs} times for two requests with one key")
    assert not failures, "\n".join(failures)
