"""A restaurant's figures reconcile with the ledger to the minor unit, per currency (issue 20): after a mix of
orders delivered (captures, checkout tips and a tip raised after delivery, an order whose every item was missing),
a cancellation with a fee, refunds of every bearer and path (an operator's, to the card and to the wallet, the
restaurant's own, of a cancellation fee too, missing items after delivery), and payouts paid, failed, retried
and pending (by schedule and by an operator's batch), in two currencies of one tenant:

    the statement's nets - what payouts that did not fail took = available + pending + reserved
                                                                = the `restaurant_payable` account's balance
                                                                = the sum of its postings,

and the `refund.created` events the merchant got add up to the statement's refunds. Against the real
PostgreSQL, through the API a merchant reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orders_helpers import LAT, LNG, SQUARE, Shop, eventually, make_customer, make_shop, ok, place
from orders_money_world import deliver, intents_of, keyed

from fooddispatch.app import create_app
from payments.web import PAYMENTS
from payments.web_merchant import MERCHANT_POLICY

COMPONENTS = ("catalog", "payments", "orders")
PIES = {"categories": [{"name": "Pies", "id": "cat_gbp_pies", "items": [
    {"id": "itm_gbp_pie", "name": "Pie", "price": 850}, {"id": "itm_gbp_mash", "name": "Mash", "price": 300}]}]}
PIE_LINES = [{"item_id": "itm_gbp_pie", "quantity": 2}, {"item_id": "itm_gbp_mash", "quantity": 1}]


async def _pound_store(client, shop: Shop) -> str:
    """A second store of the same tenant, selling in GBP."""
    store = await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/stores", headers=shop.staff, json={
        "name": "Soho", "lat": LAT, "lng": LNG, "timezone": "Europe/London", "currency": "GBP",
        "tax_rate_bps": 2000, "tax_inclusive": True, "prep_time_default_s": 600}), 201)
    sid = store["id"]
    await ok(await client.put(f"/v1/merchant/stores/{sid}/hours", headers=shop.staff, json={
        "periods": [{"weekday": d, "opens": "00:00", "closes": "24:00"} for d in range(7)]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/zones", headers=shop.staff, json={
        "zones": [SQUARE], "max_delivery_m": 8000, "fee_bands": [{"up_to_m": 8000, "fee": 250}]}))
    await ok(await client.put(f"/v1/merchant/stores/{sid}/menu", headers=shop.staff, json=PIES))
    return sid


class World:
    def __init__(self, app, client, db, make_principal, shop: Shop, customer) -> None:
        self.app, self.client, self.db, self.make_principal = app, client, db, make_principal
        self.shop, self.customer = shop, customer
        self.keys = 0

    async def delivered(self, store_id: str, **cart) -> dict:
        _, cust, pm = self.customer
        self.keys += 1
        order = await place(self.client, cust, pm, store_id, key=f"o{self.keys}", **cart)
        await ok(await self.client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=self.shop.staff))
        return await deliver(self.client, self.make_principal, order["id"])

    async def merchant_refund(self, order_id: str, **body) -> dict:
        return await ok(await self.client.post(f"/v1/merchant/orders/{order_id}/refunds",
                                               headers=keyed(self.shop.staff), json={"reason": "quality", **body}), 201)

    async def operator_refund(self, order_id: str, amount: int, destination: str = "card") -> None:
        [intent, *_] = await intents_of(self.db, order_id)
        await ok(await self.client.post("/v1/refunds", headers=keyed(self.shop.operator), json={
            "payment_intent": intent["id"], "amount": amount, "destination": destination}))

    async def payout_status(self, payout_id: str, *steps: str) -> None:
        for status in steps:
            body = {"status": status, **({"failure_reason": "account_closed"} if status == "failed" else {})}
            await ok(await self.client.post(f"/v1/payouts/{payout_id}", headers=keyed(self.shop.operator), json=body))

    async def scheduled_payout(self) -> dict:
        async with self.db.acquire() as conn:
            await conn.execute("UPDATE merchant_payout_schedules SET next_run_at = now() - interval '1 second' "
                               "WHERE tenant_id = $1", self.shop.tenant_id)
        assert await self.app[PAYMENTS].merchant_payouts.run_due(self.app[MERCHANT_POLICY]) == 1
        return (await ok(await self.client.get("/v1/merchant/payouts", headers=self.shop.staff)))["data"][0]

    async def batch_payout(self, currency: str) -> dict:
        batch = await ok(await self.client.post("/v1/payout_batches", headers=keyed(self.shop.operator),
                                                json={"kind": "restaurant", "currency": currency}), 201)
        [payout] = [p for p in batch["payouts"] if p["owner"] == self.shop.tenant_id]
        return payout


async def _euro_story(w: World) -> None:
    tipped, by_platform, by_restaurant, missing = [await w.delivered(w.shop.store_id) for _ in range(4)]
    _, cust, _ = w.customer
    await ok(await w.client.post(f"/v1/orders/{tipped['id']}/tip", json={"tip": 450}, headers=cust))
    _, cust, pm = w.customer
    fee = await place(w.client, cust, pm, w.shop.store_id, key="fee")
    await ok(await w.client.post(f"/v1/orders/{fee['id']}/accept", json={}, headers=w.shop.staff))
    await ok(await w.client.post(f"/v1/orders/{fee['id']}/cancel", json={}, headers=cust))  # a fee is captured
    await w.merchant_refund(tipped["id"])  # all of it: the hold, then the raised tip's own intent
    await w.operator_refund(by_platform["id"], 700)
    await w.operator_refund(by_platform["id"], 120, destination="wallet")
    await w.merchant_refund(fee["id"], amount=55)  # of the cancellation fee
    await w.merchant_refund(by_restaurant["id"], amount=333)
    await ok(await w.client.post(f"/v1/orders/{missing['id']}/missing_items", headers=w.shop.operator,
                                 json={"lines": [{"line_no": 2, "quantity": 1}]}))
    # Every item missing before pickup: the customer pays fees and tip, the restaurant's share is zero (no
    # posting on its account), and yet it may refund the order from its balance, which its statement shows.
    empty = await place(w.client, cust, pm, w.shop.store_id, key="empty")
    await ok(await w.client.post(f"/v1/orders/{empty['id']}/accept", json={}, headers=w.shop.staff))
    await ok(await w.client.post(f"/v1/orders/{empty['id']}/missing_items", headers=w.shop.staff, json={
        "lines": [{"line_no": 1, "quantity": 2}, {"line_no": 2, "quantity": 1}]}))
    await deliver(w.client, w.make_principal, empty["id"])
    await w.merchant_refund(empty["id"], amount=100)
    await w.operator_refund(empty["id"], 50)
    await ok(await w.client.put("/v1/merchant/payout_schedule", headers=w.shop.staff,
                                json={"every": "daily", "currency": "EUR", "minimum_amount": 1}))
    first = await w.scheduled_payout()
    await w.payout_status(first["id"], "failed")
    retry = await w.scheduled_payout()
    assert retry["retry_of"] == [first["id"]]
    await w.payout_status(retry["id"], "in_transit", "paid")
    later = await w.delivered(w.shop.store_id)
    await w.merchant_refund(later["id"], amount=211)
    await w.operator_refund(later["id"], 97)
    await w.scheduled_payout()  # stays pending


async def _pound_story(w: World, store_id: str) -> None:
    first, second = [await w.delivered(store_id, lines=PIE_LINES, tip=100) for _ in range(2)]
    await w.merchant_refund(first["id"], lines=[{"line_no": 2, "quantity": 1}])
    lost = await w.batch_payout("GBP")  # an operator's batch pays the whole balance, pending and reserve too
    await w.payout_status(lost["id"], "in_transit", "failed")
    third = await w.delivered(store_id, lines=PIE_LINES, tip=0)
    await w.operator_refund(second["id"], 125)
    await w.merchant_refund(third["id"], amount=90)
    paid = await w.batch_payout("GBP")
    await w.payout_status(paid["id"], "in_transit", "paid")
    await w.delivered(store_id, lines=PIE_LINES, tip=50)


async def _all(client, url: str, headers: dict, params: dict, key: str) -> list[dict]:
    """One page of 100: enough here (the statement's and payouts' paging have tests of their own)."""
    page = await ok(await client.get(url, headers=headers, params={**params, "limit": 100}))
    assert not page.get("has_more") and not page.get("next_cursor")
    return page[key]


async def test_statement_balance_and_payouts_add_up_to_the_ledger_per_currency(
        aiohttp_client, settings, db, make_principal) -> None:
    app = create_app(settings.replace(merchant_pending_hours=0, merchant_refund_reserve_bps=1000),
                     components=COMPONENTS)
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    w = World(app, client, db, make_principal, shop, await make_customer(client, make_principal))
    pounds = await _pound_store(client, shop)
    await _euro_story(w)
    await _pound_story(w, pounds)

    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    lines = await _all(client, "/v1/merchant/statements", shop.staff, period, "items")
    payouts = await _all(client, "/v1/merchant/payouts", shop.staff, {}, "data")
    balances = (await ok(await client.get("/v1/merchant/balance", headers=shop.staff)))["balances"]
    assert {p["status"] for p in payouts} == {"failed", "paid", "pending"}
    assert {b["currency"] for b in balances} == {"EUR", "GBP"}
    for x in lines:  # each line divides what the customer was charged, whatever happened to the order
        order = await ok(await client.get(f"/v1/orders/{x['order_id']}", headers=shop.staff))
        assert x["gross"] == order["captured"]["amount"], x
        assert x["gross"] == (x["tax"] + x["tips_passed_through"] + x["commission"] + x["fees"] + x["net"]
                              + x["refunds_borne_by_restaurant"]), x
    for b in balances:
        cur = b["currency"]
        account = f"restaurant_payable:{shop.tenant_id}:{cur}"
        async with db.acquire() as conn:
            ledger = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1", account)
            postings = await conn.fetchval("SELECT -sum(amount) FROM postings WHERE account_id = $1", account)
        nets = sum(x["net"] for x in lines if x["currency"] == cur)
        paid_out = sum(p["amount"] for p in payouts if p["currency"] == cur and p["status"] != "failed")
        parts = b["available"] + b["pending"] + b["reserved_for_refunds"]
        assert nets - paid_out == parts == b["total"] == ledger == postings, (cur, nets, paid_out, parts, ledger)
        assert b["total"] > 0 and paid_out > 0

    async with db.acquire() as conn:  # every refund made here is of this tenant's orders
        made = await conn.fetchval("SELECT count(*) FROM payment_refunds")
    assert made == 14  # EUR 11 (the tipped order's: of its hold and of its tip's intent), GBP 3

    async def refunds_announced() -> list[dict] | None:
        events = await _all(client, "/v1/events", shop.staff, {"type": "refund.created"}, "items")
        return events if len(events) == made else None

    events = await eventually(refunds_announced, within=30)
    for cur in ("EUR", "GBP"):
        announced = sum(e["data"]["object"]["amount"]["amount"] for e in events
                        if e["data"]["object"]["amount"]["currency"] == cur)
        stated = sum(x["refunds_borne_by_platform"] + x["refunds_borne_by_restaurant"]
                     for x in lines if x["currency"] == cur)
        assert announced == stated > 0, cur
