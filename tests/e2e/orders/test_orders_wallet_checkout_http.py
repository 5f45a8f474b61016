"""Paying from the wallet at checkout: a balance too low for the order says so (402
`insufficient_wallet_balance`, not a card decline), and once topped up the same quote goes through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orders_helpers import cart, ok


async def test_a_wallet_too_low_for_the_order_is_402_insufficient_wallet_balance(
        client, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    customer_id, cust, _pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    body = {"quote_id": quote["id"], "payment_method_id": "wallet"}
    resp = await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "w1"})
    err = (await resp.json())["error"]
    assert resp.status == 402, err
    assert (err["code"], err["decline_code"]) == ("insufficient_wallet_balance", "insufficient_funds")
    assert "wallet" in err["message"]

    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    await ok(await client.post("/v1/customer_credits", headers={**shop.operator, "Idempotency-Key": "c1"}, json={
        "customer": customer_id, "amount": quote["total"]["amount"], "currency": "EUR", "expires_at": expires}), 201)
    order = await ok(await client.post("/v1/orders", json=body, headers={**cust, "Idempotency-Key": "w2"}), 201)
    assert order["total"] == quote["total"]
