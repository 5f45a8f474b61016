"""A restaurant with a menu and a signed-in staff account, a courier with a password, a customer with a card:
built through the real API, as the apps' users would have them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

STORE = (52.5200, 13.4050)
DROPOFF = (52.5260, 13.4090)
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1000},
    {"id": "itm_fries", "name": "Fries", "price": 400},
]}]}
PASSWORD = "correct horse battery"


@dataclass
class World:
    operator: dict
    tenant_id: str
    store_id: str
    staff_email: str
    courier_id: str
    courier_email: str
    customer: dict
    payment_method: str


async def ok(resp, status: int = 200) -> dict:
    body = await resp.json() if resp.status != 204 else {}
    assert resp.status == status, (resp.status, body)
    return body


async def build_world(client, make_principal) -> World:
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": "Burger Bros"}, headers=operator), 201)
    staff_email = "kitchen@burger.test"
    await ok(await client.post("/v1/accounts", headers=operator, json={
        "role": "staff", "email": staff_email, "password": PASSWORD, "name": "Kim Kitchen",
        "tenant_id": tenant["id"]}), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Burger Bros Mitte", "lat": STORE[0], "lng": STORE[1], "timezone": "Europe/Berlin",
        "currency": "EUR", "tax_rate_bps": 700, "tax_inclusive": False, "prep_time_default_s": 600,
        "accept_window_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
    courier_email = "grace@couriers.test"
    courier = await ok(await client.post("/v1/accounts", headers=operator, json={
        "role": "courier", "email": courier_email, "password": PASSWORD, "name": "Grace Hopper"}), 201)
    _, customer = await make_principal("customer", name="Carla Customer")
    pm = await ok(await client.post("/v1/payment_methods", headers={**customer, "Idempotency-Key": "pm-1"},
                                    json={"card": {"number": "4242424242424242", "exp_month": 12,
                                                   "exp_year": 2034, "cvc": "123"}}))
    return World(operator, tenant["id"], sid, staff_email, courier["account_id"], courier_email, customer, pm["id"])


async def place_order(client, world: World, key: str = "o1", note: str | None = "Ring twice, 3rd floor") -> dict:
    cart = {"store_id": world.store_id, "dropoff": {"lat": DROPOFF[0], "lng": DROPOFF[1]},
            "address": "Torstr. 1, Berlin", "lines": [{"item_id": "itm_burger", "quantity": 2},
                                                       {"item_id": "itm_fries", "quantity": 1}], "tip": 200}
    if note is not None:
        cart["delivery_note"] = note
    quote = await ok(await client.post("/v1/quotes", json=cart, headers=world.customer), 201)
    return await ok(await client.post("/v1/orders", json={"quote_id": quote["id"],
                                                          "payment_method_id": world.payment_method},
                                      headers={**world.customer, "Idempotency-Key": key}), 201)


async def eventually(check, within: float = 20.0, every: float = 0.1):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)
