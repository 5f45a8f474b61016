"""Unused holds over HTTP: a customer who authenticates a 3-D Secure checkout and never checks out again leaves an
authorized hold that pays for no order; the payments loop voids it once it is older than
`payments_unused_hold_seconds` (an hour by default). A hold an order took is never touched, and a checkout that
reaches a hold while the sweeper voids it is refused with 409, placing nothing. A manual-capture intent an
integrator created through `POST /v1/payment_intents` has no reference either, but it is never the sweeper's."""

from __future__ import annotations

import asyncio

import pytest

from fooddispatch.components import payments as component
from payments import store
from payments.web import PAYMENTS
from tests.e2e.orders.orders_helpers import cart, eventually, make_customer, make_shop, ok

CARD_3DS = "4000002500003155"
HOUR = 3600


@pytest.fixture
def sweep_every() -> float:
    """Seconds between the payments loop's rounds; a test that drives the sweeper by hand keeps the loop away."""
    return 3600.0


@pytest.fixture
def app(settings, sweep_every, monkeypatch):
    from fooddispatch.app import create_app

    monkeypatch.setattr(component, "RESOLVE_EVERY_SECONDS", sweep_every)
    return create_app(settings, components=("catalog", "payments", "orders"))


async def _stocked_shop(client, make_principal):
    shop = await make_shop(client, make_principal)
    await ok(await client.put(f"/v1/merchant/stores/{shop.store_id}/stock/itm_fries", json={"count": 5},
                              headers=shop.staff))
    return shop


async def _authorized_hold(client, cust: dict, pm: str, quote: dict) -> str:
    """Checkout answers 402 authentication_required; the customer authenticates: an authorized hold, unused."""
    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_method_id": pm},
                             headers={**cust, "Idempotency-Key": "first"})
    err = (await resp.json())["error"]
    assert resp.status == 402 and err["code"] == "authentication_required", err
    confirmed = await ok(await client.post(f"/v1/payment_intents/{err['payment_intent']}/confirm",
                                           json={"authentication": "succeeded"},
                                           headers={**cust, "Idempotency-Key": "confirm"}))
    assert confirmed["status"] == "requires_capture"
    return str(confirmed["id"])


async def _age(db, intent_id: str, seconds: float) -> None:
    async with db.acquire() as conn:
        await conn.execute("UPDATE payment_intents SET updated_at = now() - make_interval(secs => $2) WHERE id = $1",
                           intent_id, seconds)


async def _fries(client, shop) -> int:
    stock = await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}/stock", headers=shop.staff))
    return {s["item_id"]: s["count"] for s in stock["items"]}["itm_fries"]


@pytest.mark.parametrize("sweep_every", [0.1])
async def test_the_payments_loop_voids_an_hour_old_unused_hold_and_checkout_then_refuses_it(
        client, db, make_principal) -> None:
    async with db.acquire() as conn:
        await store.insert_webhook_endpoint(conn, url="https://hooks.example/p", secret="whsec_test",
                                            event_types=["payment_intent.canceled"], created_by="test")
    shop = await _stocked_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal, CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    intent_id = await _authorized_hold(client, cust, pm, quote)
    await asyncio.sleep(0.5)  # several rounds of the loop: a fresh hold is the customer's to use
    fresh = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert fresh["status"] == "requires_capture"

    await _age(db, intent_id, HOUR + 60)

    async def voided() -> dict | None:
        intent = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
        return intent if intent["status"] == "canceled" else None

    intent = await eventually(voided)
    assert (intent["cancellation_reason"], intent["amount_capturable"]) == ("abandoned", 0)
    inner = client.app[PAYMENTS].processor.inner
    async with db.acquire() as conn:
        charge = await conn.fetchval("SELECT processor_ref FROM payment_intents WHERE id = $1", intent_id)
        assert await conn.fetchval("SELECT count(*) FROM payment_webhook_deliveries "
                                   "WHERE event_type = 'payment_intent.canceled'") == 1
    assert (await inner.charge(charge)).status == "voided"

    resp = await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_intent": intent_id},
                             headers={**cust, "Idempotency-Key": "second"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "payment_intent_unexpected_state"
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
    assert await _fries(client, shop) == 5


@pytest.mark.parametrize("sweep_every", [0.1])
async def test_the_payments_loop_never_voids_a_hold_an_order_took(client, db, make_principal) -> None:
    shop = await _stocked_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal, CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    intent_id = await _authorized_hold(client, cust, pm, quote)
    order = await ok(await client.post("/v1/orders", json={"quote_id": quote["id"], "payment_intent": intent_id},
                                       headers={**cust, "Idempotency-Key": "second"}), 201)
    await _age(db, intent_id, 7 * 24 * HOUR)
    await asyncio.sleep(0.6)  # several rounds of the loop
    intent = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert (intent["status"], intent["amount_capturable"]) == ("requires_capture", quote["total"]["amount"])
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT reference FROM payment_intents WHERE id = $1", intent_id) == order["id"]
    # The order's own lifecycle releases it: a restaurant rejection voids the hold.
    rejected = await ok(await client.post(f"/v1/orders/{order['id']}/reject", json={"reason": "too_busy"},
                                          headers=shop.staff))
    assert rejected["status"] == "rejected"
    intent = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert intent["status"] == "canceled" and intent["cancellation_reason"] != "abandoned"


@pytest.mark.parametrize("sweep_every", [0.1])
async def test_the_payments_loop_never_voids_a_manual_capture_intent_created_through_the_api(
        client, db, make_principal) -> None:
    shop = await _stocked_shop(client, make_principal)
    _, cust, pm_3ds = await make_customer(client, make_principal, CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    checkout_hold = await _authorized_hold(client, cust, pm_3ds, quote)
    pm = await ok(await client.post("/v1/payment_methods", headers={**cust, "Idempotency-Key": "pm-api"}, json={
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}))
    api_hold = await ok(await client.post("/v1/payment_intents", headers={**cust, "Idempotency-Key": "api-hold"}, json={
        "amount": 4200, "currency": "EUR", "payment_method": pm["id"], "confirm": True, "capture_method": "manual",
        "metadata": {"pos_ticket": "T-17"}}))
    assert (api_hold["status"], api_hold["capture_method"]) == ("requires_capture", "manual")
    await _age(db, api_hold["id"], 6 * 24 * HOUR)  # a day short of the processor's 7-day lapse
    await _age(db, checkout_hold, HOUR + 60)

    async def voided() -> dict | None:
        intent = await ok(await client.get(f"/v1/payment_intents/{checkout_hold}", headers=cust))
        return intent if intent["status"] == "canceled" else None

    assert (await eventually(voided))["cancellation_reason"] == "abandoned"  # the loop is sweeping
    await asyncio.sleep(0.5)  # several more rounds
    kept = await ok(await client.get(f"/v1/payment_intents/{api_hold['id']}", headers=cust))
    assert (kept["status"], kept["amount_capturable"], kept["cancellation_reason"]) == ("requires_capture", 4200, None)
    async with db.acquire() as conn:
        charge = await conn.fetchval("SELECT processor_ref FROM payment_intents WHERE id = $1", api_hold["id"])
    assert (await client.app[PAYMENTS].processor.inner.charge(charge)).status == "authorized"


async def test_a_checkout_reaching_a_hold_the_sweeper_is_voiding_gets_409_and_places_nothing(
        client, db, make_principal) -> None:
    shop = await _stocked_shop(client, make_principal)
    _, cust, pm = await make_customer(client, make_principal, CARD_3DS)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    intent_id = await _authorized_hold(client, cust, pm, quote)
    await _age(db, intent_id, HOUR + 60)
    service = client.app[PAYMENTS]
    service.processor.inner.latency = 0.5  # the sweeper holds the row while the processor voids the hold
    sweeping = asyncio.ensure_future(service.release_unused_holds(HOUR))
    async with db.acquire() as watcher:
        async def checkout_waits_for_the_sweeper() -> bool:
            return await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                " AND pid <> pg_backend_pid()") == 1

        async def sweeper_holds_the_row() -> bool:
            return bool(await watcher.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'payment_intents' AND l.mode = 'RowShareLock' AND l.granted"))

        await eventually(sweeper_holds_the_row, every=0.005)
        checkout = asyncio.ensure_future(client.post(
            "/v1/orders", json={"quote_id": quote["id"], "payment_intent": intent_id},
            headers={**cust, "Idempotency-Key": "second"}))
        await eventually(checkout_waits_for_the_sweeper, every=0.01)
        resp = await checkout
    assert await sweeping == 1
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "payment_intent_unexpected_state"
    intent = await ok(await client.get(f"/v1/payment_intents/{intent_id}", headers=cust))
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "abandoned")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
        assert await conn.fetchval("SELECT count(*) FROM catalog_reservations") == 0
    assert await _fries(client, shop) == 5
