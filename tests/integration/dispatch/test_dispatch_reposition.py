"""Repositioning moves reach idle couriers over their channel (what tracking forwards to the
socket), fenced by the lease, never to a courier with a live offer, at most once per cool-down."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import h3
import redis.asyncio as aioredis

from dispatch.live import DispatchKeys, Lease, LiveOffers, OfferKeys, Repositions
from kernel.clock import ManualClock

REGION = "test-region"
S1 = (52.5200, 13.4050)
S2 = (52.5200, 13.6250)  # ~15 km east: beyond S1's 10 km search radius


class Channels:
    """Frames published on some couriers' channels, by courier."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self.prefix = prefix

    async def watch(self, *courier_ids: str) -> Channels:
        await self.pubsub.subscribe(*[f"{self.prefix}courier:{c}" for c in courier_ids])
        return self

    async def drain(self, wait_s: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
        out = []
        deadline = asyncio.get_running_loop().time() + wait_s
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            msg = await self.pubsub.get_message(timeout=min(0.1, left))
            if msg is not None:
                out.append((msg["channel"].decode().rsplit(":", 1)[-1], json.loads(msg["data"])))
        return out

    async def close(self) -> None:
        await self.pubsub.aclose()


async def test_an_idle_courier_nobody_needs_is_sent_toward_food_nobody_takes(
        make_dispatcher, add_order, put_couriers, db, redis, settings, clock: ManualClock) -> None:
    # c1, S1's only courier within reach, declined S1's second order before. Near S2, c3 takes one
    # of S2's two orders (too far apart in time to share a trip) and c2, who declined both, is left
    # idle: it is sent toward S1.
    await add_order("ord_1", store_id="sto_1", pickup=S1)
    await add_order("ord_2", store_id="sto_1", pickup=S1)
    await add_order("ord_3", store_id="sto_2", pickup=S2)
    await add_order("ord_4", store_id="sto_2", pickup=S2, ready_in=900.0, promise_in=3600.0)
    async with db.acquire() as conn:
        await conn.execute("UPDATE dispatch_orders SET excluded = '{c1}' WHERE order_id = 'ord_2'")
        await conn.execute("UPDATE dispatch_orders SET excluded = '{c2}' WHERE order_id IN ('ord_3', 'ord_4')")
    await put_couriers({"c1": (S1[0] + 0.001, S1[1]), "c3": (S2[0] + 0.002, S2[1]), "c2": (S2[0] + 0.005, S2[1])})
    inbox = await Channels(redis, settings.redis_prefix).watch("c1", "c2", "c3")
    try:
        d = make_dispatcher("proc-a", reposition_cooldown_s=2.0)
        proposed: list[list[str]] = []  # what each round asked the script to send (it still sends)
        send = d.moves.send

        async def spy(lease: Lease, frames: list[tuple[str, bytes]], cooldown_ms: int) -> list[str] | None:
            proposed.append([cid for cid, _ in frames])
            return await send(lease, frames, cooldown_ms)

        d.moves.send = spy  # type: ignore[method-assign]
        assert await d.tick() is not None
        frames = await inbox.drain()
        assert ("c1", "offer") in {(cid, f["type"]) for cid, f in frames}
        assert [cid for cid, f in frames if f["type"] == "reposition"] == ["c2"]
        [move] = [f for cid, f in frames if f["type"] == "reposition"]
        assert (move["lat"], move["lng"]) == S1
        assert move["cell"] == h3.latlng_to_cell(*S1, 8)
        assert move["reason"] == "orders_waiting" and move["region"] == REGION
        expires = datetime.fromisoformat(move["expires_at"]).timestamp()
        assert expires == clock.now().timestamp() + d.config.reposition_ttl_s
        assert d.counters.repositions_sent == 1

        # The next round still has ord_2 waiting and c2 idle (found near S2's waiting order): the
        # move is planned again, but c2 was nudged a moment ago.
        await d.tick()
        assert proposed[-1] == ["c2"]
        assert [f for _, f in await inbox.drain(0.3) if f["type"] == "reposition"] == []
        await asyncio.sleep(2.0)  # the cool-down has passed: one more nudge, still only to c2
        await d.tick()
        assert [(cid, f["type"]) for cid, f in await inbox.drain()] == [("c2", "reposition")]
    finally:
        await inbox.close()


async def test_a_move_never_reaches_a_courier_holding_a_live_offer_nor_leaves_a_lost_lease(
        make_dispatcher, redis, settings) -> None:
    d = make_dispatcher("proc-a")
    lease = await d.lease.acquire()
    assert lease is not None
    keys = DispatchKeys(settings.redis_prefix, REGION)
    assert await LiveOffers(redis, keys).write(lease, [OfferKeys("ofr_1", "busy", ("ord_1",))], 30_000) == ["ofr_1"]
    moves = Repositions(redis, keys)
    inbox = await Channels(redis, settings.redis_prefix).watch("busy", "idle")
    try:
        sent = await moves.send(lease, [("busy", b'{"type":"reposition"}'), ("idle", b'{"type":"reposition"}')],
                                60_000)
        assert sent == ["idle"]
        assert await moves.send(lease, [("idle", b'{"type":"reposition"}')], 60_000) == []  # cool-down
        stale = Lease(lease.token - 1, f"{lease.token - 1}:proc-a")
        assert await moves.send(stale, [("other", b'{"type":"reposition"}')], 60_000) is None
        assert await inbox.drain(0.3) == [("idle", {"type": "reposition"})]
    finally:
        await inbox.close()
