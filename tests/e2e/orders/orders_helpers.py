"""A restaurant with a menu, a customer with a card, built through the real catalog and payments APIs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

LAT, LNG = 52.5200, 13.4050
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1000, "modifier_groups": [
        {"id": "grp_extras", "name": "Extras", "min": 0, "max": 2, "options": [
            {"id": "opt_cheese", "name": "Cheese", "price": 150},
            {"id": "opt_bacon", "name": "Bacon", "price": 250}]}]},
    {"id": "itm_fries", "name": "Fries", "price": 400},
]}]}
VISA_OK = "4242424242424242"
VISA_DECLINE = "4000000000000002"


@dataclass
class Shop:
    tenant_id: str
    store_id: str
    staff: dict
    operator: dict


async def ok(resp, status: int = 200) -> dict:
    body = await resp.json() if resp.status != 204 else {}
    assert resp.status == status, (resp.status, body)
    return body


async def make_shop(client, make_principal, *, accept_window_s: int = 300, tax_inclusive: bool = False,
                    currency: str = "EUR") -> Shop:
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": "Burger Bros"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": "Mitte", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": currency,
        "tax_rate_bps": 700, "tax_inclusive": tax_inclusive, "prep_time_default_s": 600,
        "accept_window_s": accept_window_s}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
    return Shop(tenant["id"], sid, staff, operator)


async def make_customer(client, make_principal, card: str = VISA_OK) -> tuple[str, dict, str]:
    who, headers = await make_principal("customer")
    pm = await client.post("/v1/payment_methods", headers={**headers, "Idempotency-Key": f"pm-{who.account_id}"},
                           json={"card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    pm = await ok(pm)
    return who.account_id, headers, pm["id"]


def cart(store_id: str, **kw) -> dict:
    body = {"store_id": store_id, "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
            "lines": [{"item_id": "itm_burger", "quantity": 2, "options": [{"option_id": "opt_cheese"}]},
                      {"item_id": "itm_fries", "quantity": 1}], "tip": 200}
    body.update(kw)
    return body


async def place(client, headers: dict, pm: str, store_id: str, key: str = "k1", **kw) -> dict:
    quote = await ok(await client.post("/v1/quotes", json=cart(store_id, **kw), headers=headers), 201)
    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                             headers={**headers, "Idempotency-Key": key})
    return await ok(resp, 201)


async def eventually(check, within: float = 10.0, every: float = 0.05):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


