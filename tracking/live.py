"""The Redis adapter of tracking: channel and key names, and the process's one pub/sub
connection (`Hub`) that feeds courier sockets (offers), order watchers and the control
channel between tracking processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


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
    """One pub/sub connection per process. Each channel has one listener (a plain function
    that must not block: it hands the message to queues). Subscribing costs one write on
    the shared connection, never a connection per socket."""

    def __init__(self, redis: aioredis.Redis, yield_every: int = 16) -> None:
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._listeners: dict[bytes, Listener] = {}
        self._yield_every = yield_every
        self.received = 0

    async def subscribe(self, channel: str, listener: Listener) -> None:
        key = channel.encode()
        fresh = key not in self._listeners
        self._listeners[key] = listener
        if fresh:
            await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str, listener: Listener | None = None) -> None:
        """Stop listening; with `listener`, only if that listener is still the current one."""
        key = channel.encode()
        current = self._listeners.get(key)
        if current is None or (listener is not None and current is not listener):
            return
        del self._listeners[key]
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.unsubscribe(channel)

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    async def run(self) -> None:
        handled = 0
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError) as exc:
                log.warning("tracking pub/sub connection failed, reconnecting: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            listener = self._listeners.get(message["channel"])
            if listener is not None:
                self.received += 1
                try:
                    listener(message["data"])
                except Exception:  # one bad message must not stop every socket's feed
                    log.exception("tracking listener failed on %r", message["channel"])
            handled += 1
            if handled % self._yield_every == 0:
                # Let the socket senders drain their queues between messages of a burst.
                await asyncio.sleep(0)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
