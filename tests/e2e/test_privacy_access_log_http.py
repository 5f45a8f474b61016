"""The access log (docs/PRIVACY.md): operators' views of a customer or courier need a reason and are
recorded (who, whom, what, when, why); only auditors read the log (GET /v1/privacy/access_log)."""

from __future__ import annotations

import time

import pytest
from idempotency_world import ok
from privacy_world import privacy_app

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
