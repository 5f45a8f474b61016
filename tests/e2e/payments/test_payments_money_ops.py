"""Wallets, payouts, fraud decisions, signed webhooks and log hygiene over HTTP."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import UTC, datetime, timedelta

import stripe
from aiohttp import web

from kernel.http import COURIER, OPERATOR
from kernel.signing import SIGNATURE_HEADER, verify
from payments import Split
from payments.web import PAYMENTS
from payments.web_money import WEBHOOK_CLIENT
from payments.webhooks import WebhookSender

_keys = itertools.count(1)


def kh(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": f"m-{next(_keys)}"}


async def add_card(client, headers, number="4242424242424242") -> str:
    resp = await client.post("/v1/payment_methods", headers=kh(headers), json={
        "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def pay(client, headers, pm, amount=2500, **extra):
    return await client.post("/v1/payment_intents", headers=kh(headers), json={
        "amount": amount, "currency": "EUR", "payment_method": pm, "confirm": True, **extra})


async def test_courier_earnings_cash_out_failure_and_restaurant_batch(client, app, make_principal) -> None:
    courier, courier_h = await make_principal(COURIER)
    _, operator = await make_principal(OPERATOR)
    _, customer = await make_principal("customer")
    service = app[PAYMENTS]
    pm = await add_card(client, customer)
    intent = await (await pay(client, customer, pm, amount=3000)).json()
    async with service.pool.acquire() as conn, conn.transaction():
        from kernel.money import Money

        await service.capture(conn, intent["id"], Money(3000, "EUR"))
        await service.post_split(conn, reference="ord_x", split=Split("EUR", 3000, 2000, "res_1", 700,
                                                                     courier.account_id, 200, 100))
    wallet = await (await client.get("/v1/wallets/me", headers=courier_h)).json()
    assert [(b["kind"], b["available"]) for b in wallet["balances"]] == [("courier_earnings", 700)]
    too_much = await client.post("/v1/payouts", headers=kh(courier_h),
                                 json={"amount": 701, "currency": "EUR", "method": "instant"})
    assert too_much.status == 402 and (await too_much.json())["error"]["code"] == "balance_insufficient"
    resp = await client.post("/v1/payouts", headers=kh(courier_h),
                             json={"amount": 600, "currency": "EUR", "method": "instant"})
    payout = await resp.json()
    assert resp.status == 201 and (payout["status"], payout["fee"]) == ("in_transit", 50)
    history = await (await client.get("/v1/wallets/me/transactions?limit=1", headers=courier_h)).json()
    assert history["data"][0]["amount"] == -600 and history["has_more"]
    page2 = await (await client.get(f"/v1/wallets/me/transactions?limit=1&starting_after={history['next_cursor']}",
                                    headers=courier_h)).json()
    assert page2["data"][0]["amount"] == 700 and not page2["has_more"]
    resp = await client.post(f"/v1/payouts/{payout['id']}", headers=kh(operator),
                             json={"status": "failed", "failure_reason": "account closed"})
    assert (await resp.json())["status"] == "failed"
    wallet = await (await client.get("/v1/wallets/me", headers=courier_h)).json()
    assert wallet["balances"][0]["available"] == 700  # the money came back, fee included
    again = await client.post(f"/v1/payouts/{payout['id']}", headers=kh(operator), json={"status": "paid"})
    assert again.status == 409
    batch = await (await client.post("/v1/payout_batches", headers=kh(operator),
                                     json={"kind": "restaurant", "currency": "EUR"})).json()
    assert [(p["owner"], p["amount"], p["status"]) for p in batch["payouts"]] == [("res_1", 2000, "pending")]
    for status in ("in_transit", "paid"):
        resp = await client.post(f"/v1/payouts/{batch['payouts'][0]['id']}", headers=kh(operator),
                                 json={"status": status})
        assert (await resp.json())["status"] == status
    restaurant = await (await client.get("/v1/wallets/res_1", headers=operator)).json()
    assert restaurant["balances"][0]["available"] == 0
    from payments import ledger

    async with service.pool.acquire() as conn:
        assert await ledger.sums_per_currency(conn) == {"EUR": 0}
        assert await ledger.balances_match_postings(conn) == []


async def test_promotional_credit_is_spent_at_checkout_and_expires(client, app, make_principal) -> None:
    cus, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    expires = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    resp = await client.post("/v1/customer_credits", headers=kh(operator), json={
        "customer": cus.account_id, "amount": 1000, "currency": "EUR", "expires_at": expires})
    assert resp.status == 201
    resp = await pay(client, customer, "wallet", amount=400)
    assert (await resp.json())["status"] == "requires_capture"
    wallet = await (await client.get("/v1/wallets/me", headers=customer)).json()
    assert wallet["balances"][0]["available"] == 600
    service = app[PAYMENTS]
    service.clock = service.wallets.clock = _Later(timedelta(seconds=5))
    assert await service.wallets.expire_credits() == 1
    wallet = await (await client.get("/v1/wallets/me", headers=customer)).json()
    assert wallet["balances"][0]["available"] == 0


class _Later:
    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def monotonic(self) -> float:
        return 0.0


async def test_card_testing_is_blocked_and_the_decision_is_visible_to_operators(client, make_principal) -> None:
    _, customer = await make_principal("customer")
    _, operator = await make_principal(OPERATOR)
    bad = await add_card(client, customer, "4000000000000002")
    for _ in range(3):
        assert (await pay(client, customer, bad, amount=100)).status == 402
    good = await add_card(client, customer)
    resp = await pay(client, customer, good, amount=100)
    err = (await resp.json())["error"]
    assert resp.status == 402 and err["decline_code"] == "fraudulent"
    decisions = await (await client.get("/v1/fraud/decisions?level=highest", headers=operator)).json()
    assert decisions["data"][0]["payment_intent"] == err["payment_intent"]
    assert "card_testing" in decisions["data"][0]["reasons"] and decisions["data"][0]["action"] == "block"
    assert (await client.get("/v1/fraud/decisions", headers=customer)).status == 403


async def test_promo_abuse_across_accounts_sharing_a_device_requires_authentication(
        client, make_principal) -> None:
    outcomes = []
    for _ in range(2):
        _, customer = await make_principal("customer")
        pm = await add_card(client, customer, "5555555555554444")
        resp = await pay(client, customer, pm, amount=1000, device_id="dev-1", promo_code="WELCOME")
        body = await resp.json()
        outcomes.append((resp.status, body["status"], (body["next_action"] or {}).get("reason")))
    assert outcomes == [(200, "requires_capture", None), (200, "requires_action", "risk_review")]


async def test_webhooks_are_signed_with_the_shared_scheme(client, app, make_principal, aiohttp_server) -> None:
    received: list[tuple[bytes, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers[SIGNATURE_HEADER]))
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    server = await aiohttp_server(receiver)
    _, operator = await make_principal(OPERATOR)
    _, customer = await make_principal("customer")
    resp = await client.post("/v1/webhook_endpoints", headers=kh(operator), json={
        "url": str(server.make_url("/hook")), "enabled_events": ["payment_intent.amount_capturable_updated"]})
    secret = (await resp.json())["secret"]
    pm = await add_card(client, customer)
    intent = await (await pay(client, customer, pm)).json()
    sender = WebhookSender(app[PAYMENTS].pool, app[WEBHOOK_CLIENT])
    assert await sender.deliver_due() == 1
    body, header = received[0]
    verify(body, header, secret)
    event = stripe.Webhook.construct_event(body.decode(), header, secret)
    assert event["type"] == "payment_intent.amount_capturable_updated"
    assert json.loads(body)["data"]["object"]["id"] == intent["id"]


async def test_no_full_card_number_reaches_the_logs_or_the_database_in_clear(
        client, app, make_principal, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    _, customer = await make_principal("customer")
    numbers = ["4242424242424242", "4000000000000002", "4000002500003155"]
    for number in numbers:
        pm = await add_card(client, customer, number)
        await pay(client, customer, pm)
    bad = await client.post("/v1/payment_methods", headers=kh(customer), json={
        "card": {"number": "4242424242424241", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    assert bad.status == 422 and "4242424242424241" not in await bad.text()
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "payment_method.created" in logs  # the logs were captured at all
    for number in [*numbers, "4242424242424241"]:
        assert number not in logs
    async with app[PAYMENTS].pool.acquire() as conn:
        for number in numbers:
            hits = await conn.fetchval(
                "SELECT count(*) FROM card_vault WHERE position(convert_to($1, 'UTF8') in ciphertext) > 0", number)
            assert hits == 0
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE position("
                                       "convert_to($1, 'UTF8') in body) > 0", number) == 0
