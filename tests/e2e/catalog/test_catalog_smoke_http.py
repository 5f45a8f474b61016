"""A merchant sets up a store over HTTP and a customer finds it."""

from __future__ import annotations

ZONE = {"type": "Polygon", "coordinates": [[[13.30, 52.45], [13.50, 52.45], [13.50, 52.58], [13.30, 52.58],
                                            [13.30, 52.45]]]}


async def test_merchant_sets_up_a_store_and_a_customer_discovers_it(client, make_principal) -> None:
    _, op = await make_principal("operator")
    resp = await client.post("/v1/tenants", json={"name": "Pizza Co"}, headers=op)
    assert resp.status == 201, await resp.text()
    tenant = (await resp.json())["id"]
    _, staff = await make_principal("staff", tenant_id=tenant)
    resp = await client.post(f"/v1/tenants/{tenant}/stores", headers=staff, json={
        "name": "Pizza Mitte", "lat": 52.52, "lng": 13.40, "timezone": "Europe/Berlin", "currency": "EUR"})
    assert resp.status == 201, await resp.text()
    store = (await resp.json())["id"]
    resp = await client.put(f"/v1/merchant/stores/{store}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]})
    assert resp.status == 200, await resp.text()
    resp = await client.put(f"/v1/merchant/stores/{store}/zones", headers=staff, json={
        "zones": [ZONE], "max_delivery_m": 10000, "fee_bands": [{"up_to_m": 10000, "fee": 250}]})
    assert resp.status == 200, await resp.text()
    resp = await client.put(f"/v1/merchant/stores/{store}/menu", headers=staff, json={"categories": [
        {"name": "Pizza", "items": [{"name": "Margherita", "price": 850}]}]})
    assert resp.status == 200, await resp.text()
    resp = await client.get("/v1/stores", params={"lat": "52.5", "lng": "13.41"})
    assert resp.status == 200, await resp.text()
    [card] = (await resp.json())["items"]
    assert card["id"] == store and card["delivery_fee"] == {"amount": 250, "currency": "EUR"}
    resp = await client.get(f"/v1/stores/{store}/menu")
    assert (await resp.json())["categories"][0]["items"][0]["name"] == "Margherita"
    resp = await client.get("/v1/search", params={"q": "margarita", "lat": "52.5", "lng": "13.41"})
    assert resp.status == 200, await resp.text()
    assert [h["name"] for h in (await resp.json())["items"]][:1] == ["Margherita"]
