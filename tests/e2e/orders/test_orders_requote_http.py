"""A quote checkout cannot honour (expired, or priced differently now) answers 409 with a fresh
quote and keeps nothing of the attempt: no order, no hold, and the old quote is not left claimed
(checking it out again says the same 409, never `quote_already_used` naming an order that does
not exist)."""

from __future__ import annotations

from datetime import UTC, datetime

from orders_helpers import cart, make_customer, make_shop, ok

from fooddispatch.app import create_app
from kernel.clock import ManualClock


async def _checkout(client, headers: dict, quote_id: str, pm: str, key: str):
    return await client.post("/v1/orders", json={"quote_id": quote_id, "payment_method_id": pm},
                             headers={**headers, "Idempotency-Key": key})


async def test_an_expired_quote_is_409_with_a_fresh_quote_that_checks_out(aiohttp_client, settings, db,
                                                                          make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    client = await aiohttp_client(create_app(settings, clock=clock, components=("catalog", "payments", "orders")))
    shop = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    clock.advance(301)  # quotes hold for 5 minutes

    for key in ("late-1", "late-2"):  # the second: the first attempt gave the quote back
        resp = await _checkout(client, cust, quote["id"], pm, key)
        err = (await ok(resp, 409))["error"]
        assert (err["code"], err["param"]) == ("quote_expired", "quote_id")
        fresh = err["quote"]
        assert fresh["id"] != quote["id"] and fresh["total"] == quote["total"]
        assert datetime.fromisoformat(fresh["expires_at"]) > clock.now()
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 0
        assert await conn.fetchval("SELECT order_id FROM order_quotes WHERE id = $1", quote["id"]) is None

    order = await ok(await _checkout(client, cust, fresh["id"], pm, "fresh"), 201)
    assert order["total"] == fresh["total"] and order["status"] == "placed"


async def test_a_changed_price_gives_the_quote_back_so_it_says_so_again(client, shop_factory,
                                                                       customer_factory, db) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    await ok(await client.patch(f"/v1/merchant/stores/{shop.store_id}/items/itm_fries", json={"price": 450},
                                headers=shop.staff))
    for key in ("pc-1", "pc-2"):
        err = (await ok(await _checkout(client, cust, quote["id"], pm, key), 409))["error"]
        assert err["code"] == "price_changed"
        assert err["quote"]["total"]["amount"] > quote["total"]["amount"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await conn.fetchval("SELECT order_id FROM order_quotes WHERE id = $1", quote["id"]) is None
