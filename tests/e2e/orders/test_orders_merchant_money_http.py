"""The money a restaurant sees and acts on (issue 20): its balance, derived from the ledger's
`restaurant_payable` account of its tenant, read by its staff and tenant-wide API keys, refused to a
store-scoped key (403) and never showing another tenant's money."""

from __future__ import annotations

from orders_helpers import make_customer, make_shop, ok, place
from orders_money_world import deliver

from fooddispatch.app import create_app

COMPONENTS = ("catalog", "payments", "orders")


async def _delivered(client, make_principal, shop, key: str = "k1") -> dict:
    _, cust, pm = await make_customer(client, make_principal)
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
