"""The live dispatcher of one region: the lease, the round, offers out, lapsed offers back.

Every `interval_s` the process tries to take (or renew) the region's lease; only the holder runs
a round: open orders from the pool, the nearest available couriers per pickup from the live index,
`plan_round` (the decision core once, each store priced against its own candidates) in an
executor with a time limit, then offers:
written in Redis under the lease's fencing check, recorded in Postgres with their
`dispatch.offered` events under the same fencing token, and published on each courier's channel;
then `reposition` frames to idle couriers the core moves toward food nobody takes (fenced,
rate-limited per courier). Between rounds, at their own pace: surge (demand of the last round
against the index's supply, every `surge_every_s`) and learning travel speeds from couriers'
movement (`dispatch.speeds_live`), which the rounds' travel times are corrected by. Answers to
offers and order changes arrive through the "dispatch" consumer (`dispatch.events`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import h3
import redis.asyncio as aioredis

from dispatch import store
from dispatch.cost import DispatchConfig
from dispatch.live import (
    DispatchKeys,
    Frames,
    Lease,
    LiveOffers,
    OfferKeys,
    RegionLease,
    Repositions,
    SurgeBoardStore,
)
from dispatch.messages import (
    MoneyOut,
    OfferCancelled,
    OfferDropoff,
    OfferFrame,
    OfferPickup,
    RepositionFrame,
    RoundStat,
    encoder,
)
from dispatch.model import Assignment, Courier, CourierState, OpenOrder
from dispatch.offers import PayoutRule
from dispatch.planner import RoundPlan, plan_round
from dispatch.speeds_live import SpeedKeeper
from dispatch.surge import SurgeConfig
from dispatch.surge_live import SurgeKeeper
from geo.eta import HaversineTravelTime, PrepTimeEstimator, TravelTime
from geo.live import CourierIndex
from geo.speeds import SpeedLearning
from kernel.clock import Clock
from kernel.ids import new_id
from kernel.tasks import TaskMetrics, every

log = logging.getLogger(__name__)


def _live_core_config(interval_s: float, reposition: bool) -> DispatchConfig:
    # Live rounds are seconds apart; handing food over takes a couple of minutes at either end.
    # Each store is priced only against its nearest candidates (`candidates_k` plus its orders), so
    # every one of them can be an arc: the flow is solved once, never again for starved bundles.
    return DispatchConfig(step_s=interval_s, pickup_service_s=120.0, dropoff_service_s=120.0,
                          candidates_per_bundle=32, reposition=reposition)


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    region: str
    interval_s: float = 5.0
    offer_ttl_s: float = 30.0
    lease_ttl_ms: int = 0  # 0: three intervals (at least 1 s)
    candidates_k: int = 8  # nearest available couriers considered per pickup (plus slack, below)
    search_radius_m: float = 10_000.0
    solve_timeout_s: float = 3.0  # a round gives up waiting for the executor after this
    busy_grace_s: float = 120.0  # a courier past its planned finish is expected free this soon
    prep_alpha: float = 0.2
    learn_speeds: bool = True  # correct travel times per H3 cell and hour from couriers' movement
    speed_sample_s: float = 15.0  # how often the lease holder reads positions to learn from
    speeds: SpeedLearning = field(default_factory=SpeedLearning)  # its timezone is the region's
    reposition: bool = True  # nudge idle couriers toward food nobody takes (a `reposition` frame)
    reposition_cooldown_s: float = 300.0  # at most one reposition frame per courier this often
    reposition_ttl_s: float = 300.0  # the frame's expires_at
    core: DispatchConfig | None = None
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    surge_every_s: float = 30.0  # surge samples demand and supply this often (its window is 10 min)
    payout: PayoutRule = field(default_factory=PayoutRule)

    @property
    def lease_ms(self) -> int:
        return self.lease_ttl_ms or max(1000, int(self.interval_s * 3000))

    @property
    def core_config(self) -> DispatchConfig:
        return self.core or _live_core_config(self.interval_s, self.reposition)


@dataclass(slots=True)
class Counters:
    offers_sent: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    offers_expired: int = 0
    offers_refused: int = 0  # written by the planner, refused by the fencing/live-offer check
    repositions_sent: int = 0
    rounds: int = 0


def iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, prefix: str, clock: Clock,
                 config: DispatcherConfig, owner: str, *, travel: TravelTime | None = None,
                 executor: Executor | None = None, on_round: Callable[[RoundStat], None] | None = None) -> None:
        self.pool = pool
        self.redis = redis
        self.prefix = prefix
        self.clock = clock
        self.config = config
        self.region = config.region
        self.keys = DispatchKeys(prefix, config.region)
        self.lease = RegionLease(redis, self.keys, owner, config.lease_ms)
        self.offers = LiveOffers(redis, self.keys)
        self.frames = Frames(redis, prefix)
        self.moves = Repositions(redis, self.keys)
        self.index = CourierIndex(redis, prefix, config.region)
        self.surge = SurgeKeeper(SurgeBoardStore(redis, self.keys), config.surge)
        self.travel = travel or HaversineTravelTime()
        self.speed = SpeedKeeper(pool, config.region, config.speeds, self.travel)
        self._speeds_learned_at = -math.inf  # monotonic time of the last learning pass
        self._surge_at = -math.inf  # monotonic time of the last surge update
        self._pickups: list[tuple[float, float]] = []
        self.executor = executor
        self.on_round = on_round
        self.counters = Counters()
        self.rounds: collections.deque[RoundStat] = collections.deque(maxlen=50)
        self.current: Lease | None = None
        self.paused = False  # tests: stop renewing, as a dead or frozen process would
        self.last_timings: dict[str, float] = {}  # seconds per phase of the last round (ops, bench)

    @property
    def leading(self) -> bool:
        return self.current is not None

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, metrics: TaskMetrics | None = None) -> None:
        """A round every `interval_s`; a failed one is logged and the next comes after a back-off."""
        interval = self.config.interval_s
        await every(f"dispatch-round-{self.region}", interval, self.tick, metrics=metrics,
                    backoff=interval, backoff_cap=max(interval, 10.0))

    async def tick(self) -> RoundStat | None:
        """Take or renew the lease; if held, expire lapsed offers and run one round."""
        if self.paused:
            return None
        lease = await self.lease.acquire(await self._fence_floor())
        if lease is None:
            self.current = None
            return None
        if self.current is None or self.current.token != lease.token:
            await self.surge.restore()  # a new term: carry on from the published levels
            if self.config.learn_speeds:
                await self.speed.load()  # and from what the previous holder learned
        self.current = lease
        await self.expire_lapsed()
        stat = await self.round(lease)
        if time.monotonic() - self._surge_at >= self.config.surge_every_s:
            await self.update_surge()  # between rounds: the fee levels move over minutes, not seconds
        if self.config.learn_speeds and time.monotonic() - self._speeds_learned_at >= self.config.speed_sample_s:
            await self.learn_speeds()  # between rounds, not inside one
        return stat

    async def _fence_floor(self) -> int:
        """What a new lease's token must exceed: ours while we hold it (no query), else the last
        token PostgreSQL accepted for the region (one indexed read, only while not holding)."""
        if self.current is not None:
            return self.current.token
        async with self.pool.acquire() as conn:
            return await store.last_fence(conn, self.region)

    async def stop(self) -> None:
        if self.current is not None:
            with contextlib.suppress(OSError, aioredis.RedisError):
                await self.lease.release(self.current)
            self.current = None

    async def update_surge(self) -> float:
        """Sample demand (the last round's open orders) and supply (the index) into the surge board
        and publish it; returns the seconds it took."""
        started = time.perf_counter()
        self._surge_at = time.monotonic()
        if self._pickups or self.surge.board.multipliers:
            await self.surge.update(self.index, self._pickups, self.clock.now().timestamp())
        return time.perf_counter() - started

    # -- learned travel times ------------------------------------------------------------------

    def travel_at(self, now: float) -> TravelTime:
        """The travel model of a round at `now` (see `dispatch.speeds_live`)."""
        return self.speed.travel_at(now) if self.config.learn_speeds else self.travel

    async def learn_speeds(self) -> int:
        self._speeds_learned_at = time.monotonic()
        return await self.speed.learn(self.index)

    # -- one round -----------------------------------------------------------------------------

    async def round(self, lease: Lease) -> RoundStat:
        t0 = time.perf_counter()
        now = self.clock.now().timestamp()
        async with self.pool.acquire() as conn:
            rows = await store.open_orders(conn, self.region)
            live = await store.live_offers(conn, self.region)
            lateness = await store.prep_lateness(conn, list({r["store_id"] for r in rows})) if rows else {}
        orders = self._open_orders(rows, lateness)
        t1 = time.perf_counter()
        couriers, candidates = await self._candidates(orders, live, now)
        t2 = time.perf_counter()
        self._pickups = [o.pickup for o in orders]  # demand for the next surge update
        plan = await self._plan(orders, candidates, couriers, now)
        t3 = time.perf_counter()
        currency = {r["order_id"]: r["currency"] for r in rows}
        sent = await self._offer(lease, plan.assignments, {o.order_id: o for o in orders}, currency, now)
        if plan.repositions and self.current is not None:
            await self._reposition(lease, plan, live, now)
        t4 = time.perf_counter()
        self.last_timings = {"pool_s": t1 - t0, "candidates_s": t2 - t1, "solve_s": t3 - t2, "offers_s": t4 - t3,
                             "skipped": float(len(plan.skipped))}
        stat = RoundStat(self.region, iso(now), time.perf_counter() - t0, len(orders), len(couriers), sent,
                         len(plan.held) + len(plan.skipped), lease.token)
        self.counters.rounds += 1
        self.rounds.append(stat)
        if self.on_round is not None:
            self.on_round(stat)
        return stat

    def _open_orders(self, rows: list, lateness: dict[str, float]) -> list[OpenOrder]:
        prep = PrepTimeEstimator(alpha=self.config.prep_alpha, lateness_s=lateness)
        orders = []
        for r in rows:
            if r["ready_at"] is not None:
                ready = r["ready_at"].timestamp()
            else:
                accepted = (r["accepted_at"] or r["placed_at"]).timestamp()
                stated = r["stated_ready_at"].timestamp() if r["stated_ready_at"] else accepted
                ready = accepted + prep.estimate_s(r["store_id"], max(0.0, stated - accepted))
            orders.append(OpenOrder(
                r["order_id"], r["store_id"], (r["pickup_lat"], r["pickup_lng"]), (r["dropoff_lat"], r["dropoff_lng"]),
                r["placed_at"].timestamp(), ready, r["promised_at"].timestamp(), frozenset(r["excluded"]),
            ))
        return orders

    async def _candidates(self, orders: list[OpenOrder], live: list[store.OfferRow],
                          now: float) -> tuple[dict[str, Courier], dict[str, list[str]]]:
        """The nearest available couriers of each store: busy ones with their planned finish,
        couriers holding a pending offer left out."""
        if not orders:
            return {}, {}
        pending = {o.courier_id for o in live if o.status == "pending"}
        busy: dict[str, store.OfferRow] = {}
        for o in live:
            if o.status == "accepted":
                prev = busy.get(o.courier_id)
                if prev is None or o.finish_at > prev.finish_at:
                    busy[o.courier_id] = o
        pickups: dict[str, tuple[float, float]] = {}
        per_store: collections.Counter[str] = collections.Counter()
        for order in orders:
            pickups.setdefault(order.store_id, order.pickup)
            per_store[order.store_id] += 1
        stores = list(pickups)
        k = self.config.candidates_k + 2
        found = await self.index.nearest_online([pickups[s] for s in stores],
                                                k + min(per_store.most_common(1)[0][1], 20) + len(pending) // 50,
                                                self.config.search_radius_m)
        couriers: dict[str, Courier] = {}
        for rows in found:
            for cid, lat, lng, vehicle in rows:
                if cid in couriers or cid in pending:
                    continue
                job = busy.get(cid)
                if job is not None:
                    free_at = max(job.finish_at.timestamp(), now + self.config.busy_grace_s)
                    couriers[cid] = Courier(cid, (job.finish_lat, job.finish_lng), free_at, CourierState.BUSY,
                                            vehicle=vehicle or "car", current_bundle=job.order_ids)
                else:
                    couriers[cid] = Courier(cid, (lat, lng), now, vehicle=vehicle or "car")
        candidates: dict[str, list[str]] = {}
        for store_id, rows in zip(stores, found, strict=True):
            ids = [row.courier_id for row in rows if row.courier_id in couriers]
            candidates[store_id] = ids[: self.config.candidates_k + per_store[store_id]]
        return couriers, candidates

    async def _plan(self, orders: list[OpenOrder], candidates: dict[str, list[str]],
                    couriers: dict[str, Courier], now: float) -> RoundPlan:
        if not orders or not couriers:
            return RoundPlan(held=[o.order_id for o in orders])
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self.executor, plan_round, orders, candidates, couriers, self.travel_at(now), now,
                                   self.config.core_config)
        try:
            return await asyncio.wait_for(job, self.config.solve_timeout_s)
        except TimeoutError:
            log.warning("dispatch solve in %s exceeded %.1f s; no offers this round", self.region,
                        self.config.solve_timeout_s)
            return RoundPlan(skipped=[o.order_id for o in orders])

    async def _offer(self, lease: Lease, assignments: list[Assignment], orders: dict[str, OpenOrder],
                     currency: dict[str, str], now: float) -> int:
        """Write and publish the offers; returns how many went out."""
        if not assignments:
            return 0
        created = iso(now)
        expires = created + timedelta(seconds=self.config.offer_ttl_s)
        offers: list[store.NewOffer] = []
        for a in assignments:
            offer_id = new_id("ofr")
            frame = self._frame(offer_id, a, orders, expires, currency)
            last = a.route.stops[-1].point
            offers.append(store.NewOffer(
                offer_id, a.courier_id, a.bundle.order_ids, created, expires, frame.payout.amount,
                frame.payout.currency, iso(a.route.finish_at), last[0], last[1], encoder.encode(frame),
            ))
        keys = [OfferKeys(o.offer_id, o.courier_id, o.order_ids) for o in offers]
        ttl_ms = int((self.config.offer_ttl_s + max(2.0, self.config.interval_s)) * 1000)
        written = await self.offers.write(lease, keys, ttl_ms)
        if written is None:  # the lease moved on: the successor decides now
            self.current = None
            self.counters.offers_refused += len(offers)
            return 0
        chosen = set(written)
        kept = [o for o in offers if o.offer_id in chosen]
        self.counters.offers_refused += len(offers) - len(kept)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                recorded = await store.write_offers(conn, self.region, lease.token, kept,
                                                    [store.offered_event(o) for o in kept])
        except BaseException:
            await self.offers.clear([k for k in keys if k.offer_id in chosen])
            raise
        recorded_ids = set(recorded or [])
        dropped = [k for k in keys if k.offer_id in chosen and k.offer_id not in recorded_ids]
        if dropped:
            await self.offers.clear(dropped)
        if recorded is None:
            # Fenced out: PostgreSQL took a newer token. Let go of the lease in Redis too (if it is
            # still ours: after Redis lost the counter, it is), so the next acquisition draws a
            # token above PostgreSQL's instead of renewing this stale one forever.
            with contextlib.suppress(OSError, aioredis.RedisError):
                await self.lease.release(lease)
            self.current = None
            return 0
        await self.frames.send([(o.courier_id, o.frame) for o in kept if o.offer_id in recorded_ids])
        self.counters.offers_sent += len(recorded_ids)
        return len(recorded_ids)

    async def _reposition(self, lease: Lease, plan: RoundPlan, live: list[store.OfferRow], now: float) -> int:
        """Send the core's repositioning moves. Never to a courier offered something this round or
        holding an accepted bundle (and the script skips any with a live offer); at most one per
        courier per cool-down. Returns how many went out."""
        busy = {o.courier_id for o in live} | {a.courier_id for a in plan.assignments}
        expires = iso(now + self.config.reposition_ttl_s)
        frames = []
        for move in plan.repositions:
            if move.courier_id in busy:
                continue
            lat, lng = move.target
            frames.append((move.courier_id, encoder.encode(RepositionFrame(
                lat, lng, h3.latlng_to_cell(lat, lng, 8), "orders_waiting", expires, self.region))))
        sent = await self.moves.send(lease, frames, int(self.config.reposition_cooldown_s * 1000))
        if sent is None:
            self.current = None
            return 0
        self.counters.repositions_sent += len(sent)
        return len(sent)

    def _frame(self, offer_id: str, a: Assignment, orders: dict[str, OpenOrder], expires: datetime,
               currency: dict[str, str]) -> OfferFrame:
        pickup = a.route.stops[0]
        first = orders[a.bundle.order_ids[0]]
        dropoffs = [
            OfferDropoff(oid, stop.point[0], stop.point[1], iso(stop.done_at), iso(orders[oid].promised_at))
            for stop in a.route.stops[1:] for oid in stop.order_ids
        ]
        ready = max(orders[oid].ready_at for oid in a.bundle.order_ids)
        return OfferFrame(
            offer_id=offer_id, order_ids=list(a.bundle.order_ids), expires_at=expires,
            payout=MoneyOut(self.config.payout.payout(a.route), currency.get(first.order_id, "EUR")),
            pickup=OfferPickup(a.bundle.store_id, pickup.point[0], pickup.point[1], iso(pickup.arrive_at), iso(ready)),
            dropoffs=dropoffs, region=self.region,
        )

    # -- offers that lapsed --------------------------------------------------------------------

    async def expire_lapsed(self) -> int:
        """Pending offers past their expiry: orders back to the pool without that courier."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            lapsed = await store.lapsed_offers(conn, self.region, now)
            for offer in lapsed:
                if await store.set_offer_status(conn, offer.offer_id, "expired", now, only_from="pending"):
                    await store.reopen(conn, offer.order_ids, exclude=offer.courier_id)
        if lapsed:
            await self.offers.clear([OfferKeys(o.offer_id, o.courier_id, o.order_ids) for o in lapsed])
            await self.frames.send([(o.courier_id, encoder.encode(OfferCancelled(o.offer_id, "expired")))
                                    for o in lapsed])
            self.counters.offers_expired += len(lapsed)
        return len(lapsed)
