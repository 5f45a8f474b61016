"""Idempotency-Key on the routes that used to ignore it, as the issue saw them: a missing-items
refund sent twice, a tablet's accept retried, one key with two bodies; and the public routes,
whose stored responses carry credentials."""

from __future__ import annotations

import pytest
from idempotency_world import World, unique


@pytest.fixture
def app(settings):
    from fooddispatch.app import create_app

    return create_app(settings, components=("catalog", "payments", "orders"))


@pytest.fixture
def world(client, make_principal) -> World:
    return World(client, make_principal)


async def test_missing_items_sent_twice_with_one_key_refunds_once(client, world) -> None:
    order = await world.order("accepted")
    _, staff = await world.tenant()
    url = f"/v1/orders/{order.id}/missing_items"
    headers = {**staff, "Idempotency-Key": "missing-burger"}
    body = {"lines": [{"line_no": 1, "quantity": 1}]}  # one of the two burgers
    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)
    assert first.status == second.status == 200
    assert await first.read() == await second.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    refunded = (await first.json())["refunded"]["amount"]
    assert refunded == 1000 + 70  # the burger and its 7 % tax, once
    shown = await (await client.get(f"/v1/orders/{order.id}", headers=staff)).json()
    assert shown["refunded"]["amount"] == 1070 and [ln["missing_quantity"] for ln in shown["lines"]] == [1, 0]
    delivered = await world.advance(order, "assigned", "picked_up", "delivered")
    assert delivered["captured"]["amount"] == shown["total"]["amount"] - 1070  # charged less by one burger


async def test_the_tablets_accept_retried_with_its_key_gets_the_first_200(client, world) -> None:
    order = await world.order("placed")
    _, staff = await world.tenant()
    headers = {**staff, "Idempotency-Key": "tablet-accept-1"}
    first = await client.post(f"/v1/orders/{order.id}/accept", json={"prep_time_s": 600}, headers=headers)
    retry = await client.post(f"/v1/orders/{order.id}/accept", json={"prep_time_s": 600}, headers=headers)
    assert first.status == retry.status == 200
    assert await retry.read() == await first.read()
    assert retry.headers["Idempotent-Replayed"] == "true"
    fresh = await client.post(f"/v1/orders/{order.id}/accept", json={"prep_time_s": 600},
                              headers={**staff, "Idempotency-Key": "tablet-accept-2"})
    assert fresh.status == 409  # a new key is a new request: the order is accepted already


async def test_one_key_with_another_body_is_400_and_changes_nothing(client, world) -> None:
    order = await world.order("accepted")
    _, staff = await world.tenant()
    url = f"/v1/orders/{order.id}/prep_time"
    headers = {**staff, "Idempotency-Key": "prep-1"}
    assert (await client.post(url, json={"prep_time_s": 1200}, headers=headers)).status == 200
    reused = await client.post(url, json={"prep_time_s": 1500}, headers=headers)
    assert reused.status == 400
    error = (await reused.json())["error"]
    assert (error["code"], error["param"]) == ("idempotency_key_reused", "Idempotency-Key")
    shown = await (await client.get(f"/v1/orders/{order.id}", headers=staff)).json()
    assert shown["prep_time_s"] == 1200
    other_path = await client.post(f"/v1/orders/{order.id}/preparing", headers=headers)
    assert other_path.status == 400  # the same key on another route is another request too


async def test_without_a_key_a_write_runs_every_time_and_a_bad_key_is_refused(client, world) -> None:
    _, customer, _ = await world.customer()
    cart = world.cart(await world.store())
    a = await (await client.post("/v1/quotes", json=cart, headers=customer)).json()
    b = await (await client.post("/v1/quotes", json=cart, headers=customer)).json()
    assert a["id"] != b["id"]
    long_key = await client.post("/v1/quotes", json=cart, headers={**customer, "Idempotency-Key": "k" * 256})
    assert long_key.status == 422 and (await long_key.json())["error"]["param"] == "Idempotency-Key"
    control = await client.post("/v1/quotes", json=cart, headers={**customer, "Idempotency-Key": "a\tb"})
    assert control.status == 422


async def test_a_login_is_replayed_only_to_whoever_sends_the_same_credentials(client) -> None:
    email = f"{unique('ana')}@example.com"
    body = {"email": email, "password": "correct horse battery"}
    registered = await client.post("/v1/auth/register", json=body, headers={"Idempotency-Key": "reg"})
    again = await client.post("/v1/auth/register", json=body, headers={"Idempotency-Key": "reg"})
    assert registered.status == again.status == 201 and await again.read() == await registered.read()
    key = {"Idempotency-Key": "login-1"}
    first = await client.post("/v1/auth/login", json=body, headers=key)
    replay = await client.post("/v1/auth/login", json=body, headers=key)
    assert first.status == replay.status == 200
    assert replay.headers["Idempotent-Replayed"] == "true" and await replay.read() == await first.read()
    token = (await first.json())["token"]
    # Someone else with the same key gets their own answer: never the stored token, never "reused".
    wrong = await client.post("/v1/auth/login", json={**body, "password": "guessing!!"}, headers=key)
    assert wrong.status == 401 and token not in await wrong.text()
    other = {"email": f"{unique('bo')}@example.com", "password": "another horse battery"}
    await client.post("/v1/auth/register", json=other)
    theirs = await client.post("/v1/auth/login", json=other, headers=key)
    assert theirs.status == 200 and "Idempotent-Replayed" not in theirs.headers
    assert (await theirs.json())["token"] != token


async def test_stored_responses_hold_no_readable_credential(client, world, db) -> None:
    body = {"email": f"{unique('cy')}@example.com", "password": "correct horse battery"}
    await client.post("/v1/auth/register", json=body)
    login = await (await client.post("/v1/auth/login", json=body, headers={"Idempotency-Key": "l"})).json()
    tenant_id, staff = await world.tenant()
    api_key = await (await client.post(f"/v1/tenants/{tenant_id}/api_keys", json={"name": "pos"},
                                       headers={**staff, "Idempotency-Key": "pos-key"})).json()
    secrets = [login["token"], api_key["key"], body["password"]]
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT principal, fingerprint, body FROM idempotency_keys")
    assert len(rows) == 2 and all(row["body"] for row in rows)
    for row in rows:
        stored = bytes(row["body"]) + row["fingerprint"].encode() + row["principal"].encode()
        for secret in secrets:
            assert secret.encode() not in stored
        assert b'"token"' not in stored and b'"key"' not in stored  # not even the JSON around them
