"""The automatic pause counts accept-window expiries since the store last opened: expiries from
before a reopen (by hand, or when a pause ends) never pause the store again."""

from __future__ import annotations

from datetime import UTC, datetime

from orders_helpers import eventually, make_customer, make_shop, ok, place

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from orders.web import ORDERS


async def test_expiries_before_a_manual_reopen_do_not_count_towards_the_next_pause(
        aiohttp_client, settings, db, make_principal) -> None:
    clock = ManualClock(datetime.now(UTC))
    app = create_app(settings, clock=clock, components=("catalog", "payments", "orders"))
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal, accept_window_s=60)
    _, cust, pm = await make_customer(client, make_principal)
    keys = iter(range(100))

    async def let_expire(n: int) -> None:
        orders = [await place(client, cust, pm, shop.store_id, key=f"exp{next(keys)}") for _ in range(n)]
        clock.advance(61)

        async def all_expired() -> bool:
            await app[ORDERS].lifecycle.expire_overdue()  # the sweeper does it too; whichever comes first
            views = [await ok(await client.get(f"/v1/orders/{o['id']}", headers=cust)) for o in orders]
            return all(v["status"] == "expired" for v in views)

        await eventually(all_expired)

    async def status() -> str:
        return (await ok(await client.get(f"/v1/merchant/stores/{shop.store_id}", headers=shop.staff)))["status"]

    await let_expire(2)  # two in a row (three pause the store)
    await ok(await client.post(f"/v1/merchant/stores/{shop.store_id}/pause", json={"reason": "rush"},
                               headers=shop.staff))
    await ok(await client.post(f"/v1/merchant/stores/{shop.store_id}/open", headers=shop.staff))

    def counted(n: int):
        async def check() -> bool:
            async with db.acquire() as conn:
                return await conn.fetchval("SELECT streak FROM store_expiry_streaks WHERE store_id = $1",
                                           shop.store_id) == n
        return check

    await eventually(counted(0))  # the reopen reaches orders as an event and restarts the count
    await let_expire(1)
    await eventually(counted(1))  # (counting on from before the reopen, this third one paused: 3 -> 0)
    assert await status() == "online"
    await let_expire(2)

    async def paused() -> bool:
        return await status() == "paused"

    await eventually(paused)  # three since the reopen

    async def auto_paused() -> list[dict]:  # the merchant hears of it: the events API (and webhooks)
        page = await ok(await client.get("/v1/events", headers=shop.staff, params={"type": "store.paused"}))
        return [e for e in page["items"] if "expired" in (e["data"]["object"]["reason"] or "")]

    (event,) = await eventually(auto_paused)
    assert event["data"]["object"]["store_id"] == shop.store_id
