"""A restaurant hears of its money (issue 20): `refund.created` for every refund of its orders, whichever path
made it (an operator's `POST /v1/refunds`, its own merchant refund, missing items reported after delivery), and
`payout.created` / `payout.failed` / `payout.paid` for its payouts, through the one merchant webhook pipeline
(outbox → relay → the orders consumer → signed deliveries carrying the event id) and the events API; a failed
payout shows its reason and its retry in `GET /v1/merchant/payouts`."""

from __future__ import annotations

import json

from aiohttp import web
from orders_helpers import eventually, make_customer, make_shop, ok, place
from orders_money_world import deliver, intents_of, keyed, refunds_stored

from fooddispatch.app import create_app
from payments.web import PAYMENTS
from payments.web_merchant import MERCHANT_POLICY

COMPONENTS = ("catalog", "payments", "orders")
MONEY_TYPES = ["refund.created", "payout.created", "payout.paid", "payout.failed"]


class Hooks:
    """A merchant's webhook endpoint: every body with its event-id header."""

    def __init__(self) -> None:
        self.got: list[tuple[dict, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((json.loads(await request.read()), request.headers["Fooddispatch-Event-Id"]))
        return web.Response(status=200)

    def of(self, event_type: str) -> dict[str, dict]:
        """The events of this type received, each once, by event id (delivery is at least once)."""
        return {body["id"]: body for body, _ in self.got if body["type"] == event_type}


async def _hooks(aiohttp_server, client, shop, types: list[str]) -> Hooks:
    hooks = Hooks()
    app = web.Application()
    app.router.add_post("/hook", hooks.handle)
    server = await aiohttp_server(app)
    await ok(await client.post("/v1/merchant/webhook_endpoints", headers=shop.staff, json={
        "url": str(server.make_url("/hook")), "event_types": types}), 201)
    return hooks


async def _delivered(client, make_principal, shop, customer, key: str) -> dict:
    _, cust, pm = customer
    order = await place(client, cust, pm, shop.store_id, key=key)
    await ok(await client.post(f"/v1/orders/{order['id']}/accept", json={}, headers=shop.staff))
    return await deliver(client, make_principal, order["id"])


async def _n_of(hooks: Hooks, event_type: str, n: int) -> dict[str, dict] | None:
    got = hooks.of(event_type)
    return got if len(got) >= n else None


async def test_every_refund_of_a_tenants_order_is_a_refund_created_webhook_and_event(
        client, db, aiohttp_server, shop_factory, make_principal) -> None:
    shop = await shop_factory()
    hooks = await _hooks(aiohttp_server, client, shop, MONEY_TYPES)
    customer = await make_customer(client, make_principal)
    by_operator, by_merchant, missing = [await _delivered(client, make_principal, shop, customer, k)
                                         for k in ("a", "b", "c")]
    _, operator = await make_principal("operator")
    [intent] = await intents_of(db, by_operator["id"])
    await ok(await client.post("/v1/refunds", headers=keyed(operator),
                               json={"payment_intent": intent["id"], "amount": 500}))
    await ok(await client.post(f"/v1/merchant/orders/{by_merchant['id']}/refunds", headers=keyed(shop.staff),
                               json={"amount": 300, "reason": "quality"}), 201)
    await ok(await client.post(f"/v1/orders/{missing['id']}/missing_items", headers=shop.operator,
                               json={"lines": [{"line_no": 2, "quantity": 1}]}))
    # Missing items reported before pickup are no refund (delivery captures less): order.refunded only.
    _, cust, pm = customer
    early = await place(client, cust, pm, shop.store_id, key="d")
    await ok(await client.post(f"/v1/orders/{early['id']}/accept", json={}, headers=shop.staff))
    await ok(await client.post(f"/v1/orders/{early['id']}/missing_items", headers=shop.staff,
                               json={"lines": [{"line_no": 2, "quantity": 1}]}))

    got = await eventually(lambda: _n_of(hooks, "refund.created", 3), within=30)
    data = {e["data"]["object"]["order_id"]: e["data"]["object"] for e in got.values()}
    assert set(data) == {by_operator["id"], by_merchant["id"], missing["id"]}
    assert {o: (d["amount"]["amount"], d["borne_by"], d["tenant_id"]) for o, d in data.items()} == {
        by_operator["id"]: (500, "platform", shop.tenant_id), by_merchant["id"]: (300, "restaurant", shop.tenant_id),
        missing["id"]: (428, "platform", shop.tenant_id)}
    intent_ids = [i["id"] for o in (by_operator, by_merchant, missing) for i in await intents_of(db, o["id"])]
    stored = await refunds_stored(db, intent_ids)
    assert {d["refund_id"]: d["amount"]["amount"] for d in data.values()} == stored
    for body, header in hooks.got:  # each delivery names its event: the header and the body's id agree
        assert header == body["id"]

    # The events API has them with the very bodies the webhooks carried; another tenant sees none of them.
    listed = await ok(await client.get("/v1/events", params={"type": "refund.created"}, headers=shop.staff))
    assert {e["id"] for e in listed["items"]} == set(got)
    some_id = next(iter(got))
    assert await ok(await client.get(f"/v1/events/{some_id}", headers=shop.staff)) == got[some_id]
    other = await ok(await client.post("/v1/tenants", json={"name": "B"}, headers=shop.operator), 201)
    _, staff_b = await make_principal("staff", tenant_id=other["id"])
    assert (await ok(await client.get("/v1/events", params={"type": "refund.*"}, headers=staff_b)))["items"] == []
    assert (await client.get(f"/v1/events/{some_id}", headers=staff_b)).status == 404
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'refund.created'") == 3


async def _due_now(db, tenant_id: str) -> None:
    async with db.acquire() as conn:
        await conn.execute("UPDATE merchant_payout_schedules SET next_run_at = now() - interval '1 second' "
                           "WHERE tenant_id = $1", tenant_id)


async def test_payouts_are_announced_and_a_failed_one_shows_its_reason_and_its_retry(
        aiohttp_client, aiohttp_server, settings, db, make_principal) -> None:
    app = create_app(settings.replace(merchant_pending_hours=0), components=COMPONENTS)
    client = await aiohttp_client(app)
    shop = await make_shop(client, make_principal)
    hooks = await _hooks(aiohttp_server, client, shop, MONEY_TYPES)
    await _delivered(client, make_principal, shop, await make_customer(client, make_principal), "a")
    await ok(await client.put("/v1/merchant/payout_schedule", headers=shop.staff,
                              json={"every": "daily", "currency": "EUR", "minimum_amount": 100}))
    run = app[PAYMENTS].merchant_payouts.run_due
    await _due_now(db, shop.tenant_id)
    assert await run(app[MERCHANT_POLICY]) == 1
    [first] = (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"]
    assert (first["failed_at"], first["retried_by"], first["next_attempt_at"], first["retry_of"]) == (
        None, None, None, [])

    await ok(await client.post(f"/v1/payouts/{first['id']}", headers=keyed(shop.operator),
                               json={"status": "failed", "failure_reason": "account_closed"}))
    schedule = await ok(await client.get("/v1/merchant/payout_schedule", headers=shop.staff))
    [failed] = (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"]
    assert (failed["status"], failed["failure_reason"], failed["retried_by"]) == ("failed", "account_closed", None)
    assert failed["failed_at"] is not None and failed["next_attempt_at"] == schedule["next_run_at"]

    await _due_now(db, shop.tenant_id)
    assert await run(app[MERCHANT_POLICY]) == 1
    retry, failed = (await ok(await client.get("/v1/merchant/payouts", headers=shop.staff)))["data"]
    assert (failed["retried_by"], failed["next_attempt_at"]) == (retry["id"], None)
    assert (retry["retry_of"], retry["amount"], retry["failed_at"]) == ([failed["id"]], first["amount"], None)
    await ok(await client.post(f"/v1/payouts/{retry['id']}", headers=keyed(shop.operator),
                               json={"status": "in_transit"}))
    await ok(await client.post(f"/v1/payouts/{retry['id']}", headers=keyed(shop.operator), json={"status": "paid"}))

    created = await eventually(lambda: _n_of(hooks, "payout.created", 2), within=30)
    [failed_hook] = (await eventually(lambda: _n_of(hooks, "payout.failed", 1), within=30)).values()
    [paid_hook] = (await eventually(lambda: _n_of(hooks, "payout.paid", 1), within=30)).values()
    made = {e["data"]["object"]["payout_id"]: e["data"]["object"] for e in created.values()}
    assert made[first["id"]]["retry_of"] == [] and made[retry["id"]]["retry_of"] == [first["id"]]
    assert {d["tenant_id"] for d in made.values()} == {shop.tenant_id}
    assert made[retry["id"]]["amount"] == {"amount": first["amount"], "currency": "EUR"}
    lost = failed_hook["data"]["object"]
    assert (lost["payout_id"], lost["status"], lost["failure_reason"]) == (first["id"], "failed", "account_closed")
    assert lost["next_attempt_at"] is not None
    assert (paid_hook["data"]["object"]["payout_id"], paid_hook["data"]["object"]["status"]) == (retry["id"], "paid")
    listed = await ok(await client.get("/v1/events", params={"type": "payout.*"}, headers=shop.staff))
    assert {e["id"] for e in listed["items"]} == {*created, failed_hook["id"], paid_hook["id"]}
    for body, header in hooks.got:
        assert header == body["id"]
