"""The tablet feed heals: when its pub/sub subscription is lost the socket is closed with 1013
(try again later) instead of staying open and deaf, and the tablet that reconnects gets a hello
listing what was placed meanwhile. (A feed whose Redis is down for good: tests/integration/
test_outages.py, which owns a Redis it can kill.)"""

from __future__ import annotations

import json

from aiohttp import WSMsgType
from orders_helpers import place


async def test_a_dropped_subscription_closes_the_feed_and_the_reconnect_catches_up(
        client, redis, shop_factory, customer_factory) -> None:
    shop = await shop_factory()
    _, cust, pm = await customer_factory()
    feed = f"/v1/stores/{shop.store_id}/orders/feed"
    async with client.ws_connect(feed, headers=shop.staff) as ws:
        first = json.loads(await ws.receive_str(timeout=10))
        assert first["type"] == "hello" and first["active_orders"] == []
        # A real drop of every pub/sub connection on the server (as a failover or a proxy restart does).
        assert await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
        order = await place(client, cust, pm, shop.store_id, key="during")
        closed = await ws.receive(timeout=20)
        assert closed.type == WSMsgType.CLOSE and closed.data == 1013, closed
        assert "reconnect" in (closed.extra or "")
    async with client.ws_connect(feed, headers=shop.staff) as again:  # what a tablet does on 1013
        hello = json.loads(await again.receive_str(timeout=10))
        assert hello["type"] == "hello" and [o["id"] for o in hello["active_orders"]] == [order["id"]]
