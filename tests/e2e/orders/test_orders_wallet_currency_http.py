"""A wallet pays only in its own currency: a GBP order from a wallet holding EUR is 409
`currency_mismatch`, unless the checkout carries a conversion quote the customer asked for, which
converts exactly the total at a loaded rate, through the FX clearing accounts (one balanced entry
per currency, naming the rate), once, before its expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from orders_helpers import cart, make_customer, make_shop, ok

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from kernel.http import Principal
from kernel.money import Money, convert
from payments import privacy_store

CREDIT = 5000  # €50.00


async def _world(aiohttp_client, settings, make_principal):
    clock = ManualClock(datetime.now(UTC))
    client = await aiohttp_client(create_app(settings, clock=clock, components=("catalog", "payments", "orders")))
    shop = await make_shop(client, make_principal, currency="GBP")
    customer_id, cust, _ = await make_customer(client, make_principal)
    expires = (clock.now() + timedelta(days=30)).isoformat()
    await ok(await client.post("/v1/customer_credits", headers={**shop.operator, "Idempotency-Key": "eur"}, json={
        "customer": customer_id, "amount": CREDIT, "currency": "EUR", "expires_at": expires}), 201)
    return client, clock, shop, customer_id, cust


async def _checkout(client, cust, quote_id: str, key: str, **extra):
    return await client.post("/v1/orders", json={"quote_id": quote_id, "payment_method_id": "wallet", **extra},
                             headers={**cust, "Idempotency-Key": key})


async def test_a_gbp_order_from_an_eur_wallet_needs_an_accepted_conversion(
        aiohttp_client, settings, db, make_principal) -> None:
    client, clock, shop, customer_id, cust = await _world(aiohttp_client, settings, make_principal)
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    total = quote["total"]
    assert total["currency"] == "GBP"

    err = (await ok(await _checkout(client, cust, quote["id"], "no-fx"), 409))["error"]
    assert (err["code"], err["currency"], err["wallet_currencies"]) == ("currency_mismatch", "GBP", ["EUR"])
    # Nor straight through payments: a GBP PaymentIntent from the same wallet.
    pi = await client.post("/v1/payment_intents", headers={**cust, "Idempotency-Key": "pi-no-fx"}, json={
        "amount": 1000, "currency": "GBP", "payment_method": "wallet", "confirm": True})
    assert pi.status == 409 and (await pi.json())["error"]["code"] == "currency_mismatch"

    # No rate yet: no quote.
    asked = {"from_currency": "EUR", "to_currency": "GBP", "to_amount": total["amount"]}
    missing = await client.post("/v1/conversion_quotes", headers={**cust, "Idempotency-Key": "cq0"}, json=asked)
    assert missing.status == 409 and (await missing.json())["error"]["code"] == "exchange_rate_missing"
    rate = await ok(await client.post("/v1/exchange_rates", headers={**shop.operator, "Idempotency-Key": "r1"}, json={
        "base": "EUR", "quote": "GBP", "rate": "0.8567", "source": "ECB",
        "as_of": (clock.now() - timedelta(hours=1)).isoformat()}), 201)

    cq = await ok(await client.post("/v1/conversion_quotes", headers={**cust, "Idempotency-Key": "cq1"}, json=asked),
                  201)
    eur = convert(Money(total["amount"], "GBP"), 1 / Fraction("0.8567"), "EUR").amount
    assert (cq["from_currency"], cq["from_amount"], cq["to_currency"], cq["to_amount"]) == (
        "EUR", eur, "GBP", total["amount"])
    assert (cq["rate"]["id"], cq["rate"]["rate"], cq["status"]) == (rate["id"], "0.8567", "open")
    assert cq["display"] == f"€{eur // 100}.{eur % 100:02d} for £{total['amount'] // 100}.{total['amount'] % 100:02d}"
    german = await client.get(f"/v1/conversion_quotes/{cq['id']}", headers={**cust, "Accept-Language": "de-DE,de"})
    assert (await german.json())["display"] == f"{eur // 100},{eur % 100:02d} € for {total['amount'] // 100}," \
                                                f"{total['amount'] % 100:02d} £"

    order = await ok(await _checkout(client, cust, quote["id"], "fx", conversion_quote=cq["id"]), 201)
    assert order["total"] == total
    again = await client.get(f"/v1/conversion_quotes/{cq['id']}", headers=cust)
    assert (await again.json())["status"] == "used"

    async with db.acquire() as conn:
        conv = await conn.fetchrow("SELECT * FROM fx_conversions WHERE quote_id = $1", cq["id"])
        entries = await conn.fetch(
            "SELECT e.id, e.currency, e.kind, e.reference, e.reason, p.account_id, p.amount FROM journal_entries e "
            "JOIN postings p ON p.entry_id = e.id WHERE e.id = ANY($1) ORDER BY e.currency, p.seq",
            [conv["out_entry_id"], conv["in_entry_id"]])
        balances = dict(await conn.fetch("SELECT id, balance FROM ledger_accounts WHERE id = ANY($1)", [
            f"customer_wallet:{customer_id}:EUR", f"customer_wallet:{customer_id}:GBP", "fx_clearing:EUR",
            "fx_clearing:GBP", "wallet_holds:GBP"]))
    assert (conv["rate_id"], conv["from_amount"], conv["to_amount"]) == (rate["id"], eur, total["amount"])
    assert [(r["currency"], r["account_id"], r["amount"]) for r in entries] == [
        ("EUR", f"customer_wallet:{customer_id}:EUR", eur), ("EUR", "fx_clearing:EUR", -eur),
        ("GBP", "fx_clearing:GBP", total["amount"]), ("GBP", f"customer_wallet:{customer_id}:GBP", -total["amount"])]
    assert all(r["kind"] == "fx_conversion" and r["reference"] == conv["id"] and rate["id"] in r["reason"]
               for r in entries)
    assert balances == {f"customer_wallet:{customer_id}:EUR": CREDIT - eur, f"customer_wallet:{customer_id}:GBP": 0,
                        "fx_clearing:EUR": eur, "fx_clearing:GBP": -total["amount"],
                        "wallet_holds:GBP": total["amount"]}

    async with db.acquire() as conn:  # the customer's privacy export lists the conversion they accepted
        exported = await privacy_store.export_person(conn, Principal(customer_id, "customer"))
    assert [(q["id"], q["conversion_id"]) for q in exported["conversion_quotes"]] == [(cq["id"], conv["id"])]

    # The quote converts once; a second order with it is refused and converts nothing more.
    quote2 = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    used = (await ok(await _checkout(client, cust, quote2["id"], "fx-again", conversion_quote=cq["id"]), 409))
    assert used["error"]["code"] == "conversion_quote_used"

    # Cancelled before the store accepts it: the hold is voided and goes back in EUR at the payment's
    # rate (a new rate since does not matter), converted back against the payment's conversion.
    await ok(await client.post("/v1/exchange_rates", headers={**shop.operator, "Idempotency-Key": "r2"}, json={
        "base": "EUR", "quote": "GBP", "rate": "0.5", "source": "ECB", "as_of": clock.now().isoformat()}), 201)
    await ok(await client.post(f"/v1/orders/{order['id']}/cancel", json={}, headers=cust))
    async with db.acquire() as conn:
        back = await conn.fetchrow("SELECT * FROM fx_conversions WHERE reference = $1", conv["id"])
        wallet = dict(await conn.fetch("SELECT currency, balance FROM ledger_accounts WHERE kind = 'customer_wallet' "
                                       "AND owner_id = $1", customer_id))
    assert (back["rate_id"], back["from_amount"], back["to_amount"]) == (rate["id"], total["amount"], eur)
    assert wallet == {"EUR": CREDIT, "GBP": 0}


async def test_an_expired_or_mismatched_conversion_quote_is_refused_and_nothing_moves(
        aiohttp_client, settings, db, make_principal) -> None:
    client, clock, shop, _, cust = await _world(aiohttp_client, settings, make_principal)
    await ok(await client.post("/v1/exchange_rates", headers={**shop.operator, "Idempotency-Key": "r1"}, json={
        "base": "GBP", "quote": "EUR", "rate_numerator": 7, "rate_denominator": 6, "source": "desk",
        "as_of": clock.now().isoformat()}), 201)  # given the other way round: used as its inverse
    quote = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    wrong = await ok(await client.post("/v1/conversion_quotes", headers={**cust, "Idempotency-Key": "cq-w"}, json={
        "from_currency": "EUR", "to_currency": "GBP", "to_amount": quote["total"]["amount"] - 1}), 201)
    err = (await ok(await _checkout(client, cust, quote["id"], "w", conversion_quote=wrong["id"]), 409))["error"]
    assert (err["code"], err["param"]) == ("conversion_quote_mismatch", "conversion_quote")

    cq = await ok(await client.post("/v1/conversion_quotes", headers={**cust, "Idempotency-Key": "cq-e"}, json={
        "from_currency": "EUR", "to_currency": "GBP", "to_amount": quote["total"]["amount"]}), 201)
    assert cq["from_amount"] == convert(Money(quote["total"]["amount"], "GBP"), Fraction(7, 6), "EUR").amount
    clock.advance(11 * 60)  # quotes hold for 10 minutes
    fresh = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=cust), 201)
    err = (await ok(await _checkout(client, cust, fresh["id"], "e", conversion_quote=cq["id"]), 409))["error"]
    assert err["code"] == "conversion_quote_expired"
    # Another customer's quote is not found; a quote with a card is 422.
    _, other, pm = await make_customer(client, make_principal)
    theirs = await ok(await client.post("/v1/quotes", json=cart(shop.store_id), headers=other), 201)
    err = (await ok(await _checkout(client, other, theirs["id"], "o", conversion_quote=cq["id"]), 404))["error"]
    assert err["param"] == "conversion_quote"
    assert (await client.get(f"/v1/conversion_quotes/{cq['id']}", headers=other)).status == 404
    card = await client.post("/v1/orders", headers={**cust, "Idempotency-Key": "c"}, json={
        "quote_id": fresh["id"], "payment_method_id": pm, "conversion_quote": cq["id"]})
    assert card.status == 422 and (await card.json())["error"]["param"] == "conversion_quote"
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM fx_conversions") == 0
        assert await conn.fetchval("SELECT count(*) FROM journal_entries WHERE kind = 'fx_conversion'") == 0
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0
