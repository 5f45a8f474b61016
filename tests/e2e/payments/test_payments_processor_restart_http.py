"""The test-mode processor keeps its charges as a real one does, beyond our process: what one app
instance authorized, a new instance (a new processor object, the same database) captures and
refunds over HTTP. A charge the processor does not know is a 502 `processor_error`, never a 500,
and a delivery whose money cannot be collected still stands (collected later, or left for an
operator)."""

from __future__ import annotations

from datetime import UTC, datetime

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from kernel.http import OPERATOR
from orders.web import ORDERS
from payments import ledger
from payments.web import PAYMENTS
from tests.e2e.orders.orders_helpers import eventually, make_customer, make_shop, ok, place
from tests.e2e.payments.conftest import key_headers

ORDER_APP = ("catalog", "payments", "orders")
TOTAL = 2700 + 299 + 270 + 189 + 200  # the orders conftest cart


async def _books_balance(db) -> None:
    async with db.acquire() as conn:
        assert set((await ledger.sums_per_currency(conn)).values()) <= {0}
        assert await ledger.balances_match_postings(conn) == []


async def _authorized(client, make_principal) -> tuple[dict, dict, dict]:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    pm = await ok(await client.post("/v1/payment_methods", headers=key_headers(customer), json={
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    intent = await ok(await client.post("/v1/payment_intents", headers=key_headers(customer), json={
        "amount": 2500, "currency": "EUR", "payment_method": pm["id"], "confirm": True}))
    assert intent["status"] == "requires_capture"
    return customer, operator, intent


async def _forget_every_charge(db) -> None:
    """The processor loses its records (or the charges were made before it kept any)."""
    async with db.acquire() as conn:
        await conn.execute("DELETE FROM test_processor_charges")


async def test_an_intent_authorized_before_a_restart_is_captured_and_refunded_after_it(
        aiohttp_client, settings, db, make_principal) -> None:
    first = await aiohttp_client(create_app(settings, components=("payments",)))
    customer, operator, intent = await _authorized(first, make_principal)
    await first.close()  # the process ends, and its processor object with it

    second = await aiohttp_client(create_app(settings, components=("payments",)))
    assert second.app[PAYMENTS].processor.inner is not first.app[PAYMENTS].processor.inner
    captured = await ok(await second.post(f"/v1/payment_intents/{intent['id']}/capture",
                                          headers=key_headers(operator), json={}))
    assert (captured["status"], captured["amount_received"]) == ("succeeded", 2500)
    refund = await ok(await second.post("/v1/refunds", headers=key_headers(operator),
                                        json={"payment_intent": intent["id"], "amount": 1000}))
    assert refund["status"] == "succeeded"
    got = await ok(await second.get(f"/v1/payment_intents/{intent['id']}", headers=customer))
    assert (got["amount_received"], got["amount_refunded"]) == (2500, 1000)
    async with db.acquire() as conn:
        charge_id = await conn.fetchval("SELECT processor_ref FROM payment_intents WHERE id = $1", intent["id"])
    charge = await second.app[PAYMENTS].processor.inner.charge(charge_id)
    assert (charge.status, charge.captured, charge.refunded) == ("captured", 2500, 1000)
    await _books_balance(db)


async def test_an_order_placed_before_a_restart_is_delivered_and_captured_after_it(
        aiohttp_client, settings, db, make_principal) -> None:
    first = await aiohttp_client(create_app(settings, components=ORDER_APP))
    shop = await make_shop(first, make_principal)
    _, cust, pm = await make_customer(first, make_principal)
    order = await place(first, cust, pm, shop.store_id)
    await ok(await first.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    await first.close()

    second = await aiohttp_client(create_app(settings, components=ORDER_APP))
    courier, courier_headers = await make_principal("courier")
    await ok(await second.post(f"/v1/orders/{order['id']}/courier", json={"courier_id": courier.account_id},
                               headers=shop.operator))
    await ok(await second.post(f"/v1/orders/{order['id']}/pickup", json={}, headers=courier_headers))
    done = await ok(await second.post(f"/v1/orders/{order['id']}/deliver", json={}, headers=courier_headers))
    assert (done["status"], done["captured"]["amount"]) == ("delivered", TOTAL)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT amount_captured FROM payment_intents WHERE reference = $1",
                                   order["id"]) == TOTAL
        assert await conn.fetchval("SELECT count(*) FROM order_collections") == 0
    await _books_balance(db)


async def test_a_charge_the_processor_does_not_know_is_a_502_processor_error_never_a_500(
        client, db, make_principal) -> None:
    customer, operator, intent = await _authorized(client, make_principal)
    await _forget_every_charge(db)
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/capture", headers=key_headers(operator), json={})
    err = (await resp.json())["error"]
    assert resp.status == 502 and (err["code"], err["processor_code"]) == ("processor_error", "resource_missing")
    got = await ok(await client.get(f"/v1/payment_intents/{intent['id']}", headers=customer))
    assert (got["status"], got["amount_received"]) == ("requires_capture", 0)  # nothing moved
    # Nothing is held on a card for a charge the processor does not know: the cancel goes through.
    canceled = await ok(await client.post(f"/v1/payment_intents/{intent['id']}/cancel",
                                          headers=key_headers(customer), json={}))
    assert canceled["status"] == "canceled"

    _, operator, captured = await _authorized(client, make_principal)
    await ok(await client.post(f"/v1/payment_intents/{captured['id']}/capture", headers=key_headers(operator),
                               json={}))
    await _forget_every_charge(db)
    resp = await client.post("/v1/refunds", headers=key_headers(operator),
                             json={"payment_intent": captured["id"], "amount": 100})
    assert resp.status == 502 and (await resp.json())["error"]["code"] == "processor_error"
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT amount_refunded FROM payment_intents WHERE id = $1", captured["id"]) == 0
        assert await conn.fetchval("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == 0
    await _books_balance(db)


async def test_a_delivery_stands_when_the_processor_refuses_and_is_left_for_an_operator(
        aiohttp_client, settings, db, make_principal) -> None:
    client = await aiohttp_client(create_app(settings, components=ORDER_APP))
    shop = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    await _forget_every_charge(db)
    courier, courier_headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{order['id']}/courier", json={"courier_id": courier.account_id},
                               headers=shop.operator))
    await ok(await client.post(f"/v1/orders/{order['id']}/pickup", json={}, headers=courier_headers))
    done = await ok(await client.post(f"/v1/orders/{order['id']}/deliver", json={}, headers=courier_headers))
    assert (done["status"], done["captured"]["amount"]) == ("delivered", 0)
    async with db.acquire() as conn:
        kept = await conn.fetchrow("SELECT last_error, failed_at FROM order_collections WHERE order_id = $1",
                                   order["id"])
        intent = await conn.fetchrow("SELECT status, amount_captured FROM payment_intents WHERE reference = $1",
                                     order["id"])
        splits = await conn.fetchval("SELECT count(*) FROM journal_entries WHERE reference = $1", order["id"])
    assert kept["last_error"].startswith("processor_error") and kept["failed_at"] is not None  # not retried
    assert (intent["status"], intent["amount_captured"], splits) == ("requires_capture", 0, 0)
    assert await client.app[ORDERS].lifecycle.money.collect_due() == 0
    # A tip raised now would be taken twice (on its own intent, and by the collection's capture): refused.
    raised = await client.post(f"/v1/orders/{order['id']}/tip", json={"tip": 900}, headers=cust)
    assert raised.status == 409 and (await raised.json())["error"]["code"] == "tip_not_changeable"
    await _books_balance(db)


async def test_a_delivery_during_a_processor_outage_is_collected_by_the_sweep_afterwards(
        aiohttp_client, settings, db, make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=ORDER_APP)
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    courier, courier_headers = await make_principal("courier")
    await ok(await client.post(f"/v1/orders/{order['id']}/courier", json={"courier_id": courier.account_id},
                               headers=shop.operator))
    await ok(await client.post(f"/v1/orders/{order['id']}/pickup", json={}, headers=courier_headers))
    processor = app[PAYMENTS].processor
    processor.backoff, processor.inner.outage = 0.001, True
    done = await ok(await client.post(f"/v1/orders/{order['id']}/deliver", json={}, headers=courier_headers))
    assert (done["status"], done["captured"]["amount"]) == ("delivered", 0)
    async with db.acquire() as conn:
        pending = await conn.fetchrow("SELECT attempts, last_error, failed_at FROM order_collections "
                                      "WHERE order_id = $1", order["id"])
    assert pending["last_error"].startswith("processor_unavailable") and pending["failed_at"] is None

    processor.inner.outage = False
    clock.advance(31)  # the first retry is due 30 s later; the component's sweep or this one collects it

    async def collected() -> dict | None:
        await app[ORDERS].lifecycle.money.collect_due()
        got = await ok(await client.get(f"/v1/orders/{order['id']}", headers=cust))
        return got if got["captured"]["amount"] else None

    got = await eventually(collected)
    assert got["captured"]["amount"] == TOTAL
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM order_collections") == 0
        assert await conn.fetchval("SELECT amount_captured FROM payment_intents WHERE reference = $1",
                                   order["id"]) == TOTAL
        assert await conn.fetchval("SELECT count(*) FROM journal_entries WHERE kind = 'split' AND reference = $1",
                                   order["id"]) == 1
    async with db.acquire() as conn:  # the processor's own records: one capture, though asked twice or more
        lines = await conn.fetch("SELECT type, amount FROM test_processor_settlements")
    assert [(line["type"], line["amount"]) for line in lines] == [("capture", TOTAL)]
    await _books_balance(db)
