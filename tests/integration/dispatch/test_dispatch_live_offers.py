"""The live dispatcher against real Postgres and Redis: fencing, fail-over, declines, time-outs
and answers that must change nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from dispatch.live import DispatchKeys, Lease
from dispatch.offers import lease_value
from fooddispatch.config import Settings
from kernel.clock import ManualClock

REGION = "test-region"
NEAR = (52.5205, 13.4055)
FAR = (52.5300, 13.4200)


async def pending_offers(db: asyncpg.Pool) -> list[asyncpg.Record]:
    async with db.acquire() as conn:
        return await conn.fetch("SELECT * FROM dispatch_offers WHERE status = 'pending' ORDER BY created_at")


async def order_row(db: asyncpg.Pool, order_id: str) -> asyncpg.Record:
    async with db.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM dispatch_orders WHERE order_id = $1", order_id)


async def outbox_events(db: asyncpg.Pool, type_: str) -> list[dict[str, Any]]:
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT payload::text AS p FROM outbox WHERE type = $1 ORDER BY seq", type_)
    return [json.loads(r["p"])["data"] for r in rows]


class Inbox:
    """Frames published on some couriers' channels."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self.prefix = prefix

    async def watch(self, *courier_ids: str) -> Inbox:
        await self.pubsub.subscribe(*[f"{self.prefix}courier:{c}" for c in courier_ids])
        return self

    async def next(self) -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(3.0):
            while True:
                msg = await self.pubsub.get_message(timeout=0.1)
                if msg is not None:
                    return msg["channel"].decode().rsplit(":", 1)[-1], json.loads(msg["data"])

    async def close(self) -> None:
        await self.pubsub.aclose()


async def test_two_dispatchers_never_offer_one_order_or_courier_twice(
        make_dispatcher, add_order, put_couriers, db, redis, settings: Settings) -> None:
    for i in range(30):
        await add_order(f"ord_{i:02d}", store_id=f"sto_{i % 6}", pickup=(52.52 + 0.002 * (i % 6), 13.405))
    await put_couriers({f"cou_{i:02d}": (52.52 + 0.001 * i, 13.406) for i in range(20)})
    a, b = make_dispatcher("proc-a"), make_dispatcher("proc-b")
    for _ in range(3):
        await asyncio.gather(a.tick(), b.tick())
    assert a.leading != b.leading
    # A holder that lost its lease without knowing it (a long pause) tries to write with its old token.
    stale, successor = (a, b) if a.leading else (b, a)
    old = stale.current
    assert old is not None
    await redis.delete(DispatchKeys(settings.redis_prefix, REGION).lease)
    assert await successor.tick() is not None
    await add_order("ord_late", store_id="sto_0", pickup=(52.52, 13.405))
    stat = await stale.round(old)
    assert stat.offers == 0
    offers = await pending_offers(db)
    assert offers, "the leader made offers"
    orders = [oid for o in offers for oid in o["order_ids"]]
    assert len(orders) == len(set(orders))
    couriers = [o["courier_id"] for o in offers]
    assert len(couriers) == len(set(couriers))
    # Postgres and the live keys agree on who holds each order.
    keys = DispatchKeys(settings.redis_prefix, REGION)
    for o in offers:
        for oid in o["order_ids"]:
            assert (await redis.get(keys.order(oid))).decode() == o["offer_id"]
    assert len(await outbox_events(db, "dispatch.offered")) == len(offers)


async def test_offer_write_with_a_superseded_token_is_refused(make_dispatcher, redis, settings) -> None:
    a = make_dispatcher("proc-a")
    lease = await a.lease.acquire()
    assert lease is not None
    keys = DispatchKeys(settings.redis_prefix, REGION)
    await redis.set(keys.lease, lease_value(lease.token + 1, "proc-b"))
    from dispatch.live import OfferKeys
    assert await a.offers.write(lease, [OfferKeys("ofr_x", "cou_1", ("ord_1",))], 10_000) is None
    assert await redis.get(keys.order("ord_1")) is None


async def test_lease_fails_over_when_the_holder_stops_renewing(make_dispatcher, add_order, put_couriers,
                                                               db) -> None:
    await add_order("ord_1")
    await put_couriers({"cou_1": NEAR})
    a, b = make_dispatcher("proc-a", lease_ttl_ms=300), make_dispatcher("proc-b", lease_ttl_ms=300)
    await a.tick()
    await b.tick()
    assert a.leading and not b.leading
    first: Lease = a.current  # type: ignore[assignment]
    a.paused = True  # the holder dies: no more renewals
    await asyncio.sleep(0.45)
    await add_order("ord_2", store_id="sto_2")
    await put_couriers({"cou_2": NEAR})
    stat = await b.tick()
    assert b.leading and stat is not None and stat.fence > first.token
    assert stat.offers == 1
    assert (await a.round(first)).offers == 0  # the old holder wakes up: fenced out


async def test_decline_returns_the_order_to_the_pool_without_that_courier(
        make_dispatcher, add_order, put_couriers, deliver, db) -> None:
    await add_order("ord_1")
    await put_couriers({"cou_near": NEAR, "cou_far": FAR})
    d = make_dispatcher("proc-a")
    await d.tick()
    [offer] = await pending_offers(db)
    assert offer["courier_id"] == "cou_near"
    await deliver("courier.offer_response", {"courier_id": "cou_near", "offer_id": offer["offer_id"],
                                             "accepted": False, "at": d.clock.now().isoformat()})
    row = await order_row(db, "ord_1")
    assert row["status"] == "open" and list(row["excluded"]) == ["cou_near"]
    await d.tick()
    [again] = await pending_offers(db)
    assert again["courier_id"] == "cou_far" and list(again["order_ids"]) == ["ord_1"]


async def test_offer_timeout_returns_the_order_to_the_pool_without_that_courier(
        make_dispatcher, add_order, put_couriers, db, redis, settings, clock: ManualClock) -> None:
    await add_order("ord_1", promise_in=3600)
    await put_couriers({"cou_near": NEAR, "cou_far": FAR})
    d = make_dispatcher("proc-a")
    inbox = await Inbox(redis, settings.redis_prefix).watch("cou_near")
    try:
        await d.tick()
        assert (await inbox.next())[1]["type"] == "offer"
        clock.advance(31)
        await put_couriers({"cou_near": NEAR, "cou_far": FAR})  # still online at the new time
        await d.tick()
        _channel, frame = await inbox.next()
        assert frame == {"type": "offer_cancelled", "offer_id": frame["offer_id"], "reason": "expired"}
    finally:
        await inbox.close()
    row = await order_row(db, "ord_1")
    assert list(row["excluded"]) == ["cou_near"]
    [again] = await pending_offers(db)
    assert again["courier_id"] == "cou_far"


async def test_answers_for_unknown_expired_or_someone_elses_offers_change_nothing(
        make_dispatcher, add_order, put_couriers, deliver, db, redis, settings, clock: ManualClock) -> None:
    await add_order("ord_1")
    await put_couriers({"cou_near": NEAR, "cou_far": FAR})
    d = make_dispatcher("proc-a")
    await d.tick()
    [offer] = await pending_offers(db)
    inbox = await Inbox(redis, settings.redis_prefix).watch("cou_near", "cou_far")
    at = clock.now().isoformat()
    try:
        await deliver("courier.offer_response", {"courier_id": "cou_far", "offer_id": offer["offer_id"],
                                                 "accepted": True, "at": at})
        assert await inbox.next() == ("cou_far", {"type": "error", "code": "offer_not_yours",
                                                  "message": "this offer was made to another courier",
                                                  "offer_id": offer["offer_id"]})
        await deliver("courier.offer_response", {"courier_id": "cou_near", "offer_id": "ofr_nope",
                                                 "accepted": True, "at": at})
        assert (await inbox.next())[1]["code"] == "offer_unknown"
        assert [o["offer_id"] for o in await pending_offers(db)] == [offer["offer_id"]]
        assert (await order_row(db, "ord_1"))["status"] == "offered"
        late = clock.now().timestamp() + 31
        from datetime import UTC, datetime
        await deliver("courier.offer_response", {"courier_id": "cou_near", "offer_id": offer["offer_id"],
                                                 "accepted": True,
                                                 "at": datetime.fromtimestamp(late, UTC).isoformat()})
        assert (await inbox.next()) == ("cou_near", {"type": "error", "code": "offer_expired",
                                                     "message": "this offer is no longer open",
                                                     "offer_id": offer["offer_id"]})
    finally:
        await inbox.close()
    assert await outbox_events(db, "dispatch.assigned") == []
    assert (await order_row(db, "ord_1"))["status"] == "offered"


async def test_accept_assigns_and_a_courier_going_offline_before_pickup_releases_the_orders(
        make_dispatcher, add_order, put_couriers, deliver, db, clock: ManualClock) -> None:
    await add_order("ord_1")
    await put_couriers({"cou_near": NEAR})
    d = make_dispatcher("proc-a")
    await d.tick()
    [offer] = await pending_offers(db)
    await deliver("courier.offer_response", {"courier_id": "cou_near", "offer_id": offer["offer_id"],
                                             "accepted": True, "at": clock.now().isoformat()})
    [assigned] = await outbox_events(db, "dispatch.assigned")
    assert assigned["courier_id"] == "cou_near" and assigned["order_ids"] == ["ord_1"]
    assert (await order_row(db, "ord_1"))["status"] == "assigned"
    await deliver("courier.status_changed", {"courier_id": "cou_near", "status": "stale"})
    [unassigned] = await outbox_events(db, "dispatch.unassigned")
    assert unassigned == {"courier_id": "cou_near", "order_ids": ["ord_1"], "reason": "courier_stale"}
    assert (await order_row(db, "ord_1"))["status"] == "open"


async def test_a_redis_that_lost_the_fence_counter_does_not_fence_out_every_later_holder(
        make_dispatcher, add_order, put_couriers, db, redis) -> None:
    """After leases changed hands, PostgreSQL remembers a fence above 1; a wiped Redis counts from 1
    again. The next holder (the old one, or a new process) must still get offers out."""
    await add_order("ord_1")
    await put_couriers({"cou_1": NEAR})
    a = make_dispatcher("proc-a")
    async with db.acquire() as conn:  # earlier terms went up to 7
        await conn.execute("INSERT INTO dispatch_fences (region, fence) VALUES ($1, 7)", REGION)
    first = await a.tick()
    assert first is not None and first.fence == 8 and first.offers == 1
    await redis.flushdb()  # every live key, the counter and the lease among them
    await add_order("ord_2", store_id="sto_2")
    await put_couriers({"cou_2": NEAR})
    again = await a.tick()  # the same process, which still believes it holds token 8
    assert again is not None and again.fence > 8 and again.offers >= 1
    b = make_dispatcher("proc-b")  # and a newcomer after another wipe, not holding anything
    await redis.flushdb()
    a.paused = True
    await add_order("ord_3", store_id="sto_3")
    await put_couriers({"cou_3": NEAR})
    stat = await b.tick()
    assert stat is not None and stat.fence > again.fence and stat.offers >= 1
