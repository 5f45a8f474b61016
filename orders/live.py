"""The Redis side of orders: the tablet feed channel (pub/sub, not durable).

Order events of a tenant are published on one channel per tenant; a tablet's
websocket subscribes to its tenant's channel and keeps the frames of its store.
Tablets that were offline catch up from the REST list (the feed starts with a
`hello` frame listing the store's active orders). On a Redis/Valkey Cluster the
channel is a sharded one (`kernel.fanout`): a tenant's frames go to one shard only."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from kernel.fanout import Publisher, Subscriber

FEED_QUEUE = 256  # frames a tablet socket may have waiting; beyond, the tablet is too slow


def tenant_feed_channel(prefix: str, tenant_id: str) -> str:
    return f"{prefix}orders:tenant:{tenant_id}"


async def publish_frame(redis: aioredis.Redis, prefix: str, tenant_id: str, frame: bytes) -> None:
    await Publisher(redis).publish(tenant_feed_channel(prefix, tenant_id), frame)


class FeedOverflow(Exception):
    """More frames waited than a tablet socket may hold."""


class TenantFeed:
    """One tablet socket's subscription to its tenant's channel. A lost subscription is not healed
    (`fail_fast`): `next` raises, and the socket tells its tablet to reconnect and catch up."""

    def __init__(self, redis: aioredis.Redis, prefix: str, tenant_id: str) -> None:
        self.channel = tenant_feed_channel(prefix, tenant_id)
        self._frames: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscriber = Subscriber(redis, self._deliver, fail_fast=True)
        self._watch: asyncio.Task[None] | None = None

    def _deliver(self, _channel: bytes, data: bytes) -> None:
        self._frames.put_nowait(data)

    async def open(self) -> None:
        await self._subscriber.subscribe(self.channel)
        self._watch = asyncio.create_task(self._subscriber.run())

    async def next(self) -> bytes:
        """The next frame published on the channel; raises what broke the subscription."""
        if self._frames.qsize() > FEED_QUEUE:
            raise FeedOverflow(f"{self._frames.qsize()} frames waiting")
        assert self._watch is not None, "open() first"
        getter = asyncio.ensure_future(self._frames.get())
        await asyncio.wait({getter, self._watch}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return self._watch.result()  # type: ignore[return-value]  # it only ever ends by raising

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self._subscriber.close()
