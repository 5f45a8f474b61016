"""Checkout over HTTP in few statements, and what the short path must still guarantee: many buyers racing for a
few units never oversell, losers leave no hold and no event, every placed order's events were written with it."""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import replace

from aiohttp import web
from orders_helpers import cart, make_customer, make_shop, ok

from fooddispatch.app import create_app
from fooddispatch.keys import DB

ROUTE: contextvars.ContextVar[str] = contextvars.ContextVar("test_route", default="background")


async def test_one_checkout_sends_eight_statements_of_its_own(aiohttp_client, settings, make_principal) -> None:
    app = create_app(replace(settings, db_pool_min=2, db_pool_max=2), components=("catalog", "payments", "orders"))
    sent: list[tuple[str, str]] = []

    @web.middleware
    async def tag(request: web.Request, handler):
        ROUTE.set(f"{request.method} {request.path}")
        return await handler(request)

    app.middlewares.insert(0, tag)
    client = await aiohttp_client(app)
    conns = [await app[DB].acquire() for _ in range(2)]  # every pooled connection logs what it sends
    for conn in conns:
        conn.add_query_logger(lambda record: sent.append((ROUTE.get(), record.query)))
    for conn in conns:
        await app[DB].release(conn)
    shop = await make_shop(client, make_principal)
    _, headers, pm = await make_customer(client, make_principal)

    async def checkout(key: str) -> list[str]:
        quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=headers), 201)
        await asyncio.sleep(0.05)
        sent.clear()
        await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                                   headers={**headers, "Idempotency-Key": key}), 201)
        for _ in range(200):  # the fraud decision is written by a task, maybe after the response
            await asyncio.sleep(0.025)
            if any("fraud_decisions" in q for route, q in sent if route == "POST /v1/orders"):
                break
        # Not counted: asyncpg's questions about types, asked once per connection at a statement's first use.
        return [q for route, q in sent if route == "POST /v1/orders" and "pg_catalog" not in q
                and "set_config('jit'" not in q]

    await checkout("warm")  # first use of each statement on a connection also asks for type information
    statements = await checkout("k1")
    own = [q for q in statements if "idempotency_keys" not in q]  # the HTTP stack's are not checkout's
    apart = [q for q in own if q.startswith("INSERT INTO fraud_decisions")]
    inside = [q.split(None, 1)[0].rstrip(";").upper() for q in own if q not in apart]
    # BEGIN, the quote claimed for the order (+ an order this key made), the store with its menu and stock,
    # the reservation, the payment method, the intent with its event, the order with its lines, history and
    # event, COMMIT.
    assert inside == ["BEGIN", "WITH", "SELECT", "WITH", "SELECT", "WITH", "WITH", "COMMIT"], own
    # And the fraud decision, written apart from the checkout's transaction (a rollback must not lose it).
    assert len(apart) == 1, own


async def test_forty_buyers_for_ten_units_make_ten_orders_and_nothing_more(client, make_principal, db) -> None:
    shop = await make_shop(client, make_principal)
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", headers=shop.staff,
                              json={"count": 10}))
    buyers = [await make_customer(client, make_principal) for _ in range(40)]
    lines = [{"item_id": "itm_fries", "quantity": 1}, {"item_id": "itm_burger", "quantity": 1}]
    quotes = [await ok(await client.post("/v1/quotes", json=cart(shop.store_id, lines=lines), headers=h), 201)
              for _, h, _ in buyers]
    responses = await asyncio.gather(*(
        client.post("/v1/orders", json={"quote_id": q["id"], "payment_method_id": pm},
                    headers={**h, "Idempotency-Key": "race"})
        for (_, h, pm), q in zip(buyers, quotes, strict=True)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(201) == 10 and set(statuses) <= {201, 409, 422}, statuses
    async with db.acquire() as conn:
        orders = await conn.fetch("SELECT id, intent_id FROM orders")
        assert len(orders) == 10
        assert await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_fries'") == 0
        assert await conn.fetchval("SELECT sum(quantity) FROM catalog_reservations WHERE released_at IS NULL") == 10
        intents = await conn.fetch("SELECT id, reference, status FROM payment_intents")
        assert sorted((i["id"], i["reference"]) for i in intents) == sorted((o["intent_id"], o["id"]) for o in orders)
        assert {i["status"] for i in intents} == {"requires_capture"}
        placed = await conn.fetch("SELECT aggregate_id FROM outbox WHERE type = 'order.placed'")
        authorized = await conn.fetch("SELECT aggregate_id FROM outbox WHERE type = 'payment.authorized'")
        assert sorted(e["aggregate_id"] for e in placed) == sorted(o["id"] for o in orders)
        assert sorted(e["aggregate_id"] for e in authorized) == sorted(o["intent_id"] for o in orders)
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'item.sold_out'") == 1


async def test_a_retry_after_the_first_checkout_committed_returns_the_same_order(client, make_principal, db) -> None:
    shop = await make_shop(client, make_principal)
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", headers=shop.staff,
                              json={"count": 5}))
    _, headers, pm = await make_customer(client, make_principal)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=headers), 201)
    body = {"quote_id": quote["id"], "payment_method_id": pm}
    first, second = await asyncio.gather(
        client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": "twice"}),
        client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": "twice"}))
    answers = sorted([(r.status, await r.json()) for r in (first, second)], key=lambda a: a[0])
    # Whichever arrived second waited on the first (409 idempotency_in_progress) or replayed its order.
    assert answers[0][0] == 201 and answers[1][0] in (201, 409), answers
    placed = answers[0][1]["id"]
    again = await ok(await client.post("/v1/orders", json=body, headers={**headers, "Idempotency-Key": "twice"}), 201)
    assert again["id"] == placed
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 1
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
        assert await conn.fetchval("SELECT count FROM catalog_stock WHERE item_id = 'itm_fries'") == 4
