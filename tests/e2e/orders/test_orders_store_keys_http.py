"""Store-scoped API keys (a restaurant tablet's): a key made for store A of a tenant runs A's orders,
feed and catalog routes, and finds nothing of store B of the same tenant: the same 404 `resource_missing` as
another tenant's (or no) store. It manages nothing of the tenant's (its keys, webhook endpoints,
stores: 403 `forbidden`). Tenant-wide keys and staff act for every store of the tenant, as before.

The walk goes over the whole app's staff route table: a new staff route without a row here fails."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp import WSServerHandshakeError
from orders_helpers import LAT, LNG, SQUARE, eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.http import STAFF, endpoint_spec

HIDDEN, FORBIDDEN, OWN, SHARED = "hidden", "forbidden", "own", "shared"
B_MENU = {"categories": [{"name": "Mains", "id": "cat_b", "items": [{"id": "itm_b_wrap", "name": "Wrap",
                                                                     "price": 900}]}]}
ROUTES: dict[tuple[str, str], tuple[str, object]] = {
    ("GET", "/v1/me"): (OWN, None),
    ("POST", "/v1/tenants/{tenant_id}/api_keys"): (FORBIDDEN, {"name": "another"}),
    ("DELETE", "/v1/api_keys/{key_id}"): (FORBIDDEN, None),
    ("GET", "/v1/tenants/{tenant_id}"): (OWN, None),
    ("POST", "/v1/tenants/{tenant_id}/stores"): (FORBIDDEN, {"name": "squat"}),  # refused before the body
    ("GET", "/v1/tenants/{tenant_id}/stores"): (OWN, None),
    ("GET", "/v1/merchant/stores/{store_id}"): (HIDDEN, None),
    ("PATCH", "/v1/merchant/stores/{store_id}"): (HIDDEN, {"name": "mine now"}),
    ("PUT", "/v1/merchant/stores/{store_id}/hours"): (HIDDEN, {"periods": []}),
    ("PUT", "/v1/merchant/stores/{store_id}/zones"): (HIDDEN, {"zones": [SQUARE]}),
    ("POST", "/v1/merchant/stores/{store_id}/pause"): (HIDDEN, {"until": "2030-01-01T00:00:00Z"}),
    ("POST", "/v1/merchant/stores/{store_id}/open"): (HIDDEN, None),
    ("POST", "/v1/merchant/stores/{store_id}/close"): (HIDDEN, None),
    ("GET", "/v1/merchant/stores/{store_id}/special_days"): (HIDDEN, None),
    ("PUT", "/v1/merchant/stores/{store_id}/special_days/{day}"): (HIDDEN, {"closed": True}),
    ("DELETE", "/v1/merchant/stores/{store_id}/special_days/{day}"): (HIDDEN, None),
    ("PUT", "/v1/merchant/stores/{store_id}/menu"): (HIDDEN, B_MENU),
    ("GET", "/v1/merchant/stores/{store_id}/menu"): (HIDDEN, None),
    ("PATCH", "/v1/merchant/stores/{store_id}/items/{item_id}"): (HIDDEN, {"availability": "sold_out"}),
    ("GET", "/v1/merchant/stores/{store_id}/stock"): (HIDDEN, None),
    ("PUT", "/v1/merchant/stores/{store_id}/stock/{item_id}"): (HIDDEN, {"count": 0}),
    ("GET", "/v1/merchant/stores/{store_id}/audit"): (HIDDEN, None),
    ("GET", "/v1/payment_intents/{id}"): (HIDDEN, None),
    ("GET", "/v1/orders/{order_id}/track"): (HIDDEN, None),
    ("GET", "/v1/orders/{order_id}"): (HIDDEN, None),
    ("POST", "/v1/orders/{order_id}/cancel"): (HIDDEN, {}),
    ("GET", "/v1/stores/{store_id}/orders"): (HIDDEN, None),
    ("POST", "/v1/orders/{order_id}/accept"): (HIDDEN, {"prep_time_s": 900}),
    ("POST", "/v1/orders/{order_id}/reject"): (HIDDEN, {"reason": "too_busy"}),
    ("POST", "/v1/orders/{order_id}/preparing"): (HIDDEN, None),
    ("POST", "/v1/orders/{order_id}/ready"): (HIDDEN, None),
    ("POST", "/v1/orders/{order_id}/prep_time"): (HIDDEN, {"prep_time_s": 900}),
    ("POST", "/v1/orders/{order_id}/missing_items"): (HIDDEN, {"lines": [{"line_no": 1, "quantity": 1}]}),
    ("POST", "/v1/promos"): (HIDDEN, {"code": "SQUAT", "kind": "fixed", "amount": 500, "currency": "EUR",
                                      "store_id": "{store_id}"}),
    ("POST", "/v1/merchant/webhook_endpoints"): (FORBIDDEN, {"url": "https://hooks.example/o",
                                                             "event_types": ["order.refunded"]}),
    ("GET", "/v1/merchant/webhook_endpoints"): (FORBIDDEN, None),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/rotate_secret"): (FORBIDDEN, {"overlap_seconds": 0}),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/enable"): (FORBIDDEN, None),
    ("DELETE", "/v1/merchant/webhook_endpoints/{endpoint_id}"): (FORBIDDEN, None),
    ("GET", "/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries"): (FORBIDDEN, None),
    ("POST", "/v1/merchant/webhook_endpoints/{endpoint_id}/deliveries"): (FORBIDDEN, {"event_id": "{event_id}"}),
    ("GET", "/v1/events"): (FORBIDDEN, None),  # the tenant's events, every store's: not a tablet's
    ("GET", "/v1/events/{event_id}"): (FORBIDDEN, None),
    ("GET", "/v1/stores/{store_id}/orders/feed"): (HIDDEN, None),
    ("GET", "/v1/dispatch/regions/{region}/surge"): (SHARED, None),
    ("GET", "/v1/merchant/balance"): (FORBIDDEN, None),
    ("GET", "/v1/merchant/statements"): (FORBIDDEN, None),
    ("POST", "/v1/merchant/orders/{order_id}/refunds"): (HIDDEN, {"amount": 100, "reason": "quality"}),
    ("GET", "/v1/merchant/payout_schedule"): (FORBIDDEN, None),
    ("PUT", "/v1/merchant/payout_schedule"): (FORBIDDEN, {"every": "daily", "currency": "EUR"}),
    ("GET", "/v1/merchant/payouts"): (FORBIDDEN, None),
}
WEBSOCKETS = {"/v1/orders/{order_id}/track", "/v1/stores/{store_id}/orders/feed"}
KEYED = {("POST", "/v1/merchant/orders/{order_id}/refunds")}  # require an Idempotency-Key (a money move)


def staff_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        spec = endpoint_spec(route.handler)
        if route.method != "HEAD" and spec is not None and spec.roles and STAFF in spec.roles:
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


async def second_store(client, shop) -> str:
    """Store B of the shop's tenant, open, delivering, with a menu of its own."""
    store = await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/stores", headers=shop.staff, json={
        "name": "Kreuzberg", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR",
        "tax_rate_bps": 700, "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=shop.staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=shop.staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=shop.staff, json=B_MENU))
    return sid


async def new_key(client, shop, headers: dict, **body) -> dict:
    return await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", headers=headers,
                                      json={"name": "tablet", **body}), 201)


@pytest.fixture
async def tenant(aiohttp_client, settings, db, make_principal):
    """One tenant with stores A and B, an order placed at each, and a key scoped to A."""
    app = create_app(settings)  # every component: the walk covers every package's staff routes
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    store_b = await second_store(client, shop)
    _, cust, pm = await make_customer(client, make_principal)
    order_a = await place(client, cust, pm, shop.store_id, key="a")
    order_b = await place(client, cust, pm, store_b, key="b", lines=[{"item_id": "itm_b_wrap", "quantity": 1}])
    key_a = await new_key(client, shop, shop.staff, store_id=shop.store_id)
    return app, client, shop, store_b, order_a, order_b, key_a


async def test_a_store_key_runs_its_own_store(tenant, capsys) -> None:
    _, client, shop, _, order_a, _, key_a = tenant
    assert key_a["store_id"] == shop.store_id and key_a["key"].startswith("fdk_")
    tablet = {"X-Api-Key": key_a["key"]}
    stores = await ok(await client.get(f"/v1/tenants/{shop.tenant_id}/stores", headers=tablet))
    assert [s["id"] for s in stores["items"]] == [shop.store_id]
    listed = await ok(await client.get(f"/v1/stores/{shop.store_id}/orders", headers=tablet))
    assert [o["id"] for o in listed["items"]] == [order_a["id"]]
    # The tablet page's socket: browsers set no headers there, so the key rides as ?access_token=.
    async with client.ws_connect(f"/v1/stores/{shop.store_id}/orders/feed",
                                 params={"access_token": key_a["key"]}) as ws:
        hello = json.loads(await ws.receive_str(timeout=10))
        assert hello["type"] == "hello" and [o["id"] for o in hello["active_orders"]] == [order_a["id"]]
    accepted = await ok(await client.post(f"/v1/orders/{order_a['id']}/accept", headers=tablet,
                                          json={"prep_time_s": 600}))
    assert accepted["status"] == "accepted"
    store = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}", headers=tablet))
    assert store["id"] == shop.store_id
    await ok(await client.post(f"/v1/merchant/stores/{shop.store_id}/pause", headers=tablet,
                               json={"until": "2099-01-01T00:00:00Z"}))
    logged = "".join(capsys.readouterr())
    assert "/orders/feed" in logged and key_a["id"] in logged  # the request log, with the key's id
    assert key_a["key"].split("_", 2)[2] not in logged  # and never its secret


async def test_a_store_key_finds_nothing_of_another_store_of_its_tenant(tenant, db) -> None:
    app, client, shop, store_b, _, order_b, key_a = tenant
    assert staff_routes(app) == set(ROUTES), "a staff route without a row in ROUTES: add it, with what A's key gets"
    tenant_key = await new_key(client, shop, shop.staff)
    endpoint = await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": "https://hooks.a.example/orders", "event_types": ["order.refunded"]}), 201)
    async with db.acquire() as conn:
        intent = await conn.fetchval("SELECT intent_id FROM orders WHERE id = $1", order_b["id"])
    event = await eventually(lambda: _first_event(client, shop.staff), within=30)
    values = {"tenant_id": shop.tenant_id, "store_id": store_b, "order_id": order_b["id"], "id": intent,
              "event_id": event["id"],
              "endpoint_id": endpoint["id"], "key_id": tenant_key["id"], "item_id": "itm_b_wrap",
              "day": "2030-01-01", "region": "demo"}
    tablet = {"X-Api-Key": key_a["key"]}
    wrong = []  # every route that answers otherwise, so one run names them all
    for (method, template), (kind, body) in ROUTES.items():
        path = str(fill(template, values))
        if template in WEBSOCKETS:
            try:
                await (await client.ws_connect(path, headers=tablet)).close()
                wrong.append((method, template, "the socket opened"))
            except WSServerHandshakeError as refused:
                if refused.status != 404:
                    wrong.append((method, template, refused.status))
            continue
        keyed = {"Idempotency-Key": f"walk-{template}"} if (method, template) in KEYED else {}
        resp = await client.request(method, path, headers={**tablet, **keyed},
                                    **({"json": fill(body, values)} if body is not None else {}))
        answer = await resp.json() if resp.status != 204 else {}
        expected = {HIDDEN: (404, "resource_missing"), FORBIDDEN: (403, "forbidden")}.get(kind, (200, None))
        if (resp.status, answer.get("error", {}).get("code")) != expected:
            wrong.append((method, template, resp.status, answer))
    assert wrong == []
    # Nothing of B's changed, and the tenant-wide key still works.
    after = await ok(await client.get(f"/v1/orders/{order_b['id']}", headers={"X-Api-Key": tenant_key["key"]}))
    assert after["status"] == "placed"
    b = await ok(await client.get(f"/v1/merchant/stores/{store_b}", headers=shop.staff))
    assert (b["name"], b["status"]) == ("Kreuzberg", "online")


async def test_tenant_wide_keys_act_for_every_store_as_before(tenant) -> None:
    _, client, shop, store_b, order_a, order_b, _ = tenant
    tenant_key = await new_key(client, shop, shop.staff)
    assert tenant_key["store_id"] is None
    pos = {"X-Api-Key": tenant_key["key"]}
    stores = await ok(await client.get(f"/v1/tenants/{shop.tenant_id}/stores", headers=pos))
    assert {s["id"] for s in stores["items"]} == {shop.store_id, store_b}
    for order in (order_a, order_b):
        accepted = await ok(await client.post(f"/v1/orders/{order['id']}/accept", headers=pos,
                                              json={"prep_time_s": 600}))
        assert accepted["status"] == "accepted"
    async with client.ws_connect(f"/v1/stores/{store_b}/orders/feed", headers=pos) as ws:
        hello = json.loads(await ws.receive_str(timeout=10))
        assert [o["id"] for o in hello["active_orders"]] == [order_b["id"]]
    # A tenant-wide key may make keys, a store's one included.
    await new_key(client, shop, pos, store_id=store_b)


async def test_a_key_for_a_store_the_tenant_does_not_own_is_refused(tenant, make_principal) -> None:
    _, client, shop, *_ = tenant
    rival = await ok(await client.post("/v1/tenants", json={"name": "Rival"}, headers=shop.operator), 201)
    _, rival_staff = await make_principal("staff", tenant_id=rival["id"])
    rival_store = await ok(await client.post(f"/v1/tenants/{rival['id']}/stores", headers=rival_staff, json={
        "name": "Rival", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR"}), 201)
    for store_id in (rival_store["id"], "sto_nosuchstore", ""):
        resp = await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", headers=shop.staff,
                                 json={"name": "tablet", "store_id": store_id})
        assert (resp.status, (await resp.json())["error"]["code"]) == (404, "resource_missing"), store_id
    resp = await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", headers=shop.staff,
                             json={"name": "tablet", "store_id": 7})
    assert (resp.status, (await resp.json())["error"]["param"]) == (422, "store_id")
    schema = await ok(await client.get("/openapi.json"))
    assert "store_id" in schema["components"]["schemas"]["CreateApiKey"]["properties"]
