"""A member's quote: with a trialing or active subscription to a plan of the store's region and currency,
the quote takes the delivery fee (above the plan's minimum) and half the service fee off; without one,
or with one past_due, it is the plain bill. Checkout charges the member's total."""

from __future__ import annotations

import pytest

from fooddispatch.app import create_app
from kernel.outbox import write_event
from tests.e2e.orders.orders_helpers import cart, eventually, make_customer, make_shop, ok


@pytest.fixture
def app(settings):
    return create_app(settings, components=("catalog", "payments", "memberships", "orders"))


async def deliver(client, db, make_principal, shop, oid: str, cust: dict) -> str:
    """Accept, ready, assign (as dispatch would), pick up and deliver the order; returns the courier's id."""
    await ok(await client.post(f"/v1/orders/{oid}/accept", json={"prep_time_s": 900}, headers=shop.staff))
    await ok(await client.post(f"/v1/orders/{oid}/ready", headers=shop.staff))
    courier, courier_headers = await make_principal("courier")
    async with db.acquire() as conn:
        await write_event(conn, "dispatch.assigned", {"offer_id": "ofr_1", "courier_id": courier.account_id,
                                                      "order_ids": [oid], "at": "2025-01-01T00:00:00Z"})

    async def assigned() -> bool:
        return (await ok(await client.get(f"/v1/orders/{oid}", headers=cust)))["courier_id"] == courier.account_id

    await eventually(assigned)
    async with db.acquire() as conn:
        await write_event(conn, "courier.picked_up", {"courier_id": courier.account_id, "order_id": oid,
                                                      "at": "2025-01-01T00:00:00Z", "proof": None})

    async def picked_up() -> bool:
        return (await ok(await client.get(f"/v1/orders/{oid}", headers=cust)))["status"] == "picked_up"

    await eventually(picked_up)
    done = await ok(await client.post(f"/v1/orders/{oid}/deliver", json={"proof": {"code": "1234"}},
                                      headers=courier_headers))
    assert done["status"] == "delivered"
    return courier.account_id


def fee(quote: dict, kind: str) -> int | None:
    return next((f["amount"]["amount"] for f in quote["fees"] if f["kind"] == kind), None)


async def test_a_member_quote_takes_the_benefits_off_and_checkout_charges_it(client, db, make_principal,
                                                                            settings) -> None:
    shop = await make_shop(client, make_principal)
    plan = await ok(await client.post("/v1/plans", headers={**shop.operator, "Idempotency-Key": "plan"}, json={
        "name": "Plus", "region": settings.region, "amount": 799, "currency": "EUR", "interval": "month",
        "trial_days": 30, "benefits": {"free_delivery_min_subtotal": 1000, "service_fee_discount_bps": 5000}}))
    _, cust, pm = await make_customer(client, make_principal)
    plain = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    assert fee(plain, "membership") is None

    sub = await ok(await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": pm},
                                     headers={**cust, "Idempotency-Key": "sub"}))
    assert sub["status"] == "trialing"
    member = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    saved = plain["delivery_fee"]["amount"] + plain["service_fee"]["amount"] // 2
    assert fee(member, "membership") == -saved
    assert member["total"]["amount"] == plain["total"]["amount"] - saved
    assert member["delivery_fee"] == plain["delivery_fee"]  # the courier's fee is the same; the plan pays it

    order = await ok(await client.post("/v1/orders", json={"quote_id": member["id"], "payment_method_id": pm},
                                       headers={**cust, "Idempotency-Key": "order"}), 201)
    assert order["total"]["amount"] == member["total"]["amount"]
    courier = await deliver(client, db, make_principal, shop, order["id"], cust)

    # The courier and the restaurant get what a plain bill gives them; the platform funds the saving.
    async with db.acquire() as conn:
        balances = {r["id"]: r["balance"] for r in await conn.fetch("SELECT id, balance FROM ledger_accounts")}
        sums = await conn.fetchval("SELECT sum(amount) FROM postings")
    assert sums == 0
    restaurant = 2700 - 405  # net food (tax excluded) minus 15 % commission, as without a membership
    assert abs(balances[f"restaurant_payable:{shop.tenant_id}:EUR"]) == restaurant
    assert abs(balances[f"courier_earnings:{courier}:EUR"]) == plain["delivery_fee"]["amount"] + 200
    assert abs(balances["platform_revenue:EUR"]) == plain["service_fee"]["amount"] + 405
    assert balances["platform_promotions:EUR"] == saved

    # benefits stop when the subscription is no longer active or trialing
    async with db.acquire() as conn:
        await conn.execute("UPDATE membership_subscriptions SET status = 'past_due' WHERE id = $1", sub["id"])
    lapsed = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    assert fee(lapsed, "membership") is None and lapsed["total"] == plain["total"]


async def test_a_plan_of_another_region_gives_nothing_here(client, make_principal) -> None:
    shop = await make_shop(client, make_principal)
    plan = await ok(await client.post("/v1/plans", headers={**shop.operator, "Idempotency-Key": "plan2"}, json={
        "name": "Elsewhere", "region": "elsewhere", "amount": 799, "currency": "EUR", "interval": "month",
        "trial_days": 7, "benefits": {"free_delivery_min_subtotal": 0, "service_fee_discount_bps": 10000}}))
    _, cust, pm = await make_customer(client, make_principal)
    await ok(await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": pm},
                               headers={**cust, "Idempotency-Key": "sub2"}))
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    assert fee(quote, "membership") is None
