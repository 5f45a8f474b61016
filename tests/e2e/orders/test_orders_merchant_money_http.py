"""The money a restaurant sees and acts on (issue 20): its balance, derived from the ledger's
`restaurant_payable` account of its tenant, and its statements (a line per order, reconciling with the
ledger), read by its staff and tenant-wide API keys, refused to a store-scoped key (403) and never
showing another tenant's money."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from orders_helpers import make_customer, make_shop, ok, place
from orders_money_world import deliver

from fooddispatch.app import create_app

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
