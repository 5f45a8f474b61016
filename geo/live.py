"""The live courier index in Redis: where every connected courier is, and which are available.

Keys (all per region, with the region as a hash tag so a region lives on one Redis Cluster shard):

| key | type | holds |
| --- | --- | --- |
| `{p}live:{r}:geo` | GEO set | available couriers' last dispatchable position |
| `{p}live:{r}:cell:<h3>` | set | available couriers in that res-9 H3 cell |
| `{p}live:{r}:cellof` | hash | courier -> the cell set it is in (so a move removes it from the old one) |
| `{p}live:{r}:avail` | hash | cell -> number of available couriers in it (exact: changed only on SADD/SREM hits) |
| `{p}live:{r}:state` | hash | courier -> `LiveState` JSON (position, status, last seen, seq, vehicle) |
| `{p}live:{r}:seen` | sorted set | courier -> last seen (unix s); the sweeper's input |
| `{p}live:{r}:bundle` | hash | courier -> JSON list of the order ids it carries now |

"Available" means status `online`, a position with usable accuracy, and seen in the last
`stale_after` seconds. Busy couriers stay available (bundling); `courier_states` tells the
dispatcher what each one carries.

This module is the index's only door, a published API (named in `geo/__init__.py`): tracking
writes through `CourierIndex` (`flush`, `sweep`, `set_bundle`), dispatch and the ops feed read
through it (`nearest_online`, `courier_states`, `available_counts`, `scan_states`). No other module
names these keys or runs a script over them; every script that does is in `geo.live_scripts`.

Writes: `flush` sends one EVALSHA per region (its couriers packed into one msgpack argument,
unpacked by the script with Redis's built-in cmsgpack), plus the PUBLISHes of that flush, in one
pipelined round trip. The script reads each courier's current cell itself, so the counters
stay exact when a courier reconnects to another process or comes back after the sweeper
removed it. Cell keys are built inside the script from the region's prefix: they carry the
same hash tag, so in a cluster they are on the script's shard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from geo.eta import Point, haversine_m
from geo.h3cells import rings
from geo.live_scripts import FLUSH, FORGET, NEAREST, SWEEP
from kernel.fanout import Publisher


class LiveState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the index knows about one courier (the value in the state hash)."""

    status: str  # online | offline | break | stale
    seen: float  # server time of the last frame, unix seconds
    seq: int = 0  # highest location seq applied
    lat: float | None = None  # last point with usable accuracy
    lng: float | None = None
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None
    ts: float | None = None  # device time of that point, unix seconds
    cell: str | None = None
    vehicle: str | None = None


_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(LiveState)
_ids_decoder = msgspec.json.Decoder(list[str])


def encode_state(state: LiveState) -> bytes:
    return _state_encoder.encode(state)


def decode_state(raw: bytes | str | None) -> LiveState | None:
    if raw is None:
        return None
    try:
        return _state_decoder.decode(raw)
    except msgspec.DecodeError:
        return None  # a corrupt entry is treated as unknown; the next flush rewrites it


@dataclass(slots=True)
class CourierUpdate:
    """One courier's coalesced change for a flush. `lat`/`lng`/`cell` are its last
    dispatchable position (None if it has none yet); `available` decides whether it is
    in the geo and cell sets after the flush."""

    courier_id: str
    available: bool
    state: LiveState
    lat: float | None = None
    lng: float | None = None
    cell: str | None = None


class Candidate(NamedTuple):
    courier_id: str
    lat: float
    lng: float
    distance_m: float


class CourierLive(NamedTuple):
    courier_id: str
    state: LiveState | None
    order_ids: list[str]  # the bundle it carries now


class NearbyCourier(NamedTuple):
    """An online courier near a point, where the index last placed it."""

    courier_id: str
    lat: float
    lng: float
    vehicle: str | None


@dataclass(frozen=True, slots=True)
class LiveKeys:
    prefix: str
    region: str

    def _k(self, name: str) -> str:
        return f"{self.prefix}live:{{{self.region}}}:{name}"

    @property
    def geo(self) -> str:
        return self._k("geo")

    @property
    def state(self) -> str:
        return self._k("state")

    @property
    def seen(self) -> str:
        return self._k("seen")

    @property
    def cellof(self) -> str:
        return self._k("cellof")

    @property
    def avail(self) -> str:
        return self._k("avail")

    @property
    def bundle(self) -> str:
        return self._k("bundle")

    @property
    def cell_prefix(self) -> str:
        return self._k("cell:")

    def cell(self, cell: str) -> str:
        return self.cell_prefix + cell

    def script_keys(self) -> list[str]:
        return [self.geo, self.state, self.seen, self.cellof, self.avail]


_pack = msgspec.msgpack.Encoder().encode
_NO_POSITION = ("", "", "")  # cell, lng, lat of a courier without a fix


class CourierIndex:
    """The live index of one region, geo's published API over its keys. Writers: tracking's
    flusher and sweeper. Readers: dispatch's round (`nearest_online`, `courier_states`), its surge
    and speed learning (`available_counts`, `scan_states`), the ops feed (`courier_states`).
    `keys` are for this module and its tests."""

    def __init__(self, redis: aioredis.Redis, prefix: str, region: str) -> None:
        self.redis = redis
        self.region = region
        self.keys = LiveKeys(prefix, region)
        self._publisher = Publisher(redis)
        self._flush_sha: str | None = None
        self._sweep_sha: str | None = None
        self._nearest_sha: str | None = None

    async def load_scripts(self) -> None:
        self._flush_sha = await self.redis.script_load(FLUSH)
        self._sweep_sha = await self.redis.script_load(SWEEP)
        self._nearest_sha = await self.redis.script_load(NEAREST)

    # -- writes -------------------------------------------------------------------------

    def flush_args(self, updates: Iterable[CourierUpdate]) -> list[bytes | str]:
        """The script's ARGV: the cell key prefix and ONE msgpack array holding 7 values per
        courier (id, available, cell, lng, lat, seen, state JSON; cell/lng/lat are "" without
        a position). One argument per flush instead of 7 per courier: redis-py's per-argument
        encoding was the flush's main cost. Floats travel as msgpack doubles; Redis formats
        Lua numbers with %.17g, which reads back as the same double, so the GEO and seen
        scores are exactly what the former decimal strings stored. The state goes as a msgpack
        str: Redis's cmsgpack rejects the bin type ("Bad data format in input")."""
        flat: list[object] = []
        add = flat.extend
        for u in updates:
            has_pos = u.cell is not None and u.lat is not None and u.lng is not None
            state = u.state
            cell, lng, lat = (u.cell, u.lng, u.lat) if has_pos else _NO_POSITION
            add((u.courier_id, u.available, cell, lng, lat, state.seen, encode_state(state).decode()))
        return [self.keys.cell_prefix, _pack(flat)]

    async def flush(self, updates: Sequence[CourierUpdate], publish: Sequence[tuple[str, bytes]] = ()) -> None:
        """Store the updates and send the messages in one pipelined round trip. Raises on
        failure (nothing is acked then; the caller retries the same updates)."""
        if not updates and not publish:
            return
        if self._flush_sha is None:
            await self.load_scripts()
        assert self._flush_sha is not None  # load_scripts set it
        args = self.flush_args(updates) if updates else None
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            if args is not None:
                pipe.evalsha(self._flush_sha, 5, *self.keys.script_keys(), *args)
            for channel, message in publish:
                self._publisher.add(pipe, channel, message)  # SPUBLISH on a cluster (kernel.fanout)
            try:
                await pipe.execute()
                return
            except NoScriptError:
                if attempt == 2:
                    raise
                await self.load_scripts()  # Redis restarted or SCRIPT FLUSH: load and retry once

    async def sweep(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Remove couriers not seen since `cutoff` (unix s) from the available index; returns
        those whose status changed to `stale` (each is returned by exactly one sweeper)."""
        if self._sweep_sha is None:
            await self.load_scripts()
        assert self._sweep_sha is not None  # load_scripts set it
        try:
            ids = await self.redis.evalsha(
                self._sweep_sha, 5, *self.keys.script_keys(), self.keys.cell_prefix, repr(cutoff), limit
            )
        except NoScriptError:
            await self.load_scripts()
            ids = await self.redis.evalsha(
                self._sweep_sha, 5, *self.keys.script_keys(), self.keys.cell_prefix, repr(cutoff), limit
            )
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    async def forget(self, courier_id: str) -> bool:
        """Remove the courier from the index altogether (an erasure): True if it had a state here."""
        gone = await self.redis.eval(FORGET, 5, *self.keys.script_keys(), self.keys.cell_prefix, courier_id)
        await self.redis.hdel(self.keys.bundle, courier_id)
        return bool(gone)

    async def set_bundle(self, courier_id: str, order_ids: Sequence[str]) -> None:
        if order_ids:
            await self.redis.hset(self.keys.bundle, courier_id, msgspec.json.encode(list(order_ids)))
        else:
            await self.redis.hdel(self.keys.bundle, courier_id)

    # -- reads --------------------------------------------------------------------------

    async def stored_state(self, courier_id: str) -> LiveState | None:
        return decode_state(await self.redis.hget(self.keys.state, courier_id))

    async def scan_states(self, count: int = 1000) -> AsyncIterator[tuple[str, LiveState]]:
        """Every courier's stored state, in HSCAN batches of about `count` (never one blocking
        read of the whole region). A courier may come twice if the hash is resized meanwhile."""
        async for cid, raw in self.redis.hscan_iter(self.keys.state, count=count):
            state = decode_state(raw)
            if state is not None:
                yield (cid.decode() if isinstance(cid, bytes) else cid), state

    async def courier_states(self, courier_ids: Sequence[str]) -> dict[str, CourierLive]:
        """State and current bundle of each courier, in one round trip."""
        if not courier_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(self.keys.state, list(courier_ids))
        pipe.hmget(self.keys.bundle, list(courier_ids))
        states, bundles = await pipe.execute()
        return {
            cid: CourierLive(cid, decode_state(raw), _ids_decoder.decode(b) if b else [])
            for cid, raw, b in zip(courier_ids, states, bundles, strict=True)
        }

    async def available_counts(self, cells: Sequence[str] | None = None) -> dict[str, int]:
        """Available couriers per H3 cell: the given cells (0 where none), or every non-empty cell."""
        if cells is None:
            raw = await self.redis.hgetall(self.keys.avail)
            return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        if not cells:
            return {}
        values = await self.redis.hmget(self.keys.avail, list(cells))
        return {c: int(v) if v else 0 for c, v in zip(cells, values, strict=True)}

    async def nearest_online(self, points: Sequence[Point], k: int, radius_m: float,
                             first_radius_m: float = 1500.0) -> list[list[NearbyCourier]]:
        """For each point, its online couriers among the `k` nearest available ones, nearest first:
        a dispatch round's candidates, in one script call (each courier's state read once however
        many points find it).

        A tight first pass (Redis' cost grows with the couriers inside the radius), then one more
        call at `radius_m` for the points that found fewer than `k`. `nearest_available` walks H3
        rings with a round trip per ring: right for one point, slow for a thousand.
        """
        if not points:
            return []
        found = await self._nearest(points, k, min(first_radius_m, radius_m))
        short = [i for i, rows in enumerate(found) if len(rows) < k]
        if short and radius_m > first_radius_m:
            wider = await self._nearest([points[i] for i in short], k, radius_m)
            for i, rows in zip(short, wider, strict=True):
                found[i] = rows
        return found

    async def _nearest(self, points: Sequence[Point], k: int, radius_m: float) -> list[list[NearbyCourier]]:
        args: list[EncodableT] = [k, repr(float(radius_m))]
        for lat, lng in points:
            args += [repr(lng), repr(lat)]
        if self._nearest_sha is None:
            await self.load_scripts()
        assert self._nearest_sha is not None  # load_scripts set it
        try:
            replies = await self.redis.evalsha(self._nearest_sha, 2, self.keys.geo, self.keys.state, *args)
        except NoScriptError:
            await self.load_scripts()
            replies = await self.redis.evalsha(self._nearest_sha, 2, self.keys.geo, self.keys.state, *args)
        ids, states = replies[-2], replies[-1]
        online: dict[str, NearbyCourier] = {}
        if ids:
            for cid, raw in zip(ids.decode().split(" "), states.split(b"\n"), strict=True):
                state = decode_state(raw) if raw else None
                if state is not None and state.status == "online" and state.lat is not None \
                        and state.lng is not None:
                    online[cid] = NearbyCourier(cid, state.lat, state.lng, state.vehicle)
        return [[online[cid] for cid in raw.decode().split(" ") if cid in online] if raw else []
                for raw in replies[:-2]]

    async def nearest_available(
        self, lat: float, lng: float, k: int = 10, max_rings: int = 8
    ) -> list[Candidate]:
        """The `k` nearest available couriers to a point, searching H3 rings outwards (one
        SUNION per ring) and one ring beyond the ring where `k` were found (a courier in the
        next ring can be nearer than one in the far corner of this one), then sorting by
        great-circle distance. Cost grows with the couriers near the point, not the region."""
        found: list[str] = []
        extra_ring_done = False
        for ring in rings(lat, lng, max_rings):
            members = await self.redis.sunion([self.keys.cell(c) for c in ring])
            found.extend(m.decode() if isinstance(m, bytes) else m for m in members)
            if len(found) >= k:
                if extra_ring_done:
                    break
                extra_ring_done = True
        return await self._rank(found, lat, lng, k)

    async def search_available(
        self, lat: float, lng: float, radius_m: float, count: int = 30, any_: bool = True
    ) -> list[Candidate]:
        """`GEOSEARCH ... BYRADIUS radius_m m ASC COUNT count [ANY]`: with ANY, Redis stops at
        the first `count` matches (cheap on a dense set; not necessarily the nearest)."""
        rows = await self.redis.geosearch(
            self.keys.geo, longitude=lng, latitude=lat, radius=radius_m, unit="m", sort="ASC",
            count=count, any=any_, withcoord=True, withdist=True,
        )
        # redis-py types each reply row as a union of its parts; WITHDIST WITHCOORD makes it (member, dist, (lng, lat)).
        typed = cast(list[tuple[bytes, float, tuple[float, float]]], rows)
        return [Candidate(m.decode(), pos[1], pos[0], float(dist)) for m, dist, pos in typed]

    async def _rank(self, courier_ids: list[str], lat: float, lng: float, k: int) -> list[Candidate]:
        if not courier_ids:
            return []
        ids = list(dict.fromkeys(courier_ids))
        positions = await self.redis.geopos(self.keys.geo, *ids)
        ranked = [
            Candidate(cid, pos[1], pos[0], haversine_m((lat, lng), (pos[1], pos[0])))
            for cid, pos in zip(ids, positions, strict=True)
            if pos is not None
        ]
        ranked.sort(key=lambda c: c.distance_m)
        return ranked[:k]
