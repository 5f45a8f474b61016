"""Memberships over HTTP as a customer's app and an operator's console use it: plans, subscribing with a
saved card, reading, renewing on the app's clock, cancelling with a refund, and the errors' shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fooddispatch.app import create_app
from kernel.clock import ManualClock
from memberships.web import MEMBERSHIPS
from tests.e2e.orders.orders_helpers import VISA_DECLINE, make_customer, ok

PLAN = {"name": "Plus", "region": "default", "amount": 999, "currency": "EUR", "interval": "month",
        "benefits": {"free_delivery_min_subtotal": 1500, "service_fee_discount_bps": 5000}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2027, 3, 1, 8, 0, tzinfo=UTC))


@pytest.fixture
def app(settings, clock: ManualClock):
    return create_app(settings, clock=clock, components=("catalog", "payments", "memberships"))


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


async def test_subscribe_renew_and_cancel_with_a_refund(client, make_principal, clock: ManualClock) -> None:
    _, operator = await make_principal("operator")
    plan = await ok(await client.post("/v1/plans", json=PLAN, headers={**operator, **key("p1")}))
    assert (plan["object"], plan["amount"], plan["benefits"]["service_fee_discount_bps"]) == ("plan", 999, 5000)
    customer_id, cust, pm = await make_customer(client, make_principal)
    listed = await ok(await client.get("/v1/plans?region=default&currency=EUR", headers=cust))
    assert [p["id"] for p in listed["data"]] == [plan["id"]]

    sub = await ok(await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": pm},
                                     headers={**cust, **key("s1")}))
    assert (sub["object"], sub["status"], sub["customer"]) == ("subscription", "active", customer_id)
    again = await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": pm},
                              headers={**cust, **key("s2")})
    assert again.status == 409 and (await again.json())["error"]["code"] == "subscription_exists"

    clock.advance(sub["current_period_end"] - clock.now().timestamp() + 1)
    assert await client.app[MEMBERSHIPS].run_due() == 1
    invoices = await ok(await client.get(f"/v1/invoices?subscription={sub['id']}", headers=cust))
    assert [(i["status"], i["amount_paid"]) for i in invoices["data"]] == [("paid", 999), ("paid", 999)]

    clock.advance(86400 * 3)
    canceled = await ok(await client.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"refund": True},
                                          headers={**cust, **key("c1")}))
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "requested")
    latest = await ok(await client.get(f"/v1/invoices/{invoices['data'][0]['id']}", headers=cust))
    assert 0 < latest["amount_refunded"] < 999


async def test_others_see_nothing_and_bad_input_is_a_clean_error(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    plan = await ok(await client.post("/v1/plans", json=PLAN, headers={**operator, **key("p2")}))
    _, cust, pm = await make_customer(client, make_principal)
    sub = await ok(await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": pm},
                                     headers={**cust, **key("s3")}))
    _, stranger, stranger_pm = await make_customer(client, make_principal)
    for path in (f"/v1/subscriptions/{sub['id']}", f"/v1/invoices?subscription={sub['id']}"):
        resp = await client.get(path, headers=stranger)
        body = await resp.json()
        assert resp.status == 404 or body["data"] == [], (path, body)
    resp = await client.post(f"/v1/subscriptions/{sub['id']}/cancel", json={}, headers={**stranger, **key("x1")})
    assert resp.status == 404
    # someone else's card is not a card of yours
    resp = await client.post(f"/v1/subscriptions/{sub['id']}", json={"payment_method": stranger_pm},
                             headers={**cust, **key("x2")})
    assert resp.status == 422 and (await resp.json())["error"]["param"] == "payment_method"
    resp = await client.post("/v1/plans", json={**PLAN, "amount": -1}, headers={**operator, **key("x3")})
    assert resp.status == 422 and (await resp.json())["error"]["param"] == "amount"
    resp = await client.post("/v1/plans", json=PLAN, headers={**cust, **key("x4")})
    assert resp.status == 403
    _, declined, bad_pm = await make_customer(client, make_principal, VISA_DECLINE)
    resp = await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": bad_pm},
                             headers={**declined, **key("x5")})
    assert resp.status == 402 and (await resp.json())["error"]["code"] == "card_declined"
    assert (await ok(await client.get("/v1/subscriptions", headers=declined)))["data"] == []


async def _walk(client, path: str, headers: dict[str, str]) -> list[tuple[list[str], bool]]:
    """Every page of a list, following `starting_after` from the last id of each page: (ids, has_more)."""
    pages: list[tuple[list[str], bool]] = []
    cursor = ""
    while True:
        page = await ok(await client.get(path + cursor, headers=headers))
        pages.append(([item["id"] for item in page["data"]], page["has_more"]))
        if not page["has_more"]:
            return pages
        assert len(pages) < 10, pages  # a cursor that does not move on would loop
        cursor = f"&starting_after={pages[-1][0][-1]}"


async def test_lists_page_stripes_way_each_item_once_newest_first(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    made = [(await ok(await client.post("/v1/plans", json={**PLAN, "region": "paging", "name": f"Plus {n}"},
                                        headers={**operator, **key(f"pp{n}")})))["id"] for n in range(5)]
    await ok(await client.post("/v1/plans", json=PLAN, headers={**operator, **key("pp-other")}))  # filtered out
    pages = await _walk(client, "/v1/plans?region=paging&limit=2", operator)
    assert [len(ids) for ids, _ in pages] == [2, 2, 1]
    assert [more for _, more in pages] == [True, True, False]
    assert [i for ids, _ in pages for i in ids] == sorted(made, reverse=True)  # ids are time-ordered: newest first

    # a customer pages through their own subscriptions only, while someone else subscribes in between
    plan = made[0]
    customer_id, cust, pm = await make_customer(client, make_principal)
    _, other, other_pm = await make_customer(client, make_principal)
    mine = []
    for n in range(3):
        sub = await ok(await client.post("/v1/subscriptions", json={"plan": plan, "payment_method": pm},
                                         headers={**cust, **key(f"ps{n}")}))
        await ok(await client.delete(f"/v1/subscriptions/{sub['id']}", headers={**cust, **key(f"pd{n}")}))
        mine.append(sub["id"])
        if n == 0:
            theirs = await ok(await client.post("/v1/subscriptions", json={"plan": plan, "payment_method": other_pm},
                                                headers={**other, **key("po")}))
    newest_first = sorted(mine, reverse=True)
    for path, headers in (("/v1/subscriptions?limit=2", cust),
                          (f"/v1/subscriptions?limit=2&customer={customer_id}", operator)):
        assert await _walk(client, path, headers) == [(newest_first[:2], True), (newest_first[2:], False)], path
    # another's id as the cursor shows the caller only their own
    page = await ok(await client.get(f"/v1/subscriptions?starting_after={mine[-1]}", headers=other))
    assert {s["id"] for s in page["data"]} <= {theirs["id"]} and page["has_more"] is False
    # an id of another kind, or garbage, is refused the same way
    for bad in (plan, "nope"):
        resp = await client.get(f"/v1/invoices?starting_after={bad}", headers=cust)
        error = (await resp.json())["error"]
        assert (resp.status, error["code"], error["param"]) == (400, "cursor_invalid", "starting_after")


async def test_one_trial_per_customer_cancel_and_subscribe_again_is_charged_at_once(client, make_principal) -> None:
    _, operator = await make_principal("operator")
    plan = await ok(await client.post("/v1/plans", json={**PLAN, "trial_days": 14},
                                      headers={**operator, **key("tp1")}))
    _, cust, pm = await make_customer(client, make_principal)
    body = {"plan": plan["id"], "payment_method": pm}
    first = await ok(await client.post("/v1/subscriptions", json=body, headers={**cust, **key("ts1")}))
    assert first["status"] == "trialing" and first["trial_end"] == first["current_period_end"]
    await ok(await client.delete(f"/v1/subscriptions/{first['id']}", headers={**cust, **key("td1")}))

    again = await ok(await client.post("/v1/subscriptions", json=body, headers={**cust, **key("ts2")}))
    assert (again["status"], again["trial_end"], again["latest_invoice"]) == ("active", None, None)
    invoices = await ok(await client.get(f"/v1/invoices?subscription={again['id']}", headers=cust))
    assert [(i["status"], i["amount_paid"]) for i in invoices["data"]] == [("paid", 999)]

    _, newcomer, newcomer_pm = await make_customer(client, make_principal)
    fresh = await ok(await client.post("/v1/subscriptions", json={"plan": plan["id"], "payment_method": newcomer_pm},
                                       headers={**newcomer, **key("ts3")}))
    assert fresh["status"] == "trialing" and fresh["trial_end"] is not None
