"""The tracking pub/sub hub on a real Redis: unsubscribes leave in batches, and a channel
subscribed again before its batch goes out keeps its subscription."""

from __future__ import annotations

import asyncio
import contextlib

from tracking.live import Hub


async def unsubscribe_calls(redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_unsubscribe", {}).get("calls", 0))


async def subscribed(redis, prefix: str) -> set[bytes]:
    return set(await redis.pubsub_channels(f"{prefix}*"))


async def test_many_sockets_leaving_at_once_send_one_unsubscribe(redis) -> None:
    hub = Hub(redis)
    channels = [f"hubtest:courier:{i}" for i in range(300)]
    for channel in channels:
        await hub.subscribe(channel, lambda raw: None)
    runner = asyncio.create_task(hub.run())  # as the service does: once the connection exists
    try:
        await asyncio.sleep(0.1)
        assert len(await subscribed(redis, "hubtest:")) == 300
        before = await unsubscribe_calls(redis)
        await asyncio.gather(*(hub.unsubscribe(channel) for channel in channels))
        await asyncio.sleep(0.2)
        assert await subscribed(redis, "hubtest:") == set()
        assert await unsubscribe_calls(redis) - before == 1
        assert hub.channel_count == 0
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await hub.close()


async def test_a_channel_subscribed_again_before_its_batch_leaves_keeps_receiving(redis) -> None:
    hub = Hub(redis, leave_delay=0.05)
    old: list[bytes] = []
    new: list[bytes] = []
    await hub.subscribe("hubtest:order:1", old.append)
    await hub.subscribe("hubtest:order:2", old.append)
    runner = asyncio.create_task(hub.run())
    try:
        await asyncio.sleep(0.1)
        await hub.unsubscribe("hubtest:order:1")
        await hub.unsubscribe("hubtest:order:2")
        await hub.subscribe("hubtest:order:1", new.append)  # a new watcher, before the batch leaves
        await asyncio.sleep(0.2)
        assert await subscribed(redis, "hubtest:") == {b"hubtest:order:1"}
        await redis.publish("hubtest:order:1", b"position")
        await redis.publish("hubtest:order:2", b"position")
        for _ in range(50):
            if new:
                break
            await asyncio.sleep(0.02)
        assert new == [b"position"] and old == []
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await hub.close()
