"""Promos over HTTP, across tenants: a restaurant creates promos only for its own stores (another
tenant's store is 404 and nothing is written), codes are unique per tenant (B cannot squat A's
code), and a quote resolves a code within the store's tenant, then among platform-wide promos."""

from __future__ import annotations

from orders_helpers import MENU, SQUARE, cart, make_customer, make_shop, ok


def fixed(code: str, amount: int, **kw) -> dict:
    return {"code": code, "kind": "fixed", "amount": amount, "currency": "EUR", **kw}


async def other_shop(client, operator: dict, make_principal) -> tuple[str, str, dict]:
    """A second tenant with a store like `make_shop`'s (menu item ids are global: suffixed)."""
    tenant = await ok(await client.post("/v1/tenants", json={"name": "Pizza Pals"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Wedding", "lat": 52.52, "lng": 13.405, "timezone": "Europe/Berlin", "currency": "EUR"}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    menu = {"categories": [{"name": c["name"], "items": [
        {**{k: v for k, v in i.items() if k != "modifier_groups"}, "id": i["id"] + "_b"} for i in c["items"]]}
        for c in MENU["categories"]]}
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=menu))
    return tenant["id"], sid, staff


async def test_a_restaurant_cannot_create_a_promo_on_another_tenants_store(client, db, make_principal) -> None:
    a = await make_shop(client, make_principal)
    _, store_b, staff_b = await other_shop(client, a.operator, make_principal)
    for store_id in (a.store_id, "sto_unknown"):
        resp = await client.post("/v1/promos", json=fixed("FREEFOOD", 500, store_id=store_id), headers=staff_b)
        assert resp.status == 404, await resp.text()
        assert (await resp.json())["error"]["code"] == "resource_missing"
    platform = await client.post("/v1/promos", json=fixed("FREEFOOD", 500), headers=staff_b)
    assert platform.status == 403  # platform-wide promos are operators'
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM promos") == 0
    mine = await ok(await client.post("/v1/promos", json=fixed("FREEFOOD", 500, store_id=store_b),
                                      headers=staff_b), 201)
    assert mine["store_id"] == store_b
    # operators act for any tenant: the promo belongs to the store's tenant
    await ok(await client.post("/v1/promos", json=fixed("OPS10", 100, store_id=a.store_id), headers=a.operator), 201)
    async with db.acquire() as conn:
        owner = await conn.fetchval("SELECT tenant_id FROM promos WHERE code = 'OPS10'")
    assert owner == a.tenant_id


async def test_codes_are_unique_per_tenant_and_quotes_find_the_stores_tenants_code(client, make_principal) -> None:
    a = await make_shop(client, make_principal)
    _, store_b, staff_b = await other_shop(client, a.operator, make_principal)
    # B registers the code first: it no longer takes it from A
    await ok(await client.post("/v1/promos", json=fixed("SAVE", 700, store_id=store_b), headers=staff_b), 201)
    await ok(await client.post("/v1/promos", json=fixed("save", 300, store_id=a.store_id), headers=a.staff), 201)
    taken = await client.post("/v1/promos", json=fixed("Save", 100, store_id=a.store_id), headers=a.staff)
    assert taken.status == 409 and (await taken.json())["error"]["code"] == "promo_code_taken"
    await ok(await client.post("/v1/promos", json=fixed("WELCOME", 200), headers=a.operator), 201)
    _, cust, _ = await make_customer(client, make_principal)

    async def discount(store_id: str, code: str, item: str = "itm_burger") -> int:
        body = cart(store_id, promo_code=code, lines=[{"item_id": item, "quantity": 2}])
        quote = await ok(await client.post("/v1/quotes", json=body, headers=cust), 201)
        return -sum(f["amount"]["amount"] for f in quote["fees"] if f["kind"] == "discount")

    assert await discount(a.store_id, "SAVE") == 300  # A's own, not B's 700
    assert await discount(store_b, "SAVE", "itm_burger_b") == 700
    assert await discount(a.store_id, "WELCOME") == 200  # platform-wide: at every tenant's store
    assert await discount(store_b, "WELCOME", "itm_burger_b") == 200
    unknown = await client.post("/v1/quotes", json=cart(a.store_id, promo_code="NOPE"), headers=cust)
    assert unknown.status == 422 and (await unknown.json())["error"]["code"] == "promo_unknown"
