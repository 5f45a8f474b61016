"""The Redis adapter of dispatch: region leases with fencing tokens, live offers, surge.

Keys (per region, the region a hash tag so a region's keys share one Redis Cluster slot and
every script below touches one slot):

| key | type | holds |
| --- | --- | --- |
| `{p}dispatch:{r}:lease` | string, PX | `<token>:<owner>` of the process that runs the region's rounds |
| `{p}dispatch:{r}:fence` | counter | the last fencing token handed out (INCR on every acquisition) |
| `{p}dispatch:{r}:offer:<offer_id>` | string, PX | the courier the live offer went to |
| `{p}dispatch:{r}:order:<order_id>` | string, PX | the live offer that holds the order |
| `{p}dispatch:{r}:courier:<courier_id>` | string, PX | the courier's one live offer |
| `{p}dispatch:{r}:reposition:<courier_id>` | string, PX | a reposition was sent (the per-courier cool-down) |
| `{p}dispatch:{r}:surge` | hash | H3 res-7 cell -> published delivery-fee multiplier (read by orders) |
| `{p}dispatch:{r}:heat` | hash | cell -> heat-map JSON for operators (demand, supply, level, changed_at) |

Offers are written by one script that first checks the caller's lease value (token and owner)
is still the lease, then skips any offer whose courier or orders already have a live offer: two
dispatchers, or a stale holder and its successor, can never offer one order or one courier twice.

Couriers' positions and states are not dispatch's keys: the round reads them through geo's
published live index API (`geo.live.CourierIndex.nearest_online`, `courier_states`), never by key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import h3
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError
from redis.typing import EncodableT, FieldT

from dispatch.offers import lease_value, parse_lease
from kernel.fanout import Publisher

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local tok, own = string.match(cur, '^(%d+):(.*)$')
  if own == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(tok)
  end
  return 0
end
local tok = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if tok <= floor then
  -- The counter started again (Redis lost it) below the last token PostgreSQL accepted.
  tok = floor + 1
  redis.call('SET', KEYS[2], tok)
end
redis.call('SET', KEYS[1], tok .. ':' .. ARGV[1], 'PX', ARGV[2])
return tok
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# ARGV: lease value, key prefix, ttl ms, then per offer: offer_id, courier_id, n, n order ids.
_OFFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local p, ttl = ARGV[2], ARGV[3]
local written = {}
local i = 4
while i <= #ARGV do
  local oid, cid, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local free = redis.call('EXISTS', p .. 'courier:' .. cid) == 0
  for j = 1, n do
    if free and redis.call('EXISTS', p .. 'order:' .. ARGV[i + 2 + j]) == 1 then free = false end
  end
  if free then
    redis.call('SET', p .. 'offer:' .. oid, cid, 'PX', ttl)
    redis.call('SET', p .. 'courier:' .. cid, oid, 'PX', ttl)
    for j = 1, n do redis.call('SET', p .. 'order:' .. ARGV[i + 2 + j], oid, 'PX', ttl) end
    written[#written + 1] = oid
  end
  i = i + 3 + n
end
return written
"""

# ARGV: key prefix, then per offer: offer_id, courier_id, n, n order ids. Deletes only keys that
# still point at that offer, so clearing a finished offer never frees a newer one.
_CLEAR = """
local p = ARGV[1]
local i = 2
local function drop(key, oid)
  if redis.call('GET', key) == oid then redis.call('DEL', key) end
end
while i <= #ARGV do
  local oid, cid, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('DEL', p .. 'offer:' .. oid)
  drop(p .. 'courier:' .. cid, oid)
  for j = 1, n do drop(p .. 'order:' .. ARGV[i + 2 + j], oid) end
  i = i + 3 + n
end
return 1
"""


@dataclass(frozen=True, slots=True)
class DispatchKeys:
    prefix: str
    region: str

    @property
    def base(self) -> str:
        return f"{self.prefix}dispatch:{{{self.region}}}:"

    @property
    def lease(self) -> str:
        return self.base + "lease"

    @property
    def fence(self) -> str:
        return self.base + "fence"

    def offer(self, offer_id: str) -> str:
        return f"{self.base}offer:{offer_id}"

    def order(self, order_id: str) -> str:
        return f"{self.base}order:{order_id}"

    def courier(self, courier_id: str) -> str:
        return f"{self.base}courier:{courier_id}"

    @property
    def surge(self) -> str:
        return self.base + "surge"

    @property
    def heat(self) -> str:
        return self.base + "heat"

    @property
    def heat_at(self) -> str:
        return self.base + "heat_at"


def courier_channel(prefix: str, courier_id: str) -> str:
    """The live channel tracking forwards to the courier's socket (docs/EVENTS.md)."""
    return f"{prefix}courier:{courier_id}"


class _Scripts:
    def __init__(self, redis: aioredis.Redis, sources: Mapping[str, str]) -> None:
        self.redis = redis
        self.sources = dict(sources)
        self.shas: dict[str, str] = {}

    async def run(self, name: str, keys: Sequence[str], args: Sequence[EncodableT]) -> object:
        for attempt in (1, 2):
            sha = self.shas.get(name)
            if sha is None:
                sha = self.shas[name] = await self.redis.script_load(self.sources[name])
            try:
                return await self.redis.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                self.shas.pop(name, None)  # Redis restarted or SCRIPT FLUSH: load again
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# ARGV: channel, message, channel, message, ... Publishes them in order; returns how many.
_PUBLISH = """
for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return #ARGV / 2
"""


# KEYS[1]: the region's lease. ARGV: lease value, key prefix, cool-down ms, publish here (1/0), then per
# move: courier id, channel, frame. A move goes out only under our lease, to a courier with no live offer,
# and at most once per cool-down (SET NX PX); returns the couriers it went to, or -1 if the lease is not
# ours. On a Redis Cluster a script cannot SPUBLISH outside its slot: the caller publishes the frames of
# the couriers returned (publish here = 0).
_REPOSITION = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local p, cooldown, here = ARGV[2], ARGV[3], ARGV[4] == '1'
local sent = {}
for i = 5, #ARGV, 3 do
  local cid = ARGV[i]
  if redis.call('EXISTS', p .. 'courier:' .. cid) == 0
      and redis.call('SET', p .. 'reposition:' .. cid, '1', 'NX', 'PX', cooldown) then
    if here then redis.call('PUBLISH', ARGV[i + 1], ARGV[i + 2]) end
    sent[#sent + 1] = cid
  end
end
return sent
"""


class Repositions:
    """Reposition frames to idle couriers, fenced by the lease and rate-limited per courier."""

    def __init__(self, redis: aioredis.Redis, keys: DispatchKeys) -> None:
        self.keys = keys
        self._scripts = _Scripts(redis, {"reposition": _REPOSITION})
        self._publisher = Publisher(redis)

    async def send(self, lease: Lease, frames: Sequence[tuple[str, bytes]], cooldown_ms: int) -> list[str] | None:
        """Publish each (courier id, frame) unless that courier holds a live offer or was sent one
        within `cooldown_ms`; returns the couriers reached, None if `lease` is no longer ours."""
        if not frames:
            return []
        here = not self._publisher.sharded
        args: list[EncodableT] = [lease.value, self.keys.base, cooldown_ms, "1" if here else "0"]
        for courier_id, frame in frames:
            args += (courier_id, courier_channel(self.keys.prefix, courier_id), frame)
        result = await self._scripts.run("reposition", [self.keys.lease], args)
        if result == -1:
            return None
        sent = [r.decode() if isinstance(r, bytes) else str(r) for r in cast(list[bytes | str], result)]
        if not here:
            chosen = set(sent)
            await self._publisher.publish_many((courier_channel(self.keys.prefix, courier_id), frame)
                                               for courier_id, frame in frames if courier_id in chosen)
        return sent


class Frames:
    """Frames for many couriers' channels in one call: one command and one reply instead of a
    pipeline of PUBLISHes (redis-py spends more packing and parsing those than Redis sending them)."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.prefix = prefix
        self._scripts = _Scripts(redis, {"publish": _PUBLISH})
        self._publisher = Publisher(redis)

    async def send(self, frames: Sequence[tuple[str, bytes]]) -> None:
        """Publish each (courier id, encoded frame) on the courier's channel. On a Redis Cluster: a
        pipeline of SPUBLISHes (each channel on its own shard; a script cannot reach them)."""
        if self._publisher.sharded:
            await self._publisher.publish_many((courier_channel(self.prefix, cid), frame) for cid, frame in frames)
            return
        args: list[EncodableT] = []
        for courier_id, frame in frames:
            args += (courier_channel(self.prefix, courier_id), frame)
        for start in range(0, len(args), 4000):  # keep one call's arguments well under Lua's stack
            await self._scripts.run("publish", [], args[start:start + 4000])


@dataclass(frozen=True, slots=True)
class Lease:
    token: int
    value: str  # what the lease key holds while we hold it


class RegionLease:
    """`SET NX PX` with a fencing token: `acquire` takes a free lease (INCR the token) or renews
    ours; it answers None while another process holds it."""

    def __init__(self, redis: aioredis.Redis, keys: DispatchKeys, owner: str, ttl_ms: int) -> None:
        self.keys = keys
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._scripts = _Scripts(redis, {"acquire": _ACQUIRE, "release": _RELEASE})
        self.redis = redis

    async def acquire(self, floor: int = 0) -> Lease | None:
        """`floor`: the last token PostgreSQL accepted for the region. The counter lives in Redis and
        starts again at 1 when Redis loses it, but offers are fenced in PostgreSQL: a new token must
        be above every token ever used there, or no holder could write an offer again."""
        token = int(await self._scripts.run("acquire", [self.keys.lease, self.keys.fence],  # type: ignore[call-overload]
                                            [self.owner, self.ttl_ms, floor]))
        return Lease(token, lease_value(token, self.owner)) if token > 0 else None

    async def release(self, lease: Lease) -> None:
        await self._scripts.run("release", [self.keys.lease], [lease.value])

    async def holder(self) -> tuple[int, str] | None:
        return parse_lease(await self.redis.get(self.keys.lease))


@dataclass(frozen=True, slots=True)
class OfferKeys:
    """What the live keys of one offer name: used to write and to clear them."""

    offer_id: str
    courier_id: str
    order_ids: tuple[str, ...]


def _offer_args(offers: Sequence[OfferKeys]) -> list[EncodableT]:
    args: list[EncodableT] = []
    for o in offers:
        args += [o.offer_id, o.courier_id, len(o.order_ids), *o.order_ids]
    return args


class LiveOffers:
    """Pending offers with a TTL, written under the lease's fencing check."""

    def __init__(self, redis: aioredis.Redis, keys: DispatchKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._scripts = _Scripts(redis, {"offer": _OFFER, "clear": _CLEAR})

    async def write(self, lease: Lease, offers: Sequence[OfferKeys], ttl_ms: int) -> list[str] | None:
        """Write the offers whose courier and orders are free; returns the ids written, or None
        when `lease` is no longer the region's lease (nothing is written then)."""
        if not offers:
            return []
        result = await self._scripts.run("offer", [self.keys.lease],
                                         [lease.value, self.keys.base, ttl_ms, *_offer_args(offers)])
        if result == -1:
            return None
        return [r.decode() if isinstance(r, bytes) else str(r) for r in cast(list[bytes | str], result)]

    async def clear(self, offers: Sequence[OfferKeys]) -> None:
        if offers:
            await self._scripts.run("clear", [self.keys.lease], [self.keys.base, *_offer_args(offers)])


class HeatEntry(msgspec.Struct, array_like=True):
    open_orders: int
    available_couriers: int
    multiplier: float
    changed_at: float | None


_heat_encoder = msgspec.json.Encoder()
_heat_decoder = msgspec.json.Decoder(HeatEntry)


class SurgeBoardStore:
    """The published surge levels (for orders) and the heat map (for operators) of one region."""

    def __init__(self, redis: aioredis.Redis, keys: DispatchKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def publish(self, multipliers: Mapping[str, float], heat: Mapping[str, HeatEntry], at: float) -> None:
        pipe = self.redis.pipeline(transaction=True)  # readers never see half a board
        pipe.delete(self.keys.surge, self.keys.heat)
        levels: dict[FieldT, EncodableT] = {cell: repr(m) for cell, m in multipliers.items() if m > 1.0}
        if levels:
            pipe.hset(self.keys.surge, mapping=levels)
        if heat:
            pipe.hset(self.keys.heat, mapping={c: _heat_encoder.encode(e) for c, e in heat.items()})
        pipe.set(self.keys.heat_at, repr(at))
        await pipe.execute()

    async def heat(self) -> tuple[float | None, dict[str, HeatEntry]]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.heat_at)
        pipe.hgetall(self.keys.heat)
        at, raw = await pipe.execute()
        cells = {k.decode(): _heat_decoder.decode(v) for k, v in raw.items()}
        return (float(at) if at else None), cells


class SurgeReader:
    """The delivery-fee multiplier published for the H3 res-7 cell around a point: satisfies
    orders' `SurgeSource`. Answers fast (one HGET) and never raises: on doubt, 1."""

    def __init__(self, redis: aioredis.Redis, prefix: str, region: str, resolution: int = 7,
                 timeout_s: float = 0.05) -> None:
        self.redis = redis
        self.keys = DispatchKeys(prefix, region)
        self.resolution = resolution
        self.timeout_s = timeout_s

    def cell(self, lat: float, lng: float) -> str:
        return h3.latlng_to_cell(lat, lng, self.resolution)

    async def multiplier_of_cell(self, cell: str) -> Fraction:
        import asyncio

        try:
            async with asyncio.timeout(self.timeout_s):
                raw = await self.redis.hget(self.keys.surge, cell)
        except (TimeoutError, OSError, RedisError):
            return Fraction(1)
        if not raw:
            return Fraction(1)
        try:
            value = Fraction(raw.decode() if isinstance(raw, bytes) else raw).limit_denominator(1000)
        except (ValueError, ZeroDivisionError):
            return Fraction(1)
        return value if value >= 1 else Fraction(1)

    async def multiplier(self, lat: float, lng: float) -> Fraction:
        try:
            cell = self.cell(lat, lng)
        except (ValueError, h3.H3BaseException):
            return Fraction(1)
        return await self.multiplier_of_cell(cell)


def epoch() -> float:
    return time.time()
