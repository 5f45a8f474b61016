"""The Redis side of orders: the tablet feed channel (pub/sub, not durable).

Order events of a tenant are published on one channel per tenant; a tablet's
websocket subscribes to its tenant's channel and keeps the frames of its store.
Tablets that were offline catch up from the REST list (the feed starts with a
`hello` frame listing the store's active orders)."""

from __future__ import annotations

import redis.asyncio as aioredis


def tenant_feed_channel(prefix: str, tenant_id: str) -> str:
    return f"{prefix}orders:tenant:{tenant_id}"


async def publish_frame(redis: aioredis.Redis, prefix: str, tenant_id: str, frame: bytes) -> None:
    await redis.publish(tenant_feed_channel(prefix, tenant_id), frame)
