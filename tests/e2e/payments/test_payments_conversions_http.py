"""An operator converts a platform or restaurant balance between currencies (`POST /v1/conversions`):
one dated rate (named, or the pair's latest at most two days old), two journal entries each balanced in
its own currency through the FX clearing accounts, never more than the balance holds, once per
Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.ids import new_id
from payments import ledger, model
from payments.model import Account, credit, debit
from tests.e2e.payments.conftest import key_headers


async def _fund(db, account: Account, amount: int) -> None:
    """Money in `account` as the platform's cash paid it there (a restaurant's earnings, say)."""
    async with db.acquire() as conn:
        await ledger.post(conn, model.entry("adjustment", account.currency, [
            debit(Account("platform_cash", account.currency), amount), credit(account, amount)],
            actor="test", reason="fund", reference="test", idempotency_key=new_id("k")))


async def _rate(client, operator, as_of: datetime, rate: str = "0.8567") -> dict:
    resp = await client.post("/v1/exchange_rates", headers=key_headers(operator), json={
        "base": "EUR", "quote": "GBP", "rate": rate, "source": "ECB", "as_of": as_of.isoformat()})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _balances(db, *ids: str) -> dict[str, int]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT id, balance FROM ledger_accounts WHERE id = ANY($1)", list(ids))
    return {i: 0 for i in ids} | {r["id"]: r["balance"] for r in rows}


async def test_an_operator_converts_a_restaurant_balance_once_at_the_latest_rate(
        client, db, make_principal) -> None:
    _, operator = await make_principal("operator")
    tenant = new_id("ten")
    eur, gbp = f"restaurant_payable:{tenant}:EUR", f"restaurant_payable:{tenant}:GBP"
    await _fund(db, Account("restaurant_payable", "EUR", tenant), 10_000)
    asked = {"kind": "restaurant_payable", "owner": tenant, "from_currency": "EUR", "to_currency": "GBP",
             "amount": 4_001}
    missing = await client.post("/v1/conversions", headers=key_headers(operator), json=asked)
    assert missing.status == 409 and (await missing.json())["error"]["code"] == "exchange_rate_missing"
    now = datetime.now(UTC)
    await _rate(client, operator, now - timedelta(days=3), "0.9")  # too old to be the latest used
    stale = await client.post("/v1/conversions", headers=key_headers(operator), json=asked)
    assert stale.status == 409 and (await stale.json())["error"]["code"] == "exchange_rate_missing"
    rate = await _rate(client, operator, now - timedelta(hours=1))

    first = await client.post("/v1/conversions", headers=key_headers(operator, "conv-1"), json=asked)
    assert first.status == 201, await first.text()
    conv = await first.json()
    again = await client.post("/v1/conversions", headers=key_headers(operator, "conv-1"), json=asked)
    assert again.status == 201 and await again.json() == conv  # the retry converts nothing more
    # 4001 * 0.8567 = 3427.6567 -> 3428 (half-even, once)
    assert (conv["from_account"], conv["from_amount"], conv["to_account"], conv["to_amount"]) == (eur, 4_001, gbp,
                                                                                                    3_428)
    assert (conv["rate_id"], conv["as_of"], conv["object"]) == (rate["id"], rate["as_of"], "conversion")
    assert await _balances(db, eur, gbp, "fx_clearing:EUR", "fx_clearing:GBP") == {
        eur: 5_999, gbp: 3_428, "fx_clearing:EUR": 4_001, "fx_clearing:GBP": -3_428}
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM fx_conversions WHERE from_account = $1", eur) == 1
        assert set((await ledger.sums_per_currency(conn)).values()) == {0}  # each currency sums to zero
        assert await ledger.balances_match_postings(conn) == []

    got = await client.get(f"/v1/conversions/{conv['id']}", headers=operator)
    assert got.status == 200 and await got.json() == conv
    _, customer = await make_principal("customer")
    assert (await client.get(f"/v1/conversions/{conv['id']}", headers=customer)).status == 403
    assert (await client.post("/v1/conversions", headers=key_headers(customer), json=asked)).status == 403

    too_much = await client.post("/v1/conversions", headers=key_headers(operator), json={**asked, "amount": 6_000})
    assert too_much.status == 402 and (await too_much.json())["error"]["code"] == "balance_insufficient"
    assert (await _balances(db, eur))[eur] == 5_999


async def test_a_named_rate_of_the_pair_converts_the_platform_s_cash(client, db, make_principal) -> None:
    _, operator = await make_principal("operator")
    async with db.acquire() as conn:
        await ledger.post(conn, model.entry("adjustment", "EUR", [
            debit(Account("platform_cash", "EUR"), 2_000), credit(Account("platform_revenue", "EUR"), 2_000)],
            actor="test", reason="cash in", reference="test", idempotency_key=new_id("k")))
    before = await _balances(db, "platform_cash:EUR", "platform_cash:GBP")
    old = await _rate(client, operator, datetime.now(UTC) - timedelta(days=30), "0.5")
    await _rate(client, operator, datetime.now(UTC) - timedelta(minutes=1))
    resp = await client.post("/v1/conversions", headers=key_headers(operator), json={
        "kind": "platform_cash", "from_currency": "EUR", "to_currency": "GBP", "amount": 1_000,
        "rate_id": old["id"]})
    assert resp.status == 201, await resp.text()
    conv = await resp.json()
    assert (conv["rate_id"], conv["to_amount"]) == (old["id"], 500)
    # platform_cash is debit-normal: converting lowers its EUR and raises its GBP.
    assert await _balances(db, "platform_cash:EUR", "platform_cash:GBP") == {
        "platform_cash:EUR": before["platform_cash:EUR"] - 1_000,
        "platform_cash:GBP": before["platform_cash:GBP"] + 500}
    async with db.acquire() as conn:
        assert set((await ledger.sums_per_currency(conn)).values()) == {0}

    for bad, status, param in (({"rate_id": new_id("fxr")}, 404, "rate_id"), ({"owner": new_id("ten")}, 422, "owner"),
                               ({"kind": "customer_wallet"}, 422, "kind"), ({"to_currency": "EUR"}, 422, "to_currency"),
                               ({"amount": 0}, 422, "amount")):
        resp = await client.post("/v1/conversions", headers=key_headers(operator), json={
            "kind": "platform_cash", "from_currency": "EUR", "to_currency": "GBP", "amount": 10, **bad})
        err = (await resp.json())["error"]
        assert (resp.status, err["param"]) == (status, param), (bad, err)
    assert (await client.get(f"/v1/conversions/{new_id('fxc')}", headers=operator)).status == 404
