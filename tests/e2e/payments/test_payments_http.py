"""Payments over HTTP as a client uses them: test cards, 3-D Secure, capture,
refunds, idempotency, an outage and its recovery, and reconciliation."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from kernel.http import OPERATOR
from payments.web import PAYMENTS

_keys = itertools.count(1)


def key_headers(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or f"t-{next(_keys)}"}


@pytest.mark.parametrize("number,status,code,decline_code", [
    ("4242424242424242", 200, None, None),
    ("4000000000000002", 402, "card_declined", "generic_decline"),
    ("4000000000009995", 402, "card_declined", "insufficient_funds"),
    ("4000000000000069", 402, "expired_card", "expired_card"),
    ("4000000000000127", 402, "incorrect_cvc", "incorrect_cvc"),
    ("4000000000000119", 402, "processing_error", "processing_error"),
    ("4000002500003155", 200, None, None),
    ("4100000000000019", 402, "card_declined", "fraudulent"),
])
async def test_each_test_card_has_stripes_outcome(client, make_principal, add_card, pay, number, status, code,
                                                  decline_code) -> None:
    _, customer = await make_principal("customer")
    pm = await add_card(customer, number)
    resp = await pay(customer, pm)
    body = await resp.json()
    assert resp.status == status, body
    if status == 402:
        err = body["error"]
        assert (err["type"], err["code"], err["decline_code"]) == ("card_error", code, decline_code)
        intent = await (await client.get(f"/v1/payment_intents/{err['payment_intent']}", headers=customer)).json()
        assert intent["status"] == "requires_payment_method"
        assert intent["last_payment_error"]["decline_code"] == decline_code
    elif number == "4000002500003155":
        assert body["status"] == "requires_action" and body["next_action"]["type"] == "use_stripe_sdk"
    else:
        assert body["status"] == "requires_capture" and body["amount_capturable"] == 2500


async def test_3d_secure_then_capture_then_partial_refunds(client, make_principal, add_card, pay) -> None:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    pm = await add_card(customer, "4000002500003155")
    intent = await (await pay(customer, pm, amount=4000)).json()
    assert intent["status"] == "requires_action"
    failed_card = await add_card(customer, "4000002500003155")
    other = await (await pay(customer, failed_card, amount=100)).json()
    resp = await client.post(f"/v1/payment_intents/{other['id']}/confirm", headers=key_headers(customer),
                             json={"authentication": "failed"})
    assert resp.status == 402
    assert (await resp.json())["error"]["code"] == "payment_intent_authentication_failure"
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/confirm", headers=key_headers(customer),
                             json={"authentication": "succeeded"})
    assert resp.status == 200 and (await resp.json())["status"] == "requires_capture"
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/capture", headers=key_headers(operator),
                             json={"amount_to_capture": 3000})
    captured = await resp.json()
    assert (captured["status"], captured["amount_received"], captured["amount_capturable"]) == ("succeeded", 3000, 0)
    for amount in (1000, 1500):
        resp = await client.post("/v1/refunds", headers=key_headers(operator),
                                 json={"payment_intent": intent["id"], "amount": amount})
        assert resp.status == 200 and (await resp.json())["status"] == "succeeded"
    resp = await client.post("/v1/refunds", headers=key_headers(operator),
                             json={"payment_intent": intent["id"], "amount": 501})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "amount_too_large"
    final = await (await client.get(f"/v1/payment_intents/{intent['id']}", headers=customer)).json()
    assert final["amount_refunded"] == 2500


async def test_customers_cannot_see_or_use_each_others_methods(client, make_principal, add_card, pay) -> None:
    _, ana = await make_principal("customer")
    _, bob = await make_principal("customer")
    pm = await add_card(ana)
    resp = await pay(bob, pm)
    assert resp.status == 404 and (await resp.json())["error"]["param"] == "payment_method"
    listed = await (await client.get("/v1/payment_methods", headers=bob)).json()
    assert listed["data"] == []
    mine = await (await client.get("/v1/payment_methods", headers=ana)).json()
    assert [p["card"]["last4"] for p in mine["data"]] == ["4242"] and mine["data"][0]["is_default"]
    intent = await (await pay(ana, pm)).json()
    assert (await client.get(f"/v1/payment_intents/{intent['id']}", headers=bob)).status == 404
    assert (await client.post(f"/v1/payment_methods/{pm}/detach", headers=key_headers(ana))).status == 200
    assert (await pay(ana, pm)).status == 404


async def test_replay_returns_the_identical_response_and_a_concurrent_twin_gets_409(
        client, app, make_principal, add_card, pay) -> None:
    _, customer = await make_principal("customer")
    pm = await add_card(customer)
    first = await pay(customer, pm, key="same-key")
    replay = await pay(customer, pm, key="same-key")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert await replay.read() == await first.read()
    app[PAYMENTS].processor.inner.latency = 0.3
    a, b = await asyncio.gather(pay(customer, pm, key="twin"), pay(customer, pm, key="twin"))
    assert sorted([a.status, b.status]) == [200, 409]
    loser = a if a.status == 409 else b
    assert (await loser.json())["error"]["code"] == "idempotency_in_progress"
    assert (await app[PAYMENTS].processor.inner.authorizations()) == 2


async def test_outage_leaves_processing_and_recovery_charges_once(manual_resolver, client, app, make_principal,
                                                                  add_card, pay) -> None:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    service = app[PAYMENTS]
    processor = service.processor.inner
    service.processor.backoff = 0.001
    pm = await add_card(customer)
    processor.lose_responses = True  # it authorizes, but the answer never arrives
    intent = await (await pay(customer, pm)).json()
    assert intent["status"] == "processing"
    processor.outage, processor.lose_responses = True, False
    assert await service.resolve_processing() == 0
    processor.outage = False
    service.processor.breaker.cooldown = 0
    assert await service.resolve_processing() == 1
    got = await (await client.get(f"/v1/payment_intents/{intent['id']}", headers=customer)).json()
    assert got["status"] == "requires_capture"
    assert (await processor.authorizations()) == 1
    resp = await client.post(f"/v1/payment_intents/{intent['id']}/capture", headers=key_headers(operator), json={})
    assert (await resp.json())["amount_received"] == 2500
    assert len(await processor.settlement_report(processor.today())) == 1


async def test_reconciliation_reports_missing_extra_and_amount_differs(client, app, db, make_principal, add_card,
                                                                       pay) -> None:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    pm = await add_card(customer)
    for amount in (1000, 2000, 3000):
        intent = await (await pay(customer, pm, amount=amount)).json()
        resp = await client.post(f"/v1/payment_intents/{intent['id']}/capture", headers=key_headers(operator),
                                 json={})
        assert resp.status == 200
    await client.post("/v1/refunds", headers=key_headers(operator), json={"payment_intent": intent["id"],
                                                                          "amount": 500})
    processor = app[PAYMENTS].processor.inner
    day = datetime.now(UTC).date()
    lines = await processor.settlement_report(day)
    missing = lines[0]  # settled in the ledger, never by the processor
    # The processor's records (its own tables) are doctored as a faulty processor report would be.
    async with db.acquire() as conn:
        await conn.execute("DELETE FROM test_processor_settlements WHERE ref = $1", missing.ref)
        await conn.execute("UPDATE test_processor_settlements SET amount = amount + 1 WHERE ref = $1", lines[1].ref)
        await conn.execute("INSERT INTO test_processor_settlements (ref, type, amount, currency, day) "
                           "VALUES ('py_ghost', 'capture', 777, 'EUR', $1)", day)
    resp = await client.post("/v1/reconciliation/runs", headers=key_headers(operator), json={"day": day.isoformat()})
    report = await resp.json()
    assert resp.status == 200, report
    kinds = {(x["kind"], x["ref"]) for x in report["mismatches"]}
    assert kinds == {("missing", missing.ref), ("amount_differs", lines[1].ref), ("extra", "py_ghost")}
    assert report["matched"] == 2  # one capture and the refund
    stored = await client.get(f"/v1/reconciliation/reports/{day.isoformat()}", headers=operator)
    assert (await stored.json())["mismatches"] == report["mismatches"]
