"""A quote makes one order, over HTTP: ordering it again with a fresh Idempotency-Key is 409
`quote_already_used` naming the order (and places no hold), however the two checkouts race;
the same key still replays; a checkout that did not place its order gives the quote back."""

from __future__ import annotations

import asyncio

from orders_helpers import VISA_OK, cart, ok

from payments.web import PAYMENTS


async def _checkout(client, headers: dict, quote_id: str, pm: str, key: str):
    return await client.post("/v1/orders", json={"quote_id": quote_id, "payment_method_id": pm},
                             headers={**headers, "Idempotency-Key": key})


async def _holds(db, customer_id: str) -> list[str]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT status FROM payment_intents WHERE customer_id = $1", customer_id)
    return [r["status"] for r in rows]


async def test_a_quote_ordered_again_with_another_key_is_409_naming_the_order_and_holds_nothing(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    customer_id, cust, pm = await customer_factory()
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    first = await ok(await _checkout(client, cust, quote["id"], pm, "k1"), 201)

    again = await _checkout(client, cust, quote["id"], pm, "k2")
    err = (await again.json())["error"]
    assert again.status == 409, err
    assert (err["code"], err["param"], err["order_id"]) == ("quote_already_used", "quote_id", first["id"])
    # The first key still replays its order.
    assert (await ok(await _checkout(client, cust, quote["id"], pm, "k1"), 201))["id"] == first["id"]
    assert await _holds(db, customer_id) == ["requires_capture"]
    assert (await client.app[PAYMENTS].processor.inner.authorizations()) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1


async def test_concurrent_checkouts_of_one_quote_with_two_keys_make_one_order_and_one_hold(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    customer_id, cust, pm = await customer_factory()
    processor = client.app[PAYMENTS].processor.inner
    processor.latency = 0.1  # both checkouts are inside their transactions at once
    placed: list[str] = []
    for round_ in range(4):
        quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
        responses = await asyncio.gather(*(_checkout(client, cust, quote["id"], pm, f"r{round_}-{side}")
                                           for side in ("a", "b")))
        bodies = [await r.json() for r in responses]
        assert sorted(r.status for r in responses) == [201, 409], bodies
        won = next(b for r, b in zip(responses, bodies, strict=True) if r.status == 201)
        lost = next(b for r, b in zip(responses, bodies, strict=True) if r.status == 409)
        assert lost["error"]["code"] == "quote_already_used" and lost["error"]["order_id"] == won["id"]
        placed.append(won["id"])
    async with db.acquire() as conn:
        orders = await conn.fetch("SELECT id, quote_id FROM orders ORDER BY id")
    assert sorted(o["id"] for o in orders) == sorted(placed)
    assert len({o["quote_id"] for o in orders}) == 4
    # One hold per order and not one more: the loser was refused before it authorized anything.
    assert await _holds(db, customer_id) == ["requires_capture"] * 4
    assert (await processor.authorizations()) == 4


async def test_a_declined_checkout_gives_the_quote_back_for_another_card(
        client, db, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    customer_id, cust, declined_pm = await customer_factory(card="4000000000000002")
    good = await ok(await client.post(
        "/v1/payment_methods", headers={**cust, "Idempotency-Key": "second-card"},
        json={"card": {"number": VISA_OK, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    declined = await _checkout(client, cust, quote["id"], declined_pm, "d1")
    assert declined.status == 402
    order = await ok(await _checkout(client, cust, quote["id"], good["id"], "d2"), 201)
    assert order["status"] == "placed"
    assert sorted(await _holds(db, customer_id)) == ["requires_capture", "requires_payment_method"]
