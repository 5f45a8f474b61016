"""GET /v1/reports/ledger: balances per account kind and currency, never added across currencies;
with a reporting currency, each converted at its currency's rate at the report's time, totals per
kind, the rates used (ids, as-of), and a currency without a rate named and left out of the totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from kernel.money import Money, convert
from tests.e2e.payments.conftest import key_headers


async def _credit(client, operator, customer: str, amount: int, currency: str) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    resp = await client.post("/v1/customer_credits", headers=key_headers(operator), json={
        "customer": customer, "amount": amount, "currency": currency, "expires_at": expires})
    assert resp.status == 201, await resp.text()


async def _rate(client, operator, base: str, quote: str, rate: str, as_of: datetime) -> dict:
    resp = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={
        "base": base, "quote": quote, "rate": rate, "source": "ECB", "as_of": as_of.isoformat()})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_the_ledger_report_converts_per_currency_at_dated_rates(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    ana, _ = await make_principal("customer")
    await _credit(client, operator, ana.account_id, 1250, "EUR")
    await _credit(client, operator, ana.account_id, 1250, "JPY")
    await _credit(client, operator, ana.account_id, 1250, "KWD")
    now = datetime.now(UTC)
    await _rate(client, operator, "JPY", "EUR", "0.006", now - timedelta(days=3))  # superseded below
    jpy = await _rate(client, operator, "JPY", "EUR", "0.00615", now - timedelta(hours=1))
    await _rate(client, operator, "EUR", "JPY", "1", now + timedelta(days=1))  # not yet in force

    plain = await (await client.get("/v1/reports/ledger", headers=operator)).json()
    wallets = {b["currency"]: b["balance"] for b in plain["balances"] if b["kind"] == "customer_wallet"}
    assert wallets == {"EUR": 1250, "JPY": 1250, "KWD": 1250}  # per currency, nothing added across
    assert plain["totals"] == [] and plain["rates"] == [] and plain["reporting_currency"] is None

    resp = await client.get("/v1/reports/ledger?reporting_currency=EUR", headers=operator)
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    lines = {(b["kind"], b["currency"]): b for b in report["balances"]}
    assert lines[("customer_wallet", "EUR")]["converted"] == 1250
    assert lines[("customer_wallet", "JPY")]["converted"] == 769  # ¥1,250 x 0.00615 = €7.6875 -> €7.69
    assert lines[("customer_wallet", "JPY")]["rate_id"] == jpy["id"]
    assert lines[("customer_wallet", "KWD")]["converted"] is None  # no KWD rate: named, left out
    assert report["missing_rates"] == ["KWD"]
    assert {t["kind"]: t["converted"] for t in report["totals"]}["customer_wallet"] == 1250 + 769
    assert [(r["id"], r["as_of"]) for r in report["rates"]] == [(jpy["id"], jpy["as_of"])]

    # At an earlier time, the earlier rate (and the balances of then: nothing yet two days before).
    at = (now - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    earlier = await (await client.get("/v1/reports/ledger", params={"reporting_currency": "EUR", "at": at},
                                      headers=operator)).json()
    assert earlier["balances"] == [] and earlier["totals"] == []

    kwd = await _rate(client, operator, "EUR", "KWD", "0.3305", now - timedelta(minutes=1))
    report = await (await client.get("/v1/reports/ledger?reporting_currency=EUR", headers=operator)).json()
    lines = {(b["kind"], b["currency"]): b for b in report["balances"]}
    expected = convert(Money(1250, "KWD"), 1 / Fraction("0.3305"), "EUR").amount  # the inverse of EUR/KWD
    assert (lines[("customer_wallet", "KWD")]["converted"], report["missing_rates"]) == (expected, [])
    assert sorted(r["id"] for r in report["rates"]) == sorted([jpy["id"], kwd["id"]])


async def test_the_ledger_report_is_for_operators_and_checks_its_currency(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    bad = await client.get("/v1/reports/ledger?reporting_currency=XYZ", headers=operator)
    assert bad.status == 422 and (await bad.json())["error"]["param"] == "reporting_currency"
    _, customer = await make_principal("customer")
    assert (await client.get("/v1/reports/ledger", headers=customer)).status == 403


async def test_a_wallets_history_is_per_currency_and_says_which(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    ana, headers = await make_principal("customer")
    await _credit(client, operator, ana.account_id, 1250, "EUR")
    await _credit(client, operator, ana.account_id, 1250, "JPY")
    every = await (await client.get("/v1/wallets/me/transactions", headers=headers)).json()
    assert [(t["amount"], t["currency"]) for t in every["data"]] == [(1250, "JPY"), (1250, "EUR")]
    yen = await (await client.get("/v1/wallets/me/transactions?currency=JPY", headers=headers)).json()
    assert [(t["amount"], t["currency"]) for t in yen["data"]] == [(1250, "JPY")]
    bad = await client.get("/v1/wallets/me/transactions?currency=XYZ", headers=headers)
    assert bad.status == 422
    old = await (await client.get("/v1/wallets/me/transactions?currency=EUR",
                                  headers={**headers, "FoodDispatch-Version": "2026-11-01"})).json()
    assert [t["amount"] for t in old["data"]] == [1250] and "currency" not in old["data"][0]  # the shape before
