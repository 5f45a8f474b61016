"""GET /v1/privacy/export: a customer's and a courier's archive of what is held about them, each package's
part (docs/PRIVACY.md); cards only as last4 and fingerprint; operators name the person and say why."""

from __future__ import annotations

import pytest
from idempotency_world import CARD, ok
from privacy_world import delivered_order, eventually, privacy_app


@pytest.fixture
def app(settings):
    return privacy_app(settings)


async def _export(client, headers, **params) -> dict:
    return await ok(await client.get("/v1/privacy/export", headers=headers, params=params))


async def test_a_customer_downloads_everything_held_about_them_and_never_the_card_number(
        client, make_principal, db) -> None:
    p = await delivered_order(client, make_principal, db)

    async def shown() -> dict | None:  # tracking's projection hears the delivery through the event stream
        found = await _export(client, p.customer)
        return found if found["parts"]["tracking"]["orders"][0]["ended_at"] else None

    resp = await client.get("/v1/privacy/export", headers=p.customer)
    assert resp.headers["Content-Disposition"] == f'attachment; filename="privacy-export-{p.customer_id}.json"'
    raw = await resp.read()
    assert CARD["number"].encode() not in raw and b"ciphertext" not in raw and b"password" not in raw
    found = await eventually(shown)
    parts = found["parts"]
    assert (found["account_id"], found["role"]) == (p.customer_id, "customer")
    assert (parts["account"]["email"], parts["account"]["name"]) == (p.email, p.name)
    [order] = parts["orders"]["orders"]
    assert (order["id"], order["status"], order["address"]) == (p.order_id, "delivered", "Torstr. 1, Berlin")
    assert [line["item_id"] for line in order["lines"]] == ["itm_burger", "itm_fries"]
    assert [h["to_status"] for h in order["history"]][-1] == "delivered"
    assert parts["orders"]["addresses"] == ["Torstr. 1, Berlin"]
    assert parts["orders"]["support_actions"] == [  # what operators and the system did to their orders
        {**h, "order_id": p.order_id} for h in order["history"] if h["actor"] in ("operator", "system")]
    [card] = parts["payments"]["payment_methods"]
    assert (card["last4"], card["holder_name"], len(card["fingerprint"]) > 8) == ("4242", p.name, True)
    assert "number" not in card and "token" not in card
    assert parts["payments"]["payment_intents"][0]["amount_captured"] > 0
    [tracked] = parts["tracking"]["orders"]
    assert tracked["courier_id"] == p.courier_id
    assert len(tracked["courier_positions_shown"]) == 3  # the fixes sent while the courier had the order
    assert parts["erasure"] is None
    assert parts["reads_of_your_data"][-1]["what"] == "privacy.export"


async def test_a_courier_downloads_its_own_track_shifts_deliveries_and_earnings(client, make_principal, db) -> None:
    p = await delivered_order(client, make_principal, db)
    found = await _export(client, p.courier)
    parts = found["parts"]
    assert (found["role"], parts["account"]["name"], parts["account"]["email"]) == (
        "courier", p.courier_name, p.courier_email)
    assert len(parts["tracking"]["track"]) == 3
    [shift] = parts["tracking"]["shifts"]
    assert shift["fixes"] == 3
    assert [d["id"] for d in parts["orders"]["deliveries"]] == [p.order_id]
    assert "address" not in parts["orders"]["deliveries"][0]  # the customer's data is not the courier's
    earnings = parts["payments"]["earnings"]
    assert earnings and all(e["amount"] != 0 for e in earnings)
    assert parts["dispatch"] == {"offers": []}  # handed over by an operator: no offer was made
    assert "orders" not in parts["tracking"] and "payment_methods" not in parts["payments"]


async def test_operators_name_the_person_and_say_why_others_may_not_export(client, make_principal, db) -> None:
    p = await delivered_order(client, make_principal, db)
    refused = await client.get("/v1/privacy/export", headers=p.operator, params={"account_id": p.customer_id})
    assert (refused.status, (await refused.json())["error"]["param"]) == (422, "reason")
    refused = await client.get("/v1/privacy/export", headers=p.operator, params={"reason": "ticket 7"})
    assert (refused.status, (await refused.json())["error"]["param"]) == (422, "account_id")
    found = await _export(client, p.operator, account_id=p.customer_id, reason="support ticket 4711")
    assert found["parts"]["account"]["email"] == p.email
    other = await client.get("/v1/privacy/export", headers=p.courier, params={"account_id": p.customer_id})
    assert other.status == 403
    _, staff = await make_principal("staff", tenant_id="ten_x")
    assert (await client.get("/v1/privacy/export", headers=staff)).status == 403
    _, operator = await make_principal("operator")
    missing = await client.get("/v1/privacy/export", headers=operator, params={"account_id": "cus_nobody",
                                                                               "reason": "support ticket"})
    assert missing.status == 404
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT actor_role, subject_id, what, reason FROM privacy_access_log ORDER BY id")
    assert [tuple(r) for r in rows] == [("operator", p.customer_id, "privacy.export", "support ticket 4711")]
