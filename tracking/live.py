"""The Redis adapter of tracking: channel and key names, and the process's subscriptions
(`Hub`) that feed courier sockets (offers), order watchers and the control channel between
tracking processes. Every publish goes through `kernel.fanout.Publisher` (sharded pub/sub on a
cluster). A channel is its own slot (no hash tag: orders and couriers spread over the shards)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from kernel.fanout import LIVE_STORE_ERRORS, Subscriber


@dataclass(frozen=True, slots=True)
class Channels:
    prefix: str

    def courier(self, courier_id: str) -> str:
        """Server -> courier frames from any package (docs/EVENTS.md)."""
        return f"{self.prefix}courier:{courier_id}"

    def order(self, order_id: str) -> str:
        """Status and courier positions for an order's watchers (docs/EVENTS.md)."""
        return f"{self.prefix}order:{order_id}"

    @property
    def control(self) -> str:
        """Tracking's own messages between its processes (`Connected`, `BundleChanged`)."""
        return f"{self.prefix}tracking:control"

    def bundles(self, region: str) -> str:
        """Hash: courier -> the orders it carries now, with their pickup and dropoff."""
        return f"{self.prefix}tracking:{{{region}}}:bundles"


Listener = Callable[[bytes], None]


class Hub:
    """The process's subscriptions (`kernel.fanout.Subscriber`: one connection on a single server,
    one per shard on a cluster, sharded pub/sub there). Each channel has one listener (a plain
    function that must not block: it hands the message to queues). Subscribing costs one write on
    the shared connection, never a connection per socket.

    Unsubscribes are gathered for `leave_delay` and sent as one UNSUBSCRIBE: when the
    heartbeat drops every socket of a dead network at once, 2,000 single commands held the
    loop for over 100 ms (BENCHMARKS.md). The listener is gone at once, so nothing reaches
    it meanwhile; a channel subscribed again before the batch goes out stays subscribed."""

    def __init__(self, redis: aioredis.Redis, yield_every: int = 16, leave_delay: float = 0.01) -> None:
        self._subscriber = Subscriber(redis, self._deliver, yield_every=yield_every)
        self._listeners: dict[bytes, Listener] = {}
        self._leave_delay = leave_delay
        self._leaving: set[bytes] = set()
        self._leave_task: asyncio.Task[None] | None = None
        self.received = 0

    async def subscribe(self, channel: str, listener: Listener) -> None:
        key = channel.encode()
        fresh = key not in self._listeners
        self._listeners[key] = listener
        if fresh:
            await self._subscriber.subscribe(key)

    async def unsubscribe(self, channel: str, listener: Listener | None = None) -> None:
        """Stop listening; with `listener`, only if that listener is still the current one."""
        key = channel.encode()
        current = self._listeners.get(key)
        if current is None or (listener is not None and current is not listener):
            return
        del self._listeners[key]
        self._leaving.add(key)
        if self._leave_task is None:
            self._leave_task = asyncio.create_task(self._leave(), name="tracking-hub-unsubscribe")

    async def _leave(self) -> None:
        await asyncio.sleep(self._leave_delay)  # the other sockets closing now join this batch
        leaving, self._leaving, self._leave_task = self._leaving, set(), None
        channels = [key for key in leaving if key not in self._listeners]
        if channels:
            with contextlib.suppress(*LIVE_STORE_ERRORS):
                await self._subscriber.unsubscribe(*channels)

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    def _deliver(self, channel: bytes, data: bytes) -> None:
        listener = self._listeners.get(channel)
        if listener is not None:
            self.received += 1
            listener(data)

    async def run(self) -> None:
        """Until cancelled: the subscriber's readers deliver; a lost connection is reconnected."""
        await self._subscriber.run()

    async def close(self) -> None:
        if self._leave_task is not None:
            self._leave_task.cancel()
        await self._subscriber.close()
