"""The money a restaurant sees and acts on (issue 20): its balance, derived from the ledger's
`restaurant_payable` account of its tenant, and its statements (a line per order, reconciling with the
ledger), read by its staff and tenant-wide API keys, refused to a store-scoped key (403) and never
showing another tenant's money; and its refunds, paid from that balance through the one refund path,
within its limits."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from orders_helpers import eventually, make_customer, make_shop, ok, place
from orders_money_world import deliver, intents_of, ledger_refunds, refunds_stored, start_receiver

from fooddispatch.app import create_app
from payments.web import PAYMENTS
from payments.web_merchant import MERCHANT_POLICY

COMPONENTS = ("catalog", "payments", "orders")


async def _delivered(client, make_principal, shop, key: str = "k1", customer: tuple | None = None) -> dict:
    _, cust, pm = customer or await make_customer(client, make_principal)
    order = await place(client, cust, pm, shop.store_id, key=key)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    return await deliver(client, make_principal, order["id"])


async def _payable(db, tenant_id: str) -> int:
    async with db.acquire() as conn:
        return int(await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1",
                                       f"restaurant_payable:{tenant_id}:EUR"))


async def test_staff_and_tenant_keys_read_their_balance_from_the_ledger(
        client, db, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    empty = await ok(await client.get("/v1/merchant/balance", headers=shop.staff))
    assert empty == {"object": "merchant_balance", "tenant_id": shop.tenant_id, "balances": []}
    await _delivered(client, make_principal, shop)
    share = await _payable(db, shop.tenant_id)
    assert share > 0
    got = await ok(await client.get("/v1/merchant/balance", headers=shop.staff))
    # Delivered just now: all of it is pending (24 h by default), nothing available or reserved yet.
    assert got["balances"] == [{"currency": "EUR", "available": 0, "pending": share, "reserved_for_refunds": 0,
                                "total": share}]
    key = await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", json={"name": "pos"},
                                     headers=shop.staff), 201)
    assert await ok(await client.get("/v1/merchant/balance", headers={"X-Api-Key": key["key"]})) == got
    tablet = await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", headers=shop.staff,
                                        json={"name": "tablet", "store_id": shop.store_id}), 201)
    refused = await client.get("/v1/merchant/balance", headers={"X-Api-Key": tablet["key"]})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
    other = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=shop.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=other["id"])
    assert (await ok(await client.get("/v1/merchant/balance", headers=staff_b)))["balances"] == []
    _, customer = await make_principal("customer")
    assert (await client.get("/v1/merchant/balance", headers=customer)).status == 403


async def test_past_the_pending_period_the_balance_is_available_less_the_refund_reserve(
        aiohttp_client, settings, db, make_principal) -> None:
    app = create_app(settings.replace(merchant_pending_hours=0, merchant_refund_reserve_bps=1000),
                     components=COMPONENTS)
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    await _delivered(client, make_principal, shop, key="a")
    await _delivered(client, make_principal, shop, key="b")
    total = await _payable(db, shop.tenant_id)
    [got] = (await ok(await client.get("/v1/merchant/balance", headers=shop.staff)))["balances"]
    reserve = round(total / 10)  # 10 % of what the refund window's orders credited (all of it here)
    assert got == {"currency": "EUR", "available": total - reserve, "pending": 0, "reserved_for_refunds": reserve,
                   "total": total}
    assert all(isinstance(v, int) for k, v in got.items() if k != "currency")


def _days(offset_from: int, offset_to: int) -> dict:
    today = datetime.now(UTC).date()
    return {"from": str(today + timedelta(days=offset_from)), "to": str(today + timedelta(days=offset_to))}


async def test_a_statement_has_a_line_per_order_that_reconciles_with_the_ledger(
        aiohttp_client, settings, db, make_principal) -> None:
    first = await aiohttp_client(create_app(settings, components=COMPONENTS))
    shop = await make_shop(first, make_principal)
    # The tenant's contract rate: 10 % instead of the 15 % default.
    client = await aiohttp_client(create_app(settings.replace(
        merchant_commission_overrides=((shop.tenant_id, 1000),)), components=COMPONENTS))
    customer = await make_customer(client, make_principal)
    _, cust, pm = customer
    tipped = await _delivered(client, make_principal, shop, key="a", customer=customer)
    await ok(await client.post(f"/v1/orders/{tipped['id']}/tip", json={"tip": 500}, headers=cust))
    refunded = await _delivered(client, make_principal, shop, key="b")
    async with db.acquire() as conn:
        intent = await conn.fetchval("SELECT intent_id FROM orders WHERE id = $1", refunded["id"])
    _, operator = await make_principal("operator")
    await ok(await client.post("/v1/refunds", headers={**operator, "Idempotency-Key": "r1"},
                               json={"payment_intent": intent, "amount": 500}))
    cancelled = await place(client, cust, pm, shop.store_id, key="c")
    await ok(await client.post(f"/v1/orders/{cancelled['id']}/accept", json={}, headers=shop.staff))
    await ok(await client.post(f"/v1/orders/{cancelled['id']}/cancel", json={}, headers=cust))

    url = "/v1/merchant/statements"
    page1 = await ok(await client.get(url, params={**_days(-1, 1), "limit": 2}, headers=shop.staff))
    assert page1["has_more"] and len(page1["items"]) == 2
    page2 = await ok(await client.get(url, params={**_days(-1, 1), "limit": 2,
                                                   "starting_after": page1["next_cursor"]}, headers=shop.staff))
    assert not page2["has_more"]
    lines = {x["order_id"]: x for x in page1["items"] + page2["items"]}
    assert set(lines) == {tipped["id"], refunded["id"], cancelled["id"]}

    food = 2700  # the conftest cart's food (tax-exclusive store: tax 189 on top, tip 200)
    t, r, c = lines[tipped["id"]], lines[refunded["id"]], lines[cancelled["id"]]
    assert (t["commission_bps"], t["commission"], t["tax"], t["tips_passed_through"]) == (1000, 270, 189, 500)
    assert (r["refunds_borne_by_platform"], r["refunds_borne_by_restaurant"]) == (500, 0)
    assert (c["gross"], c["commission"], c["tax"], c["tips_passed_through"]) == (food // 2, 135, 0, 0)
    for x in lines.values():
        got = await ok(await client.get(f"/v1/orders/{x['order_id']}", headers=shop.operator))
        assert x["gross"] == got["captured"]["amount"]
        assert x["gross"] == (x["tax"] + x["tips_passed_through"] + x["commission"] + x["fees"] + x["net"]
                              + x["refunds_borne_by_restaurant"])
    async with db.acquire() as conn:
        # Every posting on the restaurant's account (no payouts yet), natural sign: its balance.
        ledger = await conn.fetchval("SELECT -sum(amount) FROM postings WHERE account_id = $1",
                                     f"restaurant_payable:{shop.tenant_id}:EUR")
        clearing = await conn.fetchval(
            "SELECT sum(p.amount) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
            "WHERE e.kind = 'split' AND p.account_id = 'customer_card_clearing:EUR' "
            "AND split_part(e.reference, ':', 1) = ANY($1::text[])", list(lines))
        refunds = await conn.fetchval(
            "SELECT sum(p.amount) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
            "WHERE e.kind = 'refund' AND p.account_id = 'platform_refunds:EUR' AND e.reference = ANY($1::text[])",
            list(lines))
    assert sum(x["net"] for x in lines.values()) == ledger == await _payable(db, shop.tenant_id)
    assert sum(x["gross"] for x in lines.values()) == clearing
    assert refunds == 500
    [totals] = page2["totals"]
    assert totals == page1["totals"][0] and totals["currency"] == "EUR"
    for name in ("gross", "tax", "tips_passed_through", "commission", "fees", "refunds_borne_by_platform",
                 "refunds_borne_by_restaurant", "net"):
        assert totals[name] == sum(x[name] for x in lines.values()), name

    csv_resp = await client.get(url, params={**_days(-1, 1), "format": "csv"}, headers=shop.staff)
    assert csv_resp.status == 200 and csv_resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await csv_resp.text())))
    assert {row["order_id"]: int(row["net"]) for row in rows} == {k: x["net"] for k, x in lines.items()}

    earlier = await ok(await client.get(url, params=_days(-10, -5), headers=shop.staff))
    assert (earlier["items"], earlier["totals"]) == ([], [])
    backwards = await client.get(url, params=_days(1, -1), headers=shop.staff)
    assert backwards.status == 422 and (await backwards.json())["error"]["code"] == "invalid_period"
    tablet = await ok(await client.post(f"/v1/tenants/{shop.tenant_id}/api_keys", headers=shop.staff,
                                        json={"name": "tablet", "store_id": shop.store_id}), 201)
    refused = await client.get(url, params=_days(-1, 1), headers={"X-Api-Key": tablet["key"]})
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "forbidden"
    other = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=shop.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=other["id"])
    assert (await ok(await client.get(url, params=_days(-1, 1), headers=staff_b)))["items"] == []


async def _refund(client, headers: dict, order_id: str, key: str, **body):
    return await client.post(f"/v1/merchant/orders/{order_id}/refunds", json={"reason": "quality", **body},
                             headers={**headers, "Idempotency-Key": key})


async def _error(resp) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]["code"]


async def test_a_merchant_refund_is_paid_by_the_restaurant_and_reaches_order_payment_and_ledger(
        client, db, aiohttp_server, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    receiver = await start_receiver(aiohttp_server, client, shop, ["order.refunded"])
    customer = await make_customer(client, make_principal)
    first = await _delivered(client, make_principal, shop, key="a", customer=customer)
    second = await _delivered(client, make_principal, shop, key="b", customer=customer)
    oid, total = first["id"], first["captured"]["amount"]
    balance = await _payable(db, shop.tenant_id)
    [intent] = await intents_of(db, oid)

    part = await _refund(client, shop.staff, oid, "m1", amount=500)
    assert part.status == 201, await part.text()
    body = await part.json()
    again = await _refund(client, shop.staff, oid, "m1", amount=500)  # the same key: the first answer
    assert again.status == 201 and await again.json() == body
    assert (body["amount"], body["reason"], body["order_refunded"], body["borne_by"]) == (
        500, "quality", 500, "restaurant")
    lines = await ok(await _refund(client, shop.staff, oid, "m2", lines=[{"line_no": 2, "quantity": 1}]), 201)
    assert lines["amount"] == 428  # the fries and their 7 % tax, as for missing items
    rest = await ok(await _refund(client, shop.staff, oid, "m3"), 201)  # no amount, no lines: all that is left
    assert rest["amount"] == total - 928 and rest["order_refunded"] == total

    got = await ok(await client.get(f"/v1/orders/{oid}", headers=shop.staff))
    assert got["refunded"]["amount"] == total
    pi = await ok(await client.get(f"/v1/payment_intents/{intent['id']}", headers=shop.operator))
    assert pi["amount_refunded"] == total
    assert await ledger_refunds(db, [intent["id"]]) == total
    assert await _payable(db, shop.tenant_id) == balance - total  # the restaurant paid, not the platform
    async with db.acquire() as conn:
        borne = await conn.fetchval(
            "SELECT sum(p.amount) FROM postings p JOIN journal_entries e ON e.id = p.entry_id "
            "WHERE e.kind = 'refund' AND e.intent_id = $1 AND p.account_id = $2", intent["id"],
            f"restaurant_payable:{shop.tenant_id}:EUR")
    assert borne == total
    hooks = await eventually(lambda: _at_least(receiver.refunds_of(oid), 3))
    assert sorted(h["amount"]["amount"] for h in hooks) == sorted([500, 428, total - 928])
    assert sorted(h["refund_id"] for h in hooks) == sorted(await refunds_stored(db, [intent["id"]]))

    nothing_left = await _refund(client, shop.staff, oid, "m4", amount=1)
    assert await _error(nothing_left) == (422, "amount_too_large")
    statement = await ok(await client.get("/v1/merchant/statements", params=_days(-1, 1), headers=shop.staff))
    line = next(x for x in statement["items"] if x["order_id"] == oid)
    assert (line["refunds_borne_by_restaurant"], line["refunds_borne_by_platform"]) == (total, 0)
    assert sum(x["net"] for x in statement["items"]) == await _payable(db, shop.tenant_id)

    # The restaurant's balance cannot cover a second full refund: refused before the card is touched.
    broke = await _refund(client, shop.staff, second["id"], "m5")
    assert await _error(broke) == (402, "balance_insufficient")
    [second_intent] = await intents_of(db, second["id"])
    assert second_intent["amount_refunded"] == 0


async def _at_least(items: list, n: int):
    return items if len(items) >= n else None


async def test_merchant_refunds_keep_to_their_tenant_limits_and_reasons(
        aiohttp_client, settings, db, make_principal) -> None:
    client = await aiohttp_client(create_app(settings.replace(merchant_refund_max_share_bps=2000,
                                                              merchant_refund_max_age_days=3), components=COMPONENTS))
    shop = await make_shop(client, make_principal)
    customer = await make_customer(client, make_principal)
    order = await _delivered(client, make_principal, shop, key="a", customer=customer)
    oid, total = order["id"], order["captured"]["amount"]
    cap = round(total * 0.2)
    await ok(await _refund(client, shop.staff, oid, "l1", amount=cap - 100), 201)
    over = await _refund(client, shop.staff, oid, "l2", amount=101)
    assert await _error(over) == (422, "refund_limit_exceeded")
    await ok(await _refund(client, shop.staff, oid, "l3", amount=100), 201)  # up to the share exactly

    bad_reason = await _refund(client, shop.staff, oid, "l4", amount=1, reason="because")
    assert bad_reason.status == 422
    both = await _refund(client, shop.staff, oid, "l5", amount=1, lines=[{"line_no": 1, "quantity": 1}])
    assert await _error(both) == (422, "validation_error")

    older = await _delivered(client, make_principal, shop, key="b", customer=customer)
    async with db.acquire() as conn:  # delivered four days ago: past the three-day window
        await conn.execute("UPDATE orders SET delivered_at = delivered_at - interval '4 days' WHERE id = $1",
                           older["id"])
    assert await _error(await _refund(client, shop.staff, older["id"], "l6", amount=100)) == (
        409, "refund_window_closed")

    _, cust, pm = customer
    placed = await place(client, cust, pm, shop.store_id, key="c")
    assert await _error(await _refund(client, shop.staff, placed["id"], "l7", amount=100)) == (
        409, "order_not_refundable")
    other = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=shop.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=other["id"])
    assert await _error(await _refund(client, staff_b, oid, "l8", amount=100)) == (404, "resource_missing")
    missing = await _refund(client, staff_b, "ord_nonexistent", "l9", amount=100)
    assert await _error(missing) == (404, "resource_missing")
    got = await ok(await client.get(f"/v1/orders/{oid}", headers=shop.staff))
    assert got["refunded"]["amount"] == cap


async def _due_now(db, tenant_id: str) -> None:
    async with db.acquire() as conn:
        await conn.execute("UPDATE merchant_payout_schedules SET next_run_at = now() - interval '1 second' "
                           "WHERE tenant_id = $1", tenant_id)


async def test_scheduled_payouts_pay_what_is_available_and_list_the_lines_they_settle(
        aiohttp_client, settings, db, make_principal) -> None:
    app = create_app(settings.replace(merchant_pending_hours=0, merchant_refund_reserve_bps=1000),
                     components=COMPONENTS)
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    customer = await make_customer(client, make_principal)
    orders = [await _delivered(client, make_principal, shop, key=k, customer=customer) for k in ("a", "b")]
    total = await _payable(db, shop.tenant_id)
    reserve = round(total / 10)
    url = "/v1/merchant/payout_schedule"
    assert (await client.get(url, headers=shop.staff)).status == 404
    no_day = await client.put(url, headers=shop.staff, json={"every": "weekly", "currency": "EUR"})
    assert no_day.status == 422
    schedule = await ok(await client.put(url, headers=shop.staff, json={
        "every": "daily", "currency": "EUR", "minimum_amount": total}))  # more than is available: no payout
    assert schedule["next_run_at"] > datetime.now(UTC).isoformat()[:19]
    assert await ok(await client.get(url, headers=shop.staff)) == schedule
    run = app[PAYMENTS].merchant_payouts.run_due
    await _due_now(db, shop.tenant_id)
    await run(app[MERCHANT_POLICY])
    assert (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"] == []

    await ok(await client.put(url, headers=shop.staff, json={"every": "daily", "currency": "EUR",
                                                             "minimum_amount": 100}))
    await _due_now(db, shop.tenant_id)
    await run(app[MERCHANT_POLICY])
    [payout] = (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"]
    assert (payout["amount"], payout["status"], payout["held_back"]) == (total - reserve, "pending", reserve)
    statement = await ok(await client.get("/v1/merchant/statements", params=_days(-1, 1), headers=shop.staff))
    nets = {x["order_id"]: x["net"] for x in statement["items"]}
    assert {s["order_id"]: s["net"] for s in payout["settles"]} == nets and set(nets) == {o["id"] for o in orders}
    assert sum(nets.values()) == payout["amount"] + payout["held_back"]
    [balance] = (await ok(await client.get("/v1/merchant/balance", headers=shop.staff)))["balances"]
    assert balance["total"] == reserve == total - payout["amount"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT next_run_at > now() FROM merchant_payout_schedules WHERE tenant_id = $1",
                                   shop.tenant_id)

    # The bank refuses it: the merchant sees why, the money is back, and the next run pays it again.
    await ok(await client.post(f"/v1/payouts/{payout['id']}", headers={**shop.operator, "Idempotency-Key": "f1"},
                               json={"status": "failed", "failure_reason": "account_closed"}))
    await _due_now(db, shop.tenant_id)
    await run(app[MERCHANT_POLICY])
    retry, failed = (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"]
    assert (failed["id"], failed["status"], failed["failure_reason"]) == (payout["id"], "failed", "account_closed")
    assert (retry["amount"], retry["status"]) == (total - reserve, "pending")
    assert {s["order_id"] for s in retry["settles"]} == set(nets)  # the failed one settled nothing
    # Every figure against the ledger: what the lines netted = paid out (not failed) + the balance left.
    assert sum(nets.values()) == retry["amount"] + await _payable(db, shop.tenant_id)


async def test_staff_read_their_tenants_money_operators_name_the_tenant_and_another_tenants_is_404(
        client, db, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    await _delivered(client, make_principal, shop)
    batch = await ok(await client.post("/v1/payout_batches", headers={**shop.operator, "Idempotency-Key": "b1"},
                                       json={"kind": "restaurant", "currency": "EUR"}), 201)
    await _delivered(client, make_principal, shop, key="k2")  # something left in the balance after the payout
    routes = {"/v1/merchant/balance": {}, "/v1/merchant/statements": _days(-1, 1), "/v1/merchant/payouts": {}}
    own = {url: await ok(await client.get(url, params=params, headers=shop.staff)) for url, params in routes.items()}
    assert own["/v1/merchant/balance"]["balances"][0]["total"] == await _payable(db, shop.tenant_id) > 0
    assert len(own["/v1/merchant/statements"]["items"]) == 2
    assert [p["id"] for p in own["/v1/merchant/payouts"]["data"]] == [p["id"] for p in batch["payouts"]]

    other = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=shop.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=other["id"])
    key_b = await ok(await client.post(f"/v1/tenants/{other['id']}/api_keys", json={"name": "pos"},
                                       headers=staff_b), 201)
    _, operator = await make_principal("operator")
    for url, params in routes.items():
        named = {**params, "tenant_id": shop.tenant_id}
        assert await ok(await client.get(url, params=named, headers=shop.staff)) == own[url]  # its own, named
        assert await ok(await client.get(url, params=named, headers=operator)) == own[url]  # an operator names it
        for b in (staff_b, {"X-Api-Key": key_b["key"]}):  # another tenant's staff and keys: not found
            assert await _error(await client.get(url, params=named, headers=b)) == (404, "resource_missing"), url
            mine = await ok(await client.get(url, params=params, headers=b))  # their own money: none yet
            assert not (mine.get("balances") or mine.get("items") or mine.get("data")), url
        assert await _error(await client.get(url, params=params, headers=operator)) == (422, "validation_error")
        _, customer = await make_principal("customer")
        assert (await client.get(url, params=named, headers=customer)).status == 403
