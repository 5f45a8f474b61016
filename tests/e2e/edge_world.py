"""A small world for the probes generated from the OpenAPI document: one principal per role, a
restaurant with a menu, a customer's card, quote, order and payment intent, so that path ids and
body ids point at real rows and a probe reaches the code behind its field."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from fooddispatch.input_guard import PATH_ID_PREFIXES
from kernel.ids import new_id

LAT, LNG = 52.5200, 13.4050
SQUARE = {"type": "Polygon", "coordinates": [[[13.35, 52.48], [13.46, 52.48], [13.46, 52.56], [13.35, 52.56],
                                              [13.35, 52.48]]]}
MENU = {"categories": [{"name": "Mains", "id": "cat_mains", "items": [
    {"id": "itm_burger", "name": "Burger", "price": 1000, "modifier_groups": [
        {"id": "grp_extras", "name": "Extras", "min": 0, "max": 2, "options": [
            {"id": "opt_cheese", "name": "Cheese", "price": 150}]}]},
    {"id": "itm_fries", "name": "Fries", "price": 400},
]}]}
ROLES = ("operator", "staff", "customer", "courier", "auditor")
_keys = itertools.count(1)


def fresh_key() -> str:
    return f"probe-{next(_keys)}"


@dataclass
class World:
    headers: dict[str, dict[str, str]]  # role -> auth headers
    accounts: dict[str, str]  # role -> account id
    ids: dict[str, str] = field(default_factory=dict)  # parameter or field name -> a real value

    def role_for(self, roles: list[str] | None) -> str:
        """The role a probe calls an operation as: the operator where allowed (sees everything)."""
        if not roles:
            return "customer"
        return next(r for r in ROLES if r in roles)

    def path_value(self, path: str, name: str) -> str:
        """A real value for a path parameter; `{id}` depends on the resource in front of it."""
        if name == "id":
            for start, key, prefix in (("/v1/payment_methods/", "payment_method_id", "pm"),
                                       ("/v1/payment_intents/", "payment_intent", "pi"),
                                       ("/v1/refunds/", "refund_id", "re"), ("/v1/payouts/", "payout_id", "po"),
                                       ("/v1/plans/", "plan_id", "plan"),
                                       ("/v1/subscriptions/", "subscription_id", "sub"),
                                       ("/v1/invoices/", "invoice_id", "in"),
                                       ("/v1/conversion_quotes/", "conversion_quote", "cvq"),
                                       ("/v1/conversions/", "conversion", "fxc")):
                if path.startswith(start):
                    return self.ids.get(key) or new_id(prefix)
        if name in self.ids:
            return self.ids[name]
        return new_id(PATH_ID_PREFIXES.get(name) or "xx")  # well-shaped, unknown: the route's own 404


async def _json(resp: Any) -> Any:
    return await resp.json() if resp.content_type == "application/json" else None


async def build_world(client: Any, make_principal: Any) -> World:
    headers: dict[str, dict[str, str]] = {}
    accounts: dict[str, str] = {}
    who, headers["operator"] = await make_principal("operator")
    accounts["operator"] = who.account_id
    op = headers["operator"]
    tenant = await _json(await client.post("/v1/tenants", json={"name": "Probe Bros"}, headers=op))
    tenant_id = tenant["id"]
    who, headers["staff"] = await make_principal("staff", tenant_id=tenant_id)
    accounts["staff"] = who.account_id
    who, headers["customer"] = await make_principal("customer")
    accounts["customer"] = who.account_id
    who, headers["courier"] = await make_principal("courier")
    accounts["courier"] = who.account_id
    who, headers["auditor"] = await make_principal("auditor")
    accounts["auditor"] = who.account_id
    staff, customer = headers["staff"], headers["customer"]
    store = await _json(await client.post(f"/v1/tenants/{tenant_id}/stores", headers=staff, json={
        "name": "Mitte", "lat": LAT, "lng": LNG, "timezone": "Europe/Berlin", "currency": "EUR",
        "tax_rate_bps": 700, "tax_inclusive": False, "prep_time_default_s": 600, "accept_window_s": 300}))
    sid = store["id"]
    await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]})
    await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]})
    await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU)
    ids = {"tenant_id": tenant_id, "store_id": sid, "item_id": "itm_burger", "option_id": "opt_cheese",
           "courier_id": accounts["courier"], "owner": accounts["customer"], "region": "berlin",
           "day": "2030-01-01", "currency": "EUR", "timezone": "Europe/Berlin"}
    pm = await _json(await client.post("/v1/payment_methods", headers={**customer, "Idempotency-Key": fresh_key()},
                                       json={"card": {"number": "4242424242424242", "exp_month": 12,
                                                      "exp_year": 2034, "cvc": "123"}}))
    ids["payment_method_id"] = ids["payment_method"] = pm["id"]
    cart = {"store_id": sid, "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1, Berlin",
            "lines": [{"item_id": "itm_fries", "quantity": 1}]}
    quote = await _json(await client.post("/v1/quotes", json=cart, headers=customer))
    order = await _json(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm["id"]},
                                          headers={**customer, "Idempotency-Key": fresh_key()}))
    ids["order_id"] = order["id"]
    spare = await _json(await client.post("/v1/quotes", json=cart, headers=customer))
    ids["quote_id"] = spare["id"]  # unused: a probe may still order from it
    intent = await _json(await client.post("/v1/payment_intents", headers={**customer, "Idempotency-Key": fresh_key()},
                                           json={"amount": 500, "currency": "EUR", "payment_method": pm["id"],
                                                 "confirm": True}))
    ids["payment_intent"] = intent["id"]
    key = await _json(await client.post(f"/v1/tenants/{tenant_id}/api_keys", headers=staff, json={"name": "pos"}))
    if key and "id" in key:
        ids["key_id"] = key["id"]
    hook = await _json(await client.post("/v1/merchant/webhook_endpoints", headers=staff, json={
        "url": "https://hooks.example.com/fooddispatch", "event_types": ["order.placed"]}))
    if hook and "id" in hook:  # refused where the name does not resolve: the probes then use an unknown id
        ids["endpoint_id"] = hook["id"]
    await _membership(client, op, customer, ids)
    return World(headers, accounts, ids)


async def _membership(client: Any, op: dict[str, str], customer: dict[str, str], ids: dict[str, str]) -> None:
    """A plan without benefits (quotes price as before) and the customer's subscription to it, paid now,
    with its invoice: the memberships routes' ids point at real rows."""
    plan = await _json(await client.post("/v1/plans", headers={**op, "Idempotency-Key": fresh_key()}, json={
        "name": "Probe Pass", "region": "berlin", "amount": 499, "currency": "EUR", "interval": "month"}))
    if not plan or "id" not in plan:
        return
    ids["plan_id"] = ids["plan"] = plan["id"]
    sub = await _json(await client.post("/v1/subscriptions", headers={**customer, "Idempotency-Key": fresh_key()},
                                        json={"plan": plan["id"], "payment_method": ids["payment_method_id"]}))
    if not sub or "id" not in sub:
        return
    ids["subscription_id"] = ids["subscription"] = sub["id"]
    invoices = await _json(await client.get("/v1/invoices", headers=customer, params={"subscription": sub["id"]}))
    if invoices and invoices.get("data"):
        ids["invoice_id"] = invoices["data"][0]["id"]

