"""A store prices in its own currency and every step of an order stays in it: a JPY store (no
decimals) and a KWD store (three) go quote -> order -> capture -> refund, and the quote, the order,
the intent, the processor's capture, the refund and the ledger all carry the store's currency with
its minor units. The fixed fees are the currency's own (¥150 floor, 0.300 KWD floor), not EUR cents."""

from __future__ import annotations

import pytest
from orders_helpers import MENU, SQUARE, cart, ok
from orders_money_world import deliver, intents_of, keyed

from fooddispatch.keys import DB

FOOD = 2 * (1000 + 150) + 400  # the helpers' cart: 2 burgers with cheese, fries
TAX = 189  # 7 % of the food, exclusive
# currency -> (service fee, small-order fee): 10 % of 2,700 = 270 fits JPY's ¥150..¥800; KWD's floor is
# 0.300 and a food subtotal under 3.000 KWD pays the gap (0.300).
FEES = {"JPY": (270, 0), "KWD": (300, 300)}


async def _store(client, make_principal, currency: str) -> tuple[str, dict]:
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": f"{currency} Eats"}, headers=operator), 201)
    _, staff = await make_principal("staff", tenant_id=tenant["id"])
    store = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=staff, json={
        "name": currency, "lat": 52.52, "lng": 13.405, "timezone": "Europe/Berlin", "currency": currency,
        "tax_rate_bps": 700, "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 299}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=staff, json=MENU))
    return sid, staff


@pytest.mark.parametrize("currency", ["JPY", "KWD"])
async def test_a_store_in_its_own_currency_goes_quote_order_capture_refund_in_it(
        client, app, make_principal, customer_factory, currency: str) -> None:
    store_id, staff = await _store(client, make_principal, currency)
    _, cust, pm = await customer_factory()
    service, small = FEES[currency]
    total = FOOD + 299 + service + small + TAX + 200

    quote = await ok(await client.post("/v1/quotes", json=cart(store_id), headers=cust), 201)
    assert quote["currency"] == currency and quote["total"] == {"amount": total, "currency": currency}
    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                                       headers=keyed(cust)), 201)
    assert order["total"] == {"amount": total, "currency": currency}
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=staff))
    done = await deliver(client, make_principal, order["id"])
    assert done["captured"] == {"amount": total, "currency": currency}

    [intent] = await intents_of(app[DB], order["id"])
    _, operator = await make_principal("operator")
    pi = await ok(await client.get(f"/v1/payment_intents/{intent['id']}", headers=operator))
    assert (pi["currency"], pi["amount_received"]) == (currency, total)
    refund = await ok(await client.post("/v1/refunds", headers=keyed(operator),
                                         json={"payment_intent": intent["id"], "amount": 125}))
    assert (refund["amount"], refund["currency"]) == (125, currency)

    async with app[DB].acquire() as conn:
        rows = await conn.fetch(
            "SELECT e.kind, e.currency, a.currency AS account_currency, p.currency AS posting_currency, p.amount "
            "FROM journal_entries e JOIN postings p ON p.entry_id = e.id JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE e.intent_id = $1 OR e.reference = $2", intent["id"], order["id"])
        charge = await conn.fetchrow("SELECT amount, currency, captured, refunded FROM test_processor_charges "
                                     "WHERE id = (SELECT processor_ref FROM payment_intents WHERE id = $1)",
                                     intent["id"])
    assert {r["kind"] for r in rows} >= {"capture", "split", "refund"}
    assert {(r["currency"], r["account_currency"], r["posting_currency"]) for r in rows} == {(currency,) * 3}
    captured = sum(r["amount"] for r in rows if r["kind"] == "capture" and r["amount"] > 0)
    refunded = sum(r["amount"] for r in rows if r["kind"] == "refund" and r["amount"] > 0)
    assert (captured, refunded) == (total, 125)
    assert (charge["amount"], charge["currency"], charge["captured"], charge["refunded"]) == (
        total, currency, total, 125)


async def test_a_priced_store_keeps_its_currency(client, make_principal) -> None:
    store_id, staff = await _store(client, make_principal, "JPY")
    resp = await client.patch(f"/v1/merchant/stores/{store_id}", json={"currency": "EUR"}, headers=staff)
    err = (await resp.json())["error"]
    assert (resp.status, err["code"], err["param"]) == (409, "store_currency_fixed", "currency")
    same = await client.patch(f"/v1/merchant/stores/{store_id}", json={"currency": "JPY", "name": "Tokyo"},
                              headers=staff)
    assert same.status == 200
    # A store with nothing priced yet may still change it.
    _, operator = await make_principal("operator")
    tenant = await ok(await client.post("/v1/tenants", json={"name": "New"}, headers=operator), 201)
    _, owner = await make_principal("staff", tenant_id=tenant["id"])
    bare = await ok(await client.post(f"/v1/tenants/{tenant['id']}/stores", headers=owner, json={
        "name": "Bare", "lat": 52.52, "lng": 13.405, "timezone": "Europe/Berlin", "currency": "EUR"}), 201)
    changed = await ok(await client.patch(f"/v1/merchant/stores/{bare['id']}", json={"currency": "KWD"},
                                          headers=owner))
    assert changed["currency"] == "KWD"
