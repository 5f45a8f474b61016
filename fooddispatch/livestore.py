"""The live store's client: one Redis/Valkey server, or a Redis/Valkey Cluster.

`FOODDISPATCH_REDIS_CLUSTER=true` makes `REDIS_URL` a seed node of a cluster: the client learns the
others from it and sends every command to the shard that owns its slot. Nothing else changes in the
configuration: every key the packages build carries a hash tag (`{region}`, `{courier}`, `{order}`)
so each script and multi-key command touches one slot, and live fan-out uses sharded pub/sub
(`kernel.fanout`). A single node keeps plain PUBLISH/SUBSCRIBE and works as it always did.

Both clients are handed down as `redis.asyncio.Redis` (the app's `REDIS` key): `RedisCluster` speaks
the same commands for everything we send it, and `kernel.fanout.is_cluster` tells the few places that
must act differently (pub/sub, scripts that publish).

`check_live_store` runs once before a `serve` starts its workers: a store that does not answer, a
cluster setting that does not match the server, or a cluster with slots no node serves stops the start
with one line.
"""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from fooddispatch.config import Settings

SLOTS = 16384
# Per process: commands in flight at once (the single-node pool blocks for a free connection up to
# 5 s; the cluster client holds this many per node and fails beyond it, counted as an outage).
MAX_CONNECTIONS = 256
CLUSTER_MAX_CONNECTIONS_PER_NODE = 512


class LiveStoreError(RuntimeError):
    """The live store cannot be used as configured; the message is the one line the CLI prints."""


def open_redis(settings: Settings) -> aioredis.Redis:
    """The app's client. Connecting is bounded (an unreachable host is not waited for for minutes);
    reads are not, since blocking reads (XREADGROUP BLOCK, pub/sub) idle on purpose: callers on the
    request path bound their own calls (rate limiter, surge reader, fraud screen)."""
    if not settings.redis_url:
        raise LiveStoreError("no REDIS_URL: the CLI starts an embedded server when it is unset")
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            settings.redis_url, max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE, socket_connect_timeout=2,
            health_check_interval=30, require_full_coverage=False,
        )
        return cast(aioredis.Redis, cluster)  # same commands; see the module docstring
    # Blocking pool: under a burst every request waits (up to 5 s) for a free connection instead
    # of failing with "Too many connections" (seen as 500s in the checkout race bench).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=MAX_CONNECTIONS, timeout=5, health_check_interval=30,
        socket_connect_timeout=2,
    )
    return aioredis.Redis(connection_pool=pool)


async def close_redis(redis: aioredis.Redis) -> None:
    await redis.aclose()
    if not isinstance(redis, RedisCluster):
        await redis.connection_pool.aclose()


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def _info_fields(raw: object) -> dict[str, str]:
    """INFO and CLUSTER INFO as text fields (redis-py parses some replies into dicts already)."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(".")[:2])
    except ValueError:
        return (0,)


async def check_live_store(settings: Settings, *, connect_within: float = 3.0) -> str:
    """Raise `LiveStoreError` (one line) unless the live store answers as configured; returns a short
    description ("Valkey Cluster, 3 primaries" / "a single node") for the start banner."""
    url = settings.redis_url or ""
    probe = aioredis.Redis.from_url(url, socket_connect_timeout=connect_within,
                                     socket_timeout=connect_within)
    try:
        try:
            server = _info_fields(await probe.execute_command("INFO", "server"))
            cluster_enabled = _info_fields(await probe.execute_command("INFO", "cluster")).get("cluster_enabled")
        except (RedisError, OSError) as exc:
            raise LiveStoreError(f"cannot reach Redis at {redact(url)}: {exc}") from None
        if not settings.redis_cluster:
            if cluster_enabled == "1":
                raise LiveStoreError(f"{redact(url)} is a Redis Cluster node: set FOODDISPATCH_REDIS_CLUSTER=true")
            return "a single node"
        if cluster_enabled != "1":
            raise LiveStoreError(f"FOODDISPATCH_REDIS_CLUSTER=true but {redact(url)} is not a cluster node "
                                 "(cluster-enabled no): unset it, or point REDIS_URL at a cluster node")
        if _version(server.get("redis_version", "0")) < (7, 0):
            raise LiveStoreError(f"the cluster at {redact(url)} runs Redis {server.get('redis_version')}: sharded "
                                 "pub/sub needs Redis >= 7 or Valkey")
        info = _info_fields(await probe.execute_command("CLUSTER", "INFO"))
        assigned, served = int(info.get("cluster_slots_assigned", "0")), int(info.get("cluster_slots_ok", "0"))
        if assigned < SLOTS:
            raise LiveStoreError(f"the cluster at {redact(url)} has {SLOTS - assigned} of {SLOTS} slots assigned to no "
                                 "node: assign them (valkey-cli --cluster fix) before starting")
        if served < SLOTS or info.get("cluster_state") != "ok":
            raise LiveStoreError(f"the cluster at {redact(url)} serves {served} of {SLOTS} slots (cluster_state "
                                 f"{info.get('cluster_state', '?')}): a node is down or failing")
        engine = "Valkey" if "valkey_version" in server else "Redis"
        return f"{engine} Cluster, {info.get('cluster_size', '?')} primaries"
    finally:
        await probe.aclose()
