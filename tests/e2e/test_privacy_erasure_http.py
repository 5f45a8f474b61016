"""POST /v1/privacy/erasure: a person's data erased everywhere it lives (every table, every Redis key, the
logs the app writes), their tokens revoked, financial records kept under the bare id; idempotent and
recorded (docs/PRIVACY.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from idempotency_world import World, ok
from privacy_world import NOTE, PHONE, People, delivered_order, eventually, privacy_app, send_fixes

from fooddispatch.keys import REDIS, SETTINGS
from geo.live import LiveKeys
from tracking import web as tracking_web


@pytest.fixture
def app(settings):
    return privacy_app(settings)


async def tables_holding(db: Any, needle: str) -> list[str]:
    """Every table (partitions included) with a row whose text, or a bytea column, contains `needle`."""
    found = []
    async with db.acquire() as conn:
        tables = await conn.fetch(
            "SELECT c.oid::regclass::text AS name, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'")
        for t in tables:
            binary = await conn.fetch("SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 "
                                      "AND atttypid = 'bytea'::regtype AND NOT attisdropped", t["oid"])
            checks = ["t::text ILIKE '%' || $1 || '%'"] + [
                f"position(convert_to($1, 'UTF8') in {b['attname']}) > 0"
                for b in binary]
            if await conn.fetchval(f"SELECT count(*) FROM {t['name']} t WHERE {' OR '.join(checks)}", needle):
                found.append(t["name"])
    return found


async def redis_holding(app: Any, needle: str) -> list[str]:
    """Every key of the app whose name or value (any type) contains `needle`."""
    redis, found = app[REDIS], []
    async for key in redis.scan_iter(match=f"{app[SETTINGS].redis_prefix}*", count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values: Any = [await redis.get(key)]
        elif kind == "hash":
            values = list((await redis.hgetall(key)).items())
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = await redis.zrange(key, 0, -1)
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "stream":
            values = [e[1] for e in await redis.xrange(key)]
        else:
            values = []
        if needle.lower().encode() in (repr(key) + repr(values)).lower().encode():
            found.append(key.decode())
    return found


async def everywhere(app: Any, db: Any, needle: str) -> list[str]:
    return await tables_holding(db, needle) + await redis_holding(app, needle)


async def test_an_erased_customer_is_found_nowhere_and_their_orders_and_money_stay(
        client, app, make_principal, db, capsys) -> None:
    p = await delivered_order(client, make_principal, db)
    # before: the searches do find them (so they could fail)
    for needle in (p.email, p.name, PHONE):
        assert await everywhere(app, db, needle), needle
    erased = await ok(await client.post("/v1/privacy/erasure", headers=p.customer, json={}))
    assert (erased["account_id"], erased["requested_by"], erased["reason"]) == (
        p.customer_id, p.customer_id, "the person's own request")
    assert erased["completed_at"] is not None and erased["summary"]["orders"] == 1
    for needle in (p.email, p.name, PHONE, NOTE, "Torstr. 1"):
        assert await everywhere(app, db, needle) == [], needle
    logs = capsys.readouterr()
    assert not any(n in logs.out + logs.err for n in (p.email, p.name, PHONE)), "the logs name the person"
    # tokens revoked, the email no longer logs in
    me = await client.get("/v1/me", headers=p.customer)
    assert (me.status, (await me.json())["error"]["code"]) == (401, "token_revoked")
    login = await client.post("/v1/auth/login", json={"email": p.email, "password": "correct horse 1"})
    assert login.status == 401
    # the money is still there, under the bare id
    async with db.acquire() as conn:
        order = await conn.fetchrow("SELECT customer_id, captured, address FROM orders WHERE id = $1", p.order_id)
        assert (order["customer_id"], order["captured"] > 0, order["address"]) == (p.customer_id, True, "[erased]")
        assert await conn.fetchval("SELECT count(*) FROM payment_intents WHERE customer_id = $1", p.customer_id) == 1
        assert await conn.fetchval("SELECT count(*) FROM card_vault") == 0
        assert await conn.fetchval("SELECT count(*) FROM journal_entries") > 0


async def test_erasure_is_idempotent_and_recorded_with_who_asked(client, make_principal, db) -> None:
    p = await delivered_order(client, make_principal, db)
    refused = await client.post("/v1/privacy/erasure", headers=p.operator, json={"account_id": p.customer_id})
    assert (refused.status, (await refused.json())["error"]["param"]) == (422, "reason")
    first = await ok(await client.post("/v1/privacy/erasure", headers=p.operator,
                                       json={"account_id": p.customer_id, "reason": "GDPR art. 17 letter"}))
    again = await ok(await client.post("/v1/privacy/erasure", headers=p.operator,
                                       json={"account_id": p.customer_id, "reason": "asked twice"}))
    assert again == first and first["requested_by_role"] == "operator"
    assert first["reason"] == "GDPR art. 17 letter"
    async with db.acquire() as conn:
        row = await conn.fetchrow("SELECT requested_by, requested_at, completed_at FROM privacy_erasures "
                                  "WHERE account_id = $1", p.customer_id)
    assert row["requested_by"] != p.customer_id and row["completed_at"] is not None
    other = await client.post("/v1/privacy/erasure", headers=p.courier, json={"account_id": p.customer_id})
    assert other.status == 403


async def test_an_erased_courier_leaves_the_live_index_and_its_track_is_gone(
        client, app, make_principal, db) -> None:
    p: People = await delivered_order(client, make_principal, db)
    await send_fixes(client, p.courier, 2, start_seq=10)
    keys = LiveKeys(app[SETTINGS].redis_prefix, app[SETTINGS].region)
    redis = app[REDIS]
    assert await redis.hexists(keys.state, p.courier_id)
    device = await ok(await client.post(f"/v1/couriers/{p.courier_id}/device_keys", headers=p.operator,
                                        json={"name": f"{p.courier_name}'s phone"}))
    async with client.ws_connect("/v1/courier/ws", headers=p.courier) as ws:
        await ok(await client.post("/v1/privacy/erasure", headers=p.operator,
                                   json={"account_id": p.courier_id, "reason": "courier left, asked"}))
        async with asyncio.timeout(5):
            while (closed := await ws.receive()).type.name == "TEXT":
                pass  # the ack of the resumed track
        assert closed.type.name in ("CLOSE", "CLOSED")
    assert not await redis.hexists(keys.state, p.courier_id)
    assert await redis.zscore(keys.geo, p.courier_id) is None and await redis.zscore(keys.seen, p.courier_id) is None
    for needle in (p.courier_email, p.courier_name):
        assert await everywhere(app, db, needle) == [], needle
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM courier_locations WHERE courier_id = $1", p.courier_id) == 0
        assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM tracking_device_keys WHERE id = $1",
                                   device["id"])
        # its deliveries and earnings stay, under the bare id
        assert await conn.fetchval("SELECT courier_id FROM orders WHERE id = $1", p.order_id) == p.courier_id
        assert await conn.fetchval("SELECT count(*) FROM ledger_accounts WHERE owner_id = $1", p.courier_id) >= 1
    with pytest.raises(WSServerHandshakeError) as refused:  # its token no longer opens a socket
        await client.ws_connect("/v1/courier/ws", headers=p.courier)
    assert refused.value.status == 401
    names = await ok(await client.get("/v1/ops/courier_names", headers=p.operator, params={"ids": p.courier_id}))
    assert names == {"names": {}}

    async def no_new_fixes() -> bool:  # nothing the socket sent comes back later
        async with db.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM courier_locations WHERE courier_id = $1",
                                       p.courier_id) == 0

    assert await eventually(no_new_fixes)


async def test_a_person_with_an_order_in_progress_is_erased_once_it_has_ended(client, make_principal, db) -> None:
    world = World(client, make_principal)
    order = await world.order("placed")
    me = await ok(await client.get("/v1/me", headers=order.customer))
    refused = await client.post("/v1/privacy/erasure", headers=order.customer, json={})
    assert (refused.status, (await refused.json())["error"]["code"]) == (409, "orders_in_progress")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM privacy_erasures") == 0
    await ok(await client.post(f"/v1/orders/{order.id}/cancel", headers=order.customer, json={}))
    # a membership renews on the customer's card: the erasure waits for it to end too
    plan = await world.post("/v1/plans", await world.operator(), {
        "name": "Walk Plus", "region": "default", "amount": 499, "currency": "EUR", "interval": "month"}, key=True)
    sub = await world.post("/v1/subscriptions", order.customer, {"plan": plan["id"], "payment_method": order.pm},
                           key=True)
    exported = await ok(await client.get("/v1/privacy/export", headers=order.customer))
    assert [s["id"] for s in exported["parts"]["memberships"]["subscriptions"]] == [sub["id"]]
    refused = await client.post("/v1/privacy/erasure", headers=order.customer, json={})
    assert (refused.status, (await refused.json())["error"]["code"]) == (409, "membership_active")
    await world.post(f"/v1/subscriptions/{sub['id']}/cancel", order.customer, {"refund": True}, key=True)
    erased = await ok(await client.post("/v1/privacy/erasure", headers=order.customer, json={}))
    assert erased["account_id"] == me["account_id"] and erased["summary"]["orders"] == 1


async def test_an_erased_customers_tracking_sockets_close_on_every_process(
        client, aiohttp_client, settings, make_principal) -> None:
    world = World(client, make_principal)
    order = await world.order("placed")
    link = await world.post(f"/v1/orders/{order.id}/tracking_links", order.customer, {}, key=True)
    await ok(await client.post(f"/v1/orders/{order.id}/cancel", headers=order.customer, json={}))
    customer_id = (await ok(await client.get("/v1/me", headers=order.customer)))["account_id"]
    other = await aiohttp_client(privacy_app(settings))  # another process: its own sockets and subscriptions
    _, operator = await make_principal("operator")
    track = f"/v1/orders/{order.id}/track"
    async with client.ws_connect(track, headers=order.customer) as here, \
            other.ws_connect(track, headers=order.customer) as there, \
            other.ws_connect(f"/v1/orders/{order.id}/tracking/ws", params={"token": link["token"]}) as shared, \
            other.ws_connect(track, headers=operator) as operators:
        for ws in (here, there, shared, operators):
            async with asyncio.timeout(5):
                assert (await ws.receive_json())["type"] == "status"  # joined
        await ok(await client.post("/v1/privacy/erasure", headers=operator,
                                   json={"account_id": customer_id, "reason": "GDPR art. 17 letter"}))
        for ws, reason in ((here, "account_erased"), (there, "account_erased"), (shared, "tracking_link_revoked")):
            async with asyncio.timeout(5):
                while (closed := await ws.receive()).type.name == "TEXT":
                    pass  # a status frame in flight
            assert (closed.type.name, closed.data, closed.extra) == ("CLOSE", 4410, reason)
        watchers = other.app[tracking_web.WATCHERS]

        async def only_the_operator_left() -> bool:
            return watchers.count == 1 and not operators.closed

        assert await eventually(only_the_operator_left)  # staff's and operators' views are not the customer's
