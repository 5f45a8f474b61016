"""The access log (docs/PRIVACY.md): operators' views of a customer or courier need a reason and are
recorded (who, whom, what, when, why); only auditors read the log (GET /v1/privacy/access_log)."""

from __future__ import annotations

import time

import pytest
from idempotency_world import World, ok
from privacy_world import eventually, privacy_app

from fooddispatch.ops.web import OPS_FEED


@pytest.fixture
def app(settings):
    return privacy_app(settings)


async def test_operator_views_of_a_person_need_a_reason_and_only_auditors_read_the_log(
        client, app, make_principal) -> None:
    operator_who, operator = await make_principal("operator")
    customer_who, customer = await make_principal("customer")
    courier_who, courier = await make_principal("courier")
    _, staff = await make_principal("staff", tenant_id="ten_x")
    made = await ok(await client.post("/v1/accounts", headers=operator, json={"role": "auditor", "name": "Audit"}))
    _, auditor = await make_principal("auditor")
    assert made["role"] == "auditor"
    wallet = f"/v1/wallets/{customer_who.account_id}"
    refused = await client.get(wallet, headers=operator)
    assert (refused.status, (await refused.json())["error"]["param"]) == (422, "reason")
    await ok(await client.get(wallet, headers=operator, params={"reason": "chargeback 991"}))
    await ok(await client.get(f"{wallet}/transactions", headers=operator,
                              params={"reason": "chargeback 991", "limit": "5"}))
    await ok(await client.get("/v1/wallets/ten_restaurant", headers=operator))  # not a person: as before
    await ok(await client.get("/v1/wallets/me", headers=customer))  # a person's own view: not logged
    courier_view = f"/v1/ops/couriers/{courier_who.account_id}"
    assert (await client.get(courier_view, headers=operator)).status == 404  # the route's own answer first
    # the console's view knows the courier (as when it hears its status change on the stream)
    app[OPS_FEED].projection.apply("courier.status_changed", {"courier_id": courier_who.account_id,
                                                              "status": "online"}, time.time())
    assert (await client.get(courier_view, headers=operator)).status == 422
    await ok(await client.get(courier_view, headers=operator, params={"reason": "late deliveries"}))
    await ok(await client.get("/v1/privacy/export", headers=customer))  # an export is always recorded

    for who in (operator, staff, customer, courier):
        assert (await client.get("/v1/privacy/access_log", headers=who)).status == 403
    log = await ok(await client.get("/v1/privacy/access_log", headers=auditor))
    rows = [(e["actor_id"], e["subject_id"], e["what"], e["reason"]) for e in log["items"]]
    assert rows == [
        (operator_who.account_id, customer_who.account_id, "GET /v1/wallets/{owner}", "chargeback 991"),
        (operator_who.account_id, customer_who.account_id, "GET /v1/wallets/{owner}/transactions", "chargeback 991"),
        (operator_who.account_id, courier_who.account_id, "GET /v1/ops/couriers/{courier_id}", "late deliveries"),
        (customer_who.account_id, customer_who.account_id, "privacy.export", "the person's own request"),
    ]
    assert all(e["at"] and e["request_id"] for e in log["items"])
    page = await ok(await client.get("/v1/privacy/access_log", headers=auditor,
                                     params={"subject_id": customer_who.account_id, "limit": "2"}))
    assert [e["what"] for e in page["items"]] == ["GET /v1/wallets/{owner}", "GET /v1/wallets/{owner}/transactions"]
    rest = await ok(await client.get("/v1/privacy/access_log", headers=auditor,
                                     params={"subject_id": customer_who.account_id, "cursor": page["next_cursor"]}))
    assert ([e["what"] for e in rest["items"]], rest["next_cursor"]) == (["privacy.export"], None)
    # an auditor reads the log and nothing of a person
    assert (await client.get("/v1/privacy/export", headers=auditor)).status == 403
    assert (await client.get(wallet, headers=auditor, params={"reason": "curious"})).status == 403


async def test_operator_views_of_an_order_are_logged_for_its_customer_and_courier(
        client, app, make_principal) -> None:
    world = World(client, make_principal)
    courier_id, _ = courier = await world.courier()
    order = await world.order("assigned", courier)
    operator_who, operator = await make_principal("operator")
    _, auditor = await make_principal("auditor")
    url = f"/v1/orders/{order.id}"
    customer_id = (await ok(await client.get(url, headers=order.customer)))["customer_id"]  # their own: not logged
    await ok(await client.get(url, headers=courier[1]))  # the courier's own order: not logged
    await ok(await client.get(url, headers=operator))  # no reason: the route's purpose is logged
    await ok(await client.get(url, headers=operator, params={"reason": "complaint 88: cold food"}))
    short = await client.get(url, headers=operator, params={"reason": "x"})
    assert (short.status, (await short.json())["error"]["param"]) == (422, "reason")
    assert (await client.get("/v1/orders/ord_nonesuch", headers=operator)).status == 404  # nothing read

    async def in_console() -> bool:  # the console's view hears the order's events from the stream
        seen = app[OPS_FEED].projection.orders.get(order.id)
        return seen is not None and seen.courier_id == courier_id

    await eventually(in_console)
    await ok(await client.get(f"/v1/ops/orders/{order.id}", headers=operator,
                              params={"reason": "operations console: order detail"}))
    log = await ok(await client.get("/v1/privacy/access_log", headers=auditor,
                                    params={"actor_id": operator_who.account_id}))
    rows = [(e["actor_id"], e["actor_role"], e["subject_id"], e["what"], e["reason"]) for e in log["items"]]
    view, timeline = f"GET /v1/orders/{{order_id}} {order.id}", f"GET /v1/ops/orders/{{order_id}} {order.id}"
    operator_id = operator_who.account_id
    assert rows == [
        (operator_id, "operator", customer_id, view, "operations: order view"),
        (operator_id, "operator", courier_id, view, "operations: order view"),
        (operator_id, "operator", customer_id, view, "complaint 88: cold food"),
        (operator_id, "operator", courier_id, view, "complaint 88: cold food"),
        (operator_id, "operator", customer_id, timeline, "operations console: order detail"),
        (operator_id, "operator", courier_id, timeline, "operations console: order detail"),
    ]
    mine = await ok(await client.get("/v1/privacy/access_log", headers=auditor, params={"subject_id": customer_id}))
    assert {e["actor_id"] for e in mine["items"]} == {operator_id}  # the customer's own reads left no entry
