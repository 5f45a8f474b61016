"""Live fan-out channels on one Redis server or on a Redis/Valkey Cluster: the one way to publish and
subscribe, so publishers and subscribers always agree on the kind of pub/sub.

On one server: PUBLISH and SUBSCRIBE, as always. On a cluster: sharded pub/sub (SPUBLISH and
SSUBSCRIBE, Redis >= 7 and Valkey): a message travels to the shard that owns its channel's slot and
only there, so fan-out capacity grows with the shards, where a plain PUBLISH is copied to every node of
the cluster. A channel carries its hash tag like a key (`{order}`, `{courier}`, `{region}`).

- `Publisher`: `publish(channel, message)`, `publish_many(pairs)` (one pipelined round trip), and
  `add(pipe, channel, message)` to put a publish in a caller's pipeline. A script cannot SPUBLISH to a
  channel outside its own slot: code that publishes from a script asks `sharded` and, on a cluster,
  has the script return what to publish instead.
- `Subscriber`: one subscribing connection per shard that owns a subscribed channel (one in all on a
  single server), each read by its own task that hands `(channel, data)` to a callback. It follows the
  cluster: a node that drops the connection is reconnected (redis-py subscribes its channels again),
  and a channel whose slot moved (the server sends an unasked SUNSUBSCRIBE, or the node stays
  unreachable) is subscribed again on the slot's current owner after a refresh of the slot map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

log = logging.getLogger(__name__)

# What a failed call to the live store raises: a server or shard that is down, unreachable or not
# serving the slot (the cluster client's slot-map errors are not RedisErrors).
LIVE_STORE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, RedisClusterException)
# The same, or a caller's own bound on the call ran out (callers on the request path fail open then).
LIVE_STORE_ERRORS_OR_TIMEOUT: tuple[type[BaseException], ...] = (*LIVE_STORE_ERRORS, TimeoutError)

Deliver = Callable[[bytes, bytes], None]
_DATA = {"message", "smessage"}


def is_cluster(redis: Any) -> bool:
    """True for the cluster client (the app hands both down typed as `redis.asyncio.Redis`)."""
    return isinstance(redis, RedisCluster)


class Publisher:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.sharded = is_cluster(redis)
        self.command = "SPUBLISH" if self.sharded else "PUBLISH"

    def add(self, pipe: Any, channel: str, message: bytes | str) -> None:
        """Queue a publish in `pipe` (a non-transactional pipeline of this client)."""
        pipe.execute_command(self.command, channel, message)

    async def publish(self, channel: str, message: bytes | str) -> int:
        return int(await self.redis.execute_command(self.command, channel, message))

    async def publish_many(self, pairs: Iterable[tuple[str, bytes | str]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        queued = 0
        for channel, message in pairs:
            self.add(pipe, channel, message)
            queued += 1
        if queued:
            await pipe.execute()


class Subscriber:
    """Subscriptions of one process (or one socket) and the tasks that read them. `deliver(channel,
    data)` must not block. With `fail_fast`, a lost connection is not healed: `run` raises, for a
    caller that must tell its client it may have missed messages (the tablet feed)."""

    def __init__(self, redis: aioredis.Redis, deliver: Deliver, *, fail_fast: bool = False,
                 retry_every: float = 0.5, yield_every: int = 16) -> None:
        self._redis = redis
        self._deliver = deliver
        self._cluster: RedisCluster | None = redis if isinstance(redis, RedisCluster) else None
        self._fail_fast = fail_fast
        self._retry_every = retry_every
        self._yield_every = yield_every
        self._channels: dict[bytes, str] = {}  # channel -> the node (name) it is subscribed on
        self._links: dict[str, _Link] = {}
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def channels(self) -> list[bytes]:
        return list(self._channels)

    async def subscribe(self, *channels: str | bytes) -> None:
        async with self._lock:
            wanted = [c.encode() if isinstance(c, str) else c for c in channels]
            by_node: dict[str, list[bytes]] = {}
            for channel in wanted:
                if channel not in self._channels:
                    by_node.setdefault(await self._owner(channel), []).append(channel)
            for node, group in by_node.items():
                await self._link(node).join(group)
                for channel in group:
                    self._channels[channel] = node

    async def unsubscribe(self, *channels: str | bytes) -> None:
        async with self._lock:
            by_node: dict[str, list[bytes]] = {}
            for c in channels:
                channel = c.encode() if isinstance(c, str) else c
                node = self._channels.pop(channel, None)
                if node is not None:
                    by_node.setdefault(node, []).append(channel)
            for node, group in by_node.items():
                link = self._links.get(node)
                if link is not None:
                    with contextlib.suppress(*LIVE_STORE_ERRORS):
                        await link.leave(group)

    async def run(self) -> None:
        """Until cancelled (or, with `fail_fast`, until a connection is lost: then it raises)."""
        await self._failed.wait()
        assert self._failure is not None
        raise self._failure

    async def close(self) -> None:
        self._closed = True
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()

    # -- shards ---------------------------------------------------------------------------------------

    async def _owner(self, channel: bytes) -> str:
        if self._cluster is None:
            return ""
        if self._cluster._initialize:
            await self._cluster.initialize()
        return _node_of(self._cluster, channel)

    def _link(self, node: str) -> _Link:
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = _Link(self, node, self._client_for(node))
        return link

    def _client_for(self, node: str) -> aioredis.Redis:
        if self._cluster is None:
            return self._redis
        found = self._cluster.get_node(node_name=node)
        if found is None:
            raise RedisError(f"no cluster node {node}")
        pool = aioredis.ConnectionPool(connection_class=found.connection_class, **found.connection_kwargs)
        return aioredis.Redis(connection_pool=pool)

    def _message(self, link: _Link, message: dict[str, Any]) -> None:
        kind = message.get("type")
        kind = kind.decode() if isinstance(kind, bytes) else kind
        channel = message.get("channel")
        if kind in _DATA and isinstance(channel, bytes):
            try:
                self._deliver(channel, message["data"])
            except Exception:  # one bad message must not stop every other channel's feed
                log.exception("pub/sub listener failed on %r", channel)
        elif kind == "sunsubscribe" and channel in self._channels and self._channels[channel] == link.node:
            # Not asked for: the channel's slot moved to another shard. Follow it.
            asyncio.get_running_loop().create_task(self._reroute(link.node), name="fanout-reroute")

    def _lost(self, link: _Link, exc: BaseException) -> bool:
        """A link's connection failed. Returns True when the link should keep trying."""
        if self._fail_fast or self._closed:
            self._failure = exc
            self._failed.set()
            return False
        return True

    async def _reroute(self, node: str) -> None:
        """Refresh the slot map; subscribe the channels of `node` whose slot moved on their new owner."""
        if self._cluster is None or self._closed:
            return
        with contextlib.suppress(*LIVE_STORE_ERRORS):
            await self._cluster.nodes_manager.initialize()
        async with self._lock:
            moved: dict[str, list[bytes]] = {}
            for channel, current in list(self._channels.items()):
                if current != node:
                    continue
                try:
                    owner = _node_of(self._cluster, channel)
                except Exception:  # the slot map is not whole yet: try again at the next failure
                    continue
                if owner != node:
                    moved.setdefault(owner, []).append(channel)
            for owner, group in moved.items():
                try:
                    await self._link(owner).join(group)
                except LIVE_STORE_ERRORS:
                    continue
                for channel in group:
                    self._channels[channel] = owner
                old = self._links.get(node)
                if old is not None:
                    with contextlib.suppress(*LIVE_STORE_ERRORS):
                        await old.leave(group)
        if moved:
            log.info("pub/sub: %d channels followed their slots from %s", sum(map(len, moved.values())), node)


def _node_of(cluster: RedisCluster, channel: bytes) -> str:
    """The name of the primary that owns the channel's slot now (a shard channel hashes like a key)."""
    return str(cluster.nodes_manager.get_node_from_slot(cluster.keyslot(channel)).name)


class _Link:
    """One subscribing connection (to one node) and its reader task."""

    def __init__(self, owner: Subscriber, node: str, client: aioredis.Redis) -> None:
        self.owner = owner
        self.node = node
        self.client = client
        self.sharded = owner._cluster is not None
        self.pubsub: PubSub = client.pubsub()
        self.reader: asyncio.Task[None] | None = None

    async def join(self, channels: list[bytes]) -> None:
        if self.sharded:
            await self.pubsub.ssubscribe(*channels)
        else:
            await self.pubsub.subscribe(*channels)
        if self.reader is None:
            self.reader = asyncio.get_running_loop().create_task(self._read(), name=f"fanout-{self.node or 'redis'}")

    async def leave(self, channels: list[bytes]) -> None:
        if self.sharded:
            await self.pubsub.sunsubscribe(*channels)
        else:
            await self.pubsub.unsubscribe(*channels)

    async def _read(self) -> None:
        failures = handled = 0
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)  # smessage too
            except LIVE_STORE_ERRORS as exc:
                if not self.owner._lost(self, exc):
                    return
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("pub/sub connection to %s failed (%d in a row), reconnecting: %s",
                                self.node or "redis", failures, exc)
                if self.sharded and failures % 4 == 0:
                    await self.owner._reroute(self.node)  # a node down for good: its slots may have moved
                await asyncio.sleep(self.owner._retry_every)
                continue
            failures = 0
            if message is not None:
                self.owner._message(self, message)
                handled += 1
                if handled % self.owner._yield_every == 0:
                    await asyncio.sleep(0)  # let the sockets' senders drain their queues within a burst

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(*LIVE_STORE_ERRORS):
            await self.pubsub.aclose()
        if self.sharded:
            with contextlib.suppress(*LIVE_STORE_ERRORS):
                await self.client.aclose()
                await self.client.connection_pool.aclose()
