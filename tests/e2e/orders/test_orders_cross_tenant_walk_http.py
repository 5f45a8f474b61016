"""Tenant B's staff against tenant A's resources, on every route staff may call outside the
catalog (the catalog's merchant routes have their own walk in test_catalog_merchant_http.py),
walked from the whole app's route table: a new staff route without a row here fails the test.

Each row says what B gets:
- HIDDEN: 404, the same answer as for a resource that does not exist; where the path names a
  store, tenant or webhook endpoint, also for a body or query that would fail validation (the
  owner is checked before anything else is read).
- OWN: the route acts on B's own things only (B's account, B's tenant's webhook endpoints and events): no
  path or body names another tenant's resource.
- SHARED: visible to every tenant by design: a region's surge level is the same market signal
  for all restaurants in it, not a tenant's data.
After the walk, A's order, webhook endpoint, API key and promos are as they were."""

from __future__ import annotations

import itertools
import re

import pytest
from aiohttp import WSServerHandshakeError
from orders_helpers import eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.http import STAFF, endpoint_spec

HIDDEN, OWN, SHARED = "hidden", "own", "shared"
GOOD = object()  # a body that is valid for the route

# (method, path) -> (what B gets, a valid body or None, whether bad requests are walked too).
ROUTES: dict[tuple[str, str], tuple[str, object, bool]] = {
    ("GET", "/v1/me"): (OWN, None, False),
    ("POST", "/v1/tenants/{tenant_id}/api_keys"): (HIDDEN, {"name": "squatter"}, True),
    ("DELETE", "/v1/api_keys/{key_id}"): (HIDDEN, None, False),
    ("GET", "/v1/payment_intents/{id}"): (HIDDEN, None, False),
    ("GET", "/v1/orders/{order_id}/track"): (HIDDEN, None, False),
    ("GET", "/v1/orders/{order_id}"): (HIDDEN, None, False),
    ("POST", "/v1/orders/{order_id}/cancel"): (HIDDEN, {}, True),
    ("POST", "/v1/orders/{order_id}/accept"): (HIDDEN, {"prep_time_s": 900}, True),
    ("POST", "/v1/orders/{order_id}/reject"): (HIDDEN, {"reason": "too_busy"}, True),
    ("POST", "/v1/orders/{order_id}/preparing"): (HIDDEN, None, False),
    ("POST", "/v1/orders/{order_id}/ready"): (HIDDEN, None, False),
    ("POST", "/v1/orders/{order_id}/prep_time"): (HIDDEN, {"prep_time_s": 900}, True),
    ("POST", "/v1/orders/{order_id}/missing_items"): (HIDDEN, {"lines": [{"line_no": 1, "quantity": 1}]}, True),
    ("GET", "/v1/stores/{store_id}/orders"): (HIDDEN, None, True),
    ("GET", "/v1/stores/{store_id}/orders/feed"): (HIDDEN, None, False),
    # The store is named in the body: a good body naming A's store is 404.
    ("POST", "/v1/promos"): (HIDDEN, {"code": "SQUAT", "kind": "fixed", "amount": 500, "currency": "EUR",
                                      "store_id": "{store_id}"}, False),
    ("POST", "/v1/merchant/webhook_endpoints"): (OWN, None, False),
    ("GET", "/v1/merchant/webhook_endpoints"): (OWN, None, False),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/rotate_secret"): (HIDDEN, {"overlap_seconds": 0}, True),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/enable"): (HIDDEN, None, False),
    ("DELETE", "/v1/merchant/webhook_endpoints/{endpoint_id}"): (HIDDEN, None, False),
    ("GET", "/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries"): (HIDDEN, None, True),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries"): (HIDDEN, {"event_id": "{event_id}"}, True),
    ("GET", "/v1/events"): (OWN, None, False),
    ("GET", "/v1/events/{event_id}"): (HIDDEN, None, False),
    ("GET", "/v1/dispatch/regions/{region}/surge"): (SHARED, None, False),
    ("GET", "/v1/merchant/balance"): (OWN, None, False),
    ("GET", "/v1/merchant/statements"): (OWN, None, False),
    ("POST", "/v1/merchant/orders/{order_id}/refunds"): (HIDDEN, {"amount": 100, "reason": "quality"}, True),
    ("GET", "/v1/merchant/payout_schedule"): (OWN, None, False),
    ("PUT", "/v1/merchant/payout_schedule"): (OWN, None, False),
    ("GET", "/v1/merchant/payouts"): (OWN, None, False),
}
# Routes that require an Idempotency-Key (a money move): the walk sends a fresh one.
KEYED = {("POST", "/v1/merchant/orders/{order_id}/refunds")}
KEYS = itertools.count(1)
# Every 404 has one code, Stripe's `resource_missing` (issue #20).
NOT_FOUND = {"resource_missing"}
WEBSOCKETS = {"/v1/orders/{order_id}/track", "/v1/stores/{store_id}/orders/feed"}
BAD_REQUESTS: list[dict] = [
    {"json": {"overlap_seconds": -1, "name": 7, "unknown": True}},
    {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
    {},
    {"params": {"limit": "-5", "status": "nonsense"}},
]


def staff_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        spec = endpoint_spec(route.handler)
        if route.method == "HEAD" or spec is None or not spec.roles or STAFF not in spec.roles:
            continue
        if getattr(route.handler, "__module__", "") == "catalog.web":
            continue
        found.add((route.method, route.resource.canonical))
    return found


def fill(value: object, values: dict[str, str]) -> object:
    if isinstance(value, str):
        return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], value)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


async def _first_event(client, headers: dict) -> dict | None:
    items = (await ok(await client.get("/v1/events", headers=headers)))["items"]
    return items[0] if items else None


@pytest.fixture
async def world(aiohttp_client, settings, db, make_principal):
    app = create_app(settings)  # every component: the walk covers every package's staff routes
    client = await aiohttp_client(app)
    a = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, a.store_id)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=a.staff, json={
        "url": "https://hooks.a.example/orders", "event_types": ["order.refunded"]}), 201)
    key = await ok(await client.post(f"/v1/tenants/{a.tenant_id}/api_keys", json={"name": "pos"}, headers=a.staff),
                   201)
    b = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=a.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=b["id"])
    async with db.acquire() as conn:
        intent = await conn.fetchval("SELECT intent_id FROM orders WHERE id = $1", order["id"])
    event = await eventually(lambda: _first_event(client, a.staff), within=30)
    values = {"tenant_id": a.tenant_id, "store_id": a.store_id, "order_id": order["id"], "endpoint_id": endpoint["id"],
              "key_id": key["id"], "id": intent, "region": "demo", "event_id": event["id"]}
    return app, client, a, cust, order, endpoint, key, staff_b, values


async def test_another_tenants_staff_finds_none_of_a_tenants_resources(world, db) -> None:
    app, client, a, cust, order, endpoint, key, staff_b, values = world
    assert staff_routes(app) == set(ROUTES), "a staff route without a row in ROUTES: add it, with what B gets"
    before = await ok(await client.get(f"/v1/orders/{order['id']}", headers=cust))
    for (method, template), (kind, body, walk_bad) in ROUTES.items():
        path = str(fill(template, values))
        if template in WEBSOCKETS:
            with pytest.raises(WSServerHandshakeError) as refused:
                await client.ws_connect(path, headers=staff_b)
            assert refused.value.status == 404, template
            continue
        requests = [{"json": fill(body, values)} if body is not None else {}]
        if walk_bad:
            requests += BAD_REQUESTS
        for request in requests:
            keyed = {"Idempotency-Key": f"walk-{next(KEYS)}"} if (method, template) in KEYED else {}
            resp = await client.request(method, path, **{**request, "headers": {**staff_b, **keyed,
                                                                                **request.get("headers", {})}})
            text = await resp.text()
            if kind == HIDDEN:
                assert resp.status == 404, (method, template, request, resp.status, text)
                assert (await resp.json())["error"]["code"] in NOT_FOUND, (method, template, text)
            elif kind == SHARED:
                assert resp.status == 200, (method, template, resp.status, text)
    # OWN: B's list of endpoints does not show A's
    listed = await ok(await client.get("/v1/merchant/webhook_endpoints", headers=staff_b))
    assert listed["items"] == []
    assert (await ok(await client.get("/v1/events", headers=staff_b)))["items"] == []  # nor A's events
    # and nothing of A's changed
    after = await ok(await client.get(f"/v1/orders/{order['id']}", headers=cust))
    assert (after["status"], after["history"], after["prep_time_s"], after["refunded"]) == (
        before["status"], before["history"], before["prep_time_s"], before["refunded"])
    mine = await ok(await client.get("/v1/merchant/webhook_endpoints", headers=a.staff))
    assert [(e["id"], e["enabled"], e["previous_secret_expires_at"]) for e in mine["items"]] == [
        (endpoint["id"], True, None)]
    assert (await client.get("/v1/me", headers={"X-Api-Key": key["key"]})).status == 200  # not revoked
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM promos") == 0
        assert await conn.fetchval("SELECT count(*) FROM api_keys") == 1
        assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries WHERE manual") == 0
