"""Merchant API over HTTP: tenant isolation on every merchant route (walked from the route table),
menu upsert atomicity, 422s with field paths, events and audit."""

from __future__ import annotations

import re

import pytest

from catalog import web as catalog_web
from kernel.http import STAFF, endpoint_spec

SQUARE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58], [13.30, 52.58],
                                              [13.30, 52.45]]]}
MENU = {"categories": [{"name": "Pizza", "items": [
    {"id": "itm_margherita", "name": "Margherita", "price": 850, "modifier_groups": [
        {"name": "Size", "min": 1, "max": 1, "options": [{"id": "opt_s", "name": "S"},
                                                          {"id": "opt_l", "name": "L", "price": 300}]}]},
    {"id": "itm_special", "name": "Special", "price": 1200}]}]}


async def make_tenant(client, op_headers, make_principal, name: str):
    resp = await client.post("/v1/tenants", json={"name": name}, headers=op_headers)
    assert resp.status == 201, await resp.text()
    tenant = (await resp.json())["id"]
    _, staff = await make_principal("staff", tenant_id=tenant)
    return tenant, staff


async def make_store(client, tenant: str, staff: dict, **extra) -> str:
    body = {"name": "Store", "lat": 52.52, "lng": 13.40, "timezone": "Europe/Berlin", "currency": "EUR", **extra}
    resp = await client.post(f"/v1/tenants/{tenant}/stores", json=body, headers=staff)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


@pytest.fixture
async def two_tenants(client, make_principal):
    _, op = await make_principal("operator")
    a, staff_a = await make_tenant(client, op, make_principal, "A")
    b, staff_b = await make_tenant(client, op, make_principal, "B")
    store_a = await make_store(client, a, staff_a)
    resp = await client.put(f"/v1/merchant/stores/{store_a}/menu", json=MENU, headers=staff_a)
    assert resp.status == 200, await resp.text()
    return {"a": a, "staff_a": staff_a, "b": b, "staff_b": staff_b, "store_a": store_a, "op": op}


# Every merchant route with a request that succeeds for the owner. A new merchant route without an
# entry here fails `test_every_merchant_route_hides_other_tenants`. Order matters (close is last).
SAMPLES: list[tuple[str, str, dict | None]] = [
    ("GET", "/v1/tenants/{tenant_id}", None),
    ("GET", "/v1/tenants/{tenant_id}/stores", None),
    ("POST", "/v1/tenants/{tenant_id}/stores",
     {"name": "S2", "lat": 52.5, "lng": 13.4, "timezone": "Europe/Berlin", "currency": "EUR"}),
    ("GET", "/v1/merchant/stores/{store_id}", None),
    ("PATCH", "/v1/merchant/stores/{store_id}", {"name": "Renamed"}),
    ("PUT", "/v1/merchant/stores/{store_id}/hours", {"periods": [{"weekday": 0, "opens": "11:00",
                                                                  "closes": "22:00"}]}),
    ("PUT", "/v1/merchant/stores/{store_id}/zones", {"zones": [SQUARE], "max_delivery_m": 9000}),
    ("PUT", "/v1/merchant/stores/{store_id}/special_days/{day}", {"closed": True}),
    ("GET", "/v1/merchant/stores/{store_id}/special_days", None),
    ("DELETE", "/v1/merchant/stores/{store_id}/special_days/{day}", None),
    ("PUT", "/v1/merchant/stores/{store_id}/menu", MENU),
    ("GET", "/v1/merchant/stores/{store_id}/menu", None),
    ("PATCH", "/v1/merchant/stores/{store_id}/items/{item_id}", {"price": 900}),
    ("PUT", "/v1/merchant/stores/{store_id}/stock/{item_id}", {"count": 5}),
    ("GET", "/v1/merchant/stores/{store_id}/stock", None),
    ("GET", "/v1/merchant/stores/{store_id}/audit", None),
    ("POST", "/v1/merchant/stores/{store_id}/pause", {}),
    ("POST", "/v1/merchant/stores/{store_id}/open", None),
    ("POST", "/v1/merchant/stores/{store_id}/close", None),
]


def merchant_routes(app) -> set[tuple[str, str]]:
    """Catalog routes staff may call, straight from the app's router."""
    found = set()
    for route in app.router.routes():
        spec = endpoint_spec(route.handler)
        if route.method == "HEAD" or spec is None or not spec.roles or STAFF not in spec.roles:
            continue
        if getattr(route.handler, "__module__", "") != catalog_web.__name__:
            continue
        found.add((route.method, route.resource.canonical))
    return found


# What another tenant may send instead of a good request: a body that fails validation (zones that
# are not GeoJSON, say), bad JSON, no body, and a query that fails validation. None of them may
# be looked at before the store or tenant is found to be someone else's.
BAD_REQUESTS: list[dict] = [
    {"json": {"zones": "not geojson", "max_delivery_m": -1, "unknown": True}},
    {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
    {},
    {"params": {"limit": "-5", "cursor": "x"}},
]


async def test_every_merchant_route_hides_other_tenants(client, app, db, two_tenants) -> None:
    assert merchant_routes(app) == {(m, p) for m, p, _ in SAMPLES}, "add the new merchant route to SAMPLES"
    t = two_tenants
    values = {"tenant_id": t["a"], "store_id": t["store_a"], "day": "2030-12-25", "item_id": "itm_special"}
    for method, template, body in SAMPLES:
        path = re.sub(r"{(\w+)}", lambda m: values[m.group(1)], template)
        async with db.acquire() as conn:
            audit_before = await conn.fetchval("SELECT count(*) FROM catalog_audit")
        for request in [{"json": body}, *BAD_REQUESTS]:
            other = await client.request(method, path, **{**request, "headers": {**t["staff_b"],
                                                                                 **request.get("headers", {})}})
            assert other.status == 404, (method, template, request, other.status, await other.text())
            assert (await other.json())["error"]["code"] == "resource_missing"
        async with db.acquire() as conn:  # and nothing happened
            assert await conn.fetchval("SELECT count(*) FROM catalog_audit") == audit_before, (method, template)
        mine = await client.request(method, path, json=body, headers=t["staff_a"])
        assert mine.status < 300, (method, template, mine.status, await mine.text())
    # and the operator sees everything
    resp = await client.get(f"/v1/merchant/stores/{t['store_a']}", headers=t["op"])
    assert resp.status == 200


async def test_another_tenants_store_is_404_not_403(client, two_tenants) -> None:
    resp = await client.get(f"/v1/merchant/stores/{two_tenants['store_a']}", headers=two_tenants["staff_b"])
    unknown = await client.get("/v1/merchant/stores/sto_unknown", headers=two_tenants["staff_b"])
    assert resp.status == unknown.status == 404
    assert (await resp.json())["error"]["code"] == (await unknown.json())["error"]["code"]


async def test_customers_cannot_call_merchant_routes(client, make_principal, two_tenants) -> None:
    _, customer = await make_principal("customer")
    resp = await client.get(f"/v1/merchant/stores/{two_tenants['store_a']}", headers=customer)
    assert resp.status == 403
    assert (await client.post("/v1/tenants", json={"name": "x"}, headers=two_tenants["staff_a"])).status == 403


async def test_failed_menu_upsert_changes_nothing(client, db, two_tenants) -> None:
    t = two_tenants
    bad = {"categories": [{"name": "Pizza", "items": [
        {"name": "New", "price": 100},
        {"name": "Broken", "price": 100, "modifier_groups": [{"name": "G", "min": 2, "max": 1,
                                                               "options": [{"name": "o", "max_quantity": 5}]}]}]}]}
    resp = await client.put(f"/v1/merchant/stores/{t['store_a']}/menu", json=bad, headers=t["staff_a"])
    assert resp.status == 422
    assert (await resp.json())["error"]["param"] == "categories[0].items[1].modifier_groups[0].min"
    menu = await (await client.get(f"/v1/merchant/stores/{t['store_a']}/menu", headers=t["staff_a"])).json()
    assert menu["version"] == 1
    assert [i["name"] for i in menu["categories"][0]["items"]] == ["Margherita", "Special"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM catalog_menus") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'menu.published'") == 1


async def test_menu_upsert_cannot_take_another_stores_item_id(client, two_tenants, make_principal) -> None:
    t = two_tenants
    store_b = await make_store(client, t["b"], t["staff_b"])
    resp = await client.put(f"/v1/merchant/stores/{store_b}/menu", headers=t["staff_b"], json={"categories": [
        {"name": "X", "items": [{"name": "ok", "price": 1}, {"id": "itm_special", "name": "Mine", "price": 1}]}]})
    assert resp.status == 422
    assert (await resp.json())["error"]["param"] == "categories[0].items[1].id"


@pytest.mark.parametrize(("path", "body", "param"), [
    ("", {"timezone": "Mars/Olympus"}, "timezone"),
    ("", {"currency": "XYZ"}, "currency"),
    ("", {"tax_rate_bps": -5}, "tax_rate_bps"),
    ("/hours", {"periods": [{"weekday": 1, "opens": "11:00", "closes": "15:00"},
                            {"weekday": 1, "opens": "14:00", "closes": "18:00"}]}, "periods[1]"),
    ("/hours", {"periods": [{"weekday": 1, "opens": "11:00", "closes": "15:61"}]}, "periods[0].closes"),
    ("/zones", {"zones": [{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}]},
     "zones[0].coordinates"),
    ("/zones", {"zones": [SQUARE], "max_delivery_m": 5000, "fee_bands": [{"up_to_m": 3000, "fee": 100}]},
     "fee_bands[0].up_to_m"),
    ("/menu", {"categories": [{"name": "c", "items": [{"name": "i", "price": -100}]}]},
     "categories[0].items[0].price"),
])
async def test_bad_input_is_422_with_the_field_path(client, two_tenants, path, body, param) -> None:
    method = "PATCH" if path == "" else "PUT"
    resp = await client.request(method, f"/v1/merchant/stores/{two_tenants['store_a']}{path}", json=body,
                                headers=two_tenants["staff_a"])
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["param"] == param


async def test_create_store_with_unknown_currency_is_422(client, two_tenants) -> None:
    t = two_tenants
    resp = await client.post(f"/v1/tenants/{t['a']}/stores", headers=t["staff_a"], json={
        "name": "S", "lat": 52.5, "lng": 13.4, "timezone": "Europe/Berlin", "currency": "EURO"})
    assert resp.status == 422 and (await resp.json())["error"]["param"] == "currency"


async def test_special_days_are_added_and_removed_one_by_one(client, two_tenants) -> None:
    t = two_tenants
    base = f"/v1/merchant/stores/{t['store_a']}/special_days"
    assert (await client.put(f"{base}/2030-12-25", json={"closed": True}, headers=t["staff_a"])).status == 200
    assert (await client.put(f"{base}/2030-12-31", headers=t["staff_a"], json={
        "periods": [{"opens": "18:00", "closes": "03:00"}]})).status == 200
    assert (await client.delete(f"{base}/2030-12-25", headers=t["staff_a"])).status == 204
    days = (await (await client.get(base, headers=t["staff_a"])).json())["items"]
    assert [d["day"] for d in days] == ["2030-12-31"]
    assert (await client.delete(f"{base}/2030-12-25", headers=t["staff_a"])).status == 404


async def test_changes_emit_events_and_are_audited(client, db, two_tenants) -> None:
    t = two_tenants
    store = t["store_a"]
    await client.post(f"/v1/merchant/stores/{store}/pause", json={"reason": "rush"}, headers=t["staff_a"])
    await client.post(f"/v1/merchant/stores/{store}/open", headers=t["staff_a"])
    resp = await client.patch(f"/v1/merchant/stores/{store}/items/itm_special", json={"availability": "sold_out"},
                              headers=t["staff_a"])
    assert resp.status == 200 and (await resp.json())["menu_version"] == 2
    async with db.acquire() as conn:
        types = [r["type"] for r in await conn.fetch("SELECT type FROM outbox ORDER BY seq")]
    assert types == ["menu.published", "store.paused", "store.opened", "menu.published", "item.sold_out"]
    audit = (await (await client.get(f"/v1/merchant/stores/{store}/audit", headers=t["staff_a"])).json())["items"]
    assert [a["action"] for a in audit][:3] == ["item.updated", "store.online", "store.paused"]
    menu = await (await client.get(f"/v1/stores/{store}/menu")).json()
    special = next(i for i in menu["categories"][0]["items"] if i["id"] == "itm_special")
    assert special["sold_out"] is True


async def test_store_list_is_paginated_with_a_cursor(client, two_tenants) -> None:
    t = two_tenants
    for _ in range(4):
        await make_store(client, t["a"], t["staff_a"])
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get(f"/v1/tenants/{t['a']}/stores", params=params, headers=t["staff_a"])).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
