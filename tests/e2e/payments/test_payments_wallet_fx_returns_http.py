"""A wallet payment a conversion quote funded (an EUR wallet paying GBP) goes back to the wallet in EUR
when it is refunded, voided or partly captured: converted back at the payment's own rate, through the
FX clearing accounts, referencing the payment's conversion, so a rate that moved since costs the
customer nothing. Partial returns give back EUR in proportion to everything returned so far (half-even,
once), so the returns of a whole payment give back exactly the EUR it took."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from kernel.money import round_half_even
from tests.e2e.payments.conftest import key_headers

CREDIT, DUE = 5_000, 1_250  # €50.00 in the wallet, £12.50 to pay
PAID = 1_459  # £12.50 at 1/0.8567 EUR per GBP = €14.5908... -> €14.59


async def _setup(client, make_principal) -> tuple[str, dict, dict, str]:
    _, operator = await make_principal("operator")
    who, customer = await make_principal("customer")
    resp = await client.post("/v1/customer_credits", headers=key_headers(operator), json={
        "customer": who.account_id, "amount": CREDIT, "currency": "EUR",
        "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat()})
    assert resp.status == 201, await resp.text()
    rate = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={
        "base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "ECB",
        "as_of": (datetime.now(UTC) - timedelta(hours=1)).isoformat()})
    assert rate.status == 201
    return who.account_id, customer, operator, (await rate.json())["id"]


async def _pay(client, customer, capture_method: str = "automatic") -> dict:
    cq = await client.post("/v1/conversion_quotes", headers=key_headers(customer), json={
        "from_currency": "EUR", "to_currency": "GBP", "to_amount": DUE})
    assert (await cq.json())["from_amount"] == PAID
    pi = await client.post("/v1/payment_intents", headers=key_headers(customer), json={
        "amount": DUE, "currency": "GBP", "payment_method": "wallet", "confirm": True,
        "capture_method": capture_method, "conversion_quote": (await cq.json())["id"]})
    assert pi.status == 200, await pi.text()
    return await pi.json()


async def _swing(client, operator) -> None:
    """The rate moves a lot after the payment: the returns must not use it."""
    resp = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={
        "base": "EUR", "quote": "GBP", "rate": "0.5", "source": "ECB",
        "as_of": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()})
    assert resp.status == 201


async def _wallet(db, customer_id: str) -> tuple[int, int]:
    async with db.acquire() as conn:
        rows = dict(await conn.fetch("SELECT currency, balance FROM ledger_accounts WHERE kind = 'customer_wallet' "
                                     "AND owner_id = $1", customer_id))
        sums = await conn.fetch("SELECT currency, sum(amount)::bigint AS s FROM postings GROUP BY currency")
    assert all(r["s"] == 0 for r in sums)  # every currency balances
    return rows.get("EUR", 0), rows.get("GBP", 0)


async def _returns(db, intent_id: str) -> list[tuple]:
    async with db.acquire() as conn:
        paid = await conn.fetchrow("SELECT id, rate_id FROM fx_conversions WHERE reference = $1", intent_id)
        rows = await conn.fetch("SELECT from_account, from_amount, to_account, to_amount, rate_id FROM fx_conversions "
                                "WHERE reference = $1 ORDER BY id", paid["id"])
    assert all(r["rate_id"] == paid["rate_id"] for r in rows)  # the payment's rate, not today's
    return [(r["from_amount"], r["to_amount"]) for r in rows]


async def test_a_full_refund_gives_back_exactly_the_eur_the_payment_took(client, db, make_principal) -> None:
    customer_id, customer, operator, _ = await _setup(client, make_principal)
    pi = await _pay(client, customer)
    assert pi["status"] == "succeeded"
    assert await _wallet(db, customer_id) == (CREDIT - PAID, 0)
    await _swing(client, operator)
    refund = await client.post("/v1/refunds", headers=key_headers(operator, "full"), json={"payment_intent": pi["id"]})
    assert refund.status == 200, await refund.text()
    again = await client.post("/v1/refunds", headers=key_headers(operator, "full"), json={"payment_intent": pi["id"]})
    assert await again.json() == await refund.json()
    assert await _wallet(db, customer_id) == (CREDIT, 0)
    assert await _returns(db, pi["id"]) == [(DUE, PAID)]


async def test_partial_refunds_give_back_eur_in_proportion_and_all_of_it_in_the_end(
        client, db, make_principal) -> None:
    customer_id, customer, operator, _ = await _setup(client, make_principal)
    pi = await _pay(client, customer)
    await _swing(client, operator)
    given = 0
    for part, done in ((417, 417), (417, 834), (416, DUE)):
        resp = await client.post("/v1/refunds", headers=key_headers(operator), json={
            "payment_intent": pi["id"], "amount": part})
        assert resp.status == 200, await resp.text()
        given = eur_share(done)
        assert await _wallet(db, customer_id) == (CREDIT - PAID + given, 0)
    assert given == PAID
    assert await _returns(db, pi["id"]) == [(417, 487), (417, 486), (416, 486)]


def eur_share(returned: int) -> int:
    return round_half_even(Fraction(PAID * returned, DUE))


async def test_a_void_and_the_rest_of_a_partial_capture_go_back_in_eur(client, db, make_principal) -> None:
    customer_id, customer, operator, _ = await _setup(client, make_principal)
    held, part = await _pay(client, customer, "manual"), await _pay(client, customer, "manual")
    assert await _wallet(db, customer_id) == (CREDIT - 2 * PAID, 0)
    await _swing(client, operator)
    canceled = await client.post(f"/v1/payment_intents/{held['id']}/cancel", headers=key_headers(customer), json={})
    assert canceled.status == 200, await canceled.text()
    assert await _wallet(db, customer_id) == (CREDIT - PAID, 0)
    assert await _returns(db, held["id"]) == [(DUE, PAID)]

    captured = await client.post(f"/v1/payment_intents/{part['id']}/capture", headers=key_headers(operator),
                                 json={"amount_to_capture": 1_000})
    assert captured.status == 200, await captured.text()
    back = eur_share(250)  # £2.50 of £12.50 released: 1459 * 250 / 1250 = 291.8 -> 292
    assert back == 292
    assert await _wallet(db, customer_id) == (CREDIT - PAID + back, 0)
    assert await _returns(db, part["id"]) == [(250, back)]
