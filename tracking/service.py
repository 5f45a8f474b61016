"""The tracking service: the process's registry of courier sessions, the flusher that
writes coalesced positions to the live index (and acks them), the history writer, the
stale-courier sweeper and courier actions as durable events.

What a crash can lose (see also tracking/README.md):
- Acked points are in the live index (Redis) before the ack is sent: never lost from it.
- History is written by COPY at least every `history_interval` (1 s) and on graceful
  shutdown; a crash (kill -9, power) loses the points received in the last interval
  (and any backlog kept while Postgres was unreachable). The live index is unaffected.
- Courier actions are acked after their outbox transaction commits: never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import msgspec
import redis.asyncio as aioredis
from aiohttp import web

from geo.live import CourierIndex, CourierUpdate
from kernel.clock import Clock
from kernel.errors import NotFound
from kernel.fanout import LIVE_STORE_ERRORS, Publisher
from kernel.http import Principal
from kernel.tasks import BackgroundTasks, TaskMetrics
from tracking import store
from tracking.event_types import (
    CourierArrivedDropoff,
    CourierArrivedPickup,
    CourierEvent,
    CourierStatusChanged,
    CourierStep,
)
from tracking.history import encode_points
from tracking.live import Channels, Hub
from tracking.messages import (
    BundleChanged,
    Connected,
    CourierCard,
    CourierPosition,
    CourierStatusOut,
    CustomerErased,
    OrderStatus,
    Point,
    StatusForced,
    bundle_decoder,
    control_decoder,
    encoder,
)
from tracking.model import Arrival, Coalescer, Rules, eta_seconds

if TYPE_CHECKING:
    from tracking.courier import CourierSession
    from tracking.watchers import Watchers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackingConfig:
    region: str = "demo"
    # The flusher writes (and acks) as soon as something is pending when it is idle; while a
    # flush is running, what arrives waits for the next one, and flushes start at most every
    # `flush_interval` (so a busy server sends few large batches, an idle one no delay).
    flush_interval: float = 0.005
    flush_retry: float = 0.05  # after a failed flush (Redis unreachable): wait, then retry the batch
    history_interval: float = 1.0
    history_batch_rows: int = 2_000  # rows per COPY (rows are encoded as they arrive; a COPY joins them)
    history_max_backlog: int = 200_000  # rows kept while Postgres is down; oldest dropped beyond
    retention_days: int = 30
    sweep_interval: float = 5.0
    stale_after: float = 60.0
    auth_timeout: float = 5.0
    heartbeat: float = 20.0
    max_frame_bytes: int = 64 * 1024
    max_points_per_frame: int = 1000
    frame_rate: float = 20.0  # frames per second per courier, sustained
    frame_burst: float = 60.0
    point_rate: float = 10.0  # points per second per courier, sustained (a courier pings every ~4 s)
    point_burst: float = 1200.0  # an offline buffer replayed on reconnect
    garbage_limit: int = 5  # malformed frames in a row before closing with 1008
    courier_queue: int = 64
    watcher_queue: int = 64
    redis_writes: bool = True  # off only for the ingest benchmark's parse+validate baseline
    history_writes: bool = True
    fast_lane: bool = True  # location frames applied as they are parsed (tracking/lane.py)
    rules: Rules = field(default_factory=Rules)


Step = Callable[[], Awaitable[object]]
Singular = Callable[[str, float, Step], Step]  # (job, interval, step) -> the step, run where the job's lease is
HistoryRow = store.HistoryRow
TrackedOrder = store.TrackedOrder


class CourierSteps(Protocol):
    """The order's side of a courier's pick-up or delivery: the transition of the order, run on
    `conn`, inside the transaction that records the courier's action (so the action commits
    with the order's change or not at all). Raises a `DomainError` when the step is impossible
    now: `InvalidTransition` with `extra["status"]` the order's state, `NotFound` when the
    order is not this courier's. Served by orders; the composition root wires it (tracking
    and orders never import each other)."""

    async def __call__(self, conn: asyncpg.Connection, *, courier_id: str, order_id: str, step: str,
                       proof: dict[str, Any] | None) -> None: ...


class OrderSource(Protocol):
    """The order as the orders package has it, committed (version 0: before any change the
    projection counts), or None. Authorizes a watcher whose order the projection has not
    seen yet: the order.placed event reaches the projection after the checkout's 201."""

    async def __call__(self, order_id: str) -> TrackedOrder | None: ...


class TrackingService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        prefix: str,
        clock: Clock,
        config: TrackingConfig,
        authenticate: Callable[[str], Principal],
        metrics: TaskMetrics | None = None,
        singular: Singular | None = None,
    ) -> None:
        self.pool = pool
        self.redis = redis
        self.clock = clock
        self.config = config
        self.authenticate = authenticate
        self.channels = Channels(prefix)
        self.publisher = Publisher(redis)  # PUBLISH, or SPUBLISH on a cluster (kernel.fanout)
        self.hub = Hub(redis)
        self.indexes: dict[str, CourierIndex] = {}
        self.index(config.region)
        self.couriers: dict[str, CourierSession] = {}
        self.coalescer: Coalescer[CourierSession] = Coalescer()
        self._announce: dict[str, CourierSession] = {}  # bundle changed: show the position to its orders
        self.history: list[HistoryRow] = []
        self.watchers: Watchers | None = None
        self.stats = {"points_accepted": 0, "points_rejected": 0, "teleports": 0, "points_duplicate": 0,
                      "flushes": 0, "flush_failures": 0, "history_rows": 0, "history_dropped": 0}
        self.metrics = metrics
        self.steps: CourierSteps | None = None  # None: actions are only recorded (no orders here)
        self.orders: OrderSource | None = None
        self._tasks = BackgroundTasks(metrics)
        # The sweeper and the partitions' upkeep run in one process at a time (the composition root's
        # job leases); without them, here (one process).
        self._singular: Singular = singular or (lambda _job, _interval, step: step)
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()  # set when something is pending for the flusher

    def index(self, region: str) -> CourierIndex:
        found = self.indexes.get(region)
        if found is None:
            found = self.indexes[region] = CourierIndex(self.redis, self.channels.prefix, region)
        return found

    def now(self) -> float:
        return self.clock.now().timestamp()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.redis_writes:
            for index in self.indexes.values():
                await index.load_scripts()
        await self.hub.subscribe(self.channels.control, self.on_control)
        if self.config.history_writes:
            await self.maintain_partitions()
        tasks, config = self._tasks, self.config
        tasks.supervise("tracking-hub", self.hub.run)
        # A failed flush (Redis unreachable) is retried soon: the points wait in memory, unacked.
        tasks.every("tracking-flusher", 0.0, self._flush_when_woken, backoff=config.flush_retry, backoff_cap=1.0)
        tasks.every("tracking-history", config.history_interval, self.write_history)
        once = self._singular
        sweep_every = config.sweep_interval
        tasks.every("tracking-sweeper", sweep_every, once("tracking-sweeper", sweep_every, self.sweep))
        tasks.every("tracking-heartbeat", config.heartbeat / 2, self.heartbeat)
        tasks.every("tracking-partitions", 3600.0, once("tracking-partitions", 3600.0, self.maintain_partitions))

    async def stop(self) -> None:
        """Graceful: stop the loops, then store what is pending (live index, then history)."""
        await self._tasks.stop()
        for task in list(self._side_tasks):
            with contextlib.suppress(Exception):
                await task
        with contextlib.suppress(*LIVE_STORE_ERRORS):
            await self.flush()
        for _ in range(3):
            if not self.history:
                break
            await self.write_history()
        await self.hub.close()

    async def _flush_when_woken(self) -> None:
        """Flush when something is pending: at once after an idle spell, else at most one flush
        start every `flush_interval`. Under load each flush takes everything read while the previous one
        was in flight, so batches grow with the load and acks are not held for a timer."""
        loop = asyncio.get_running_loop()
        await self._wake.wait()
        self._wake.clear()
        started = loop.time()
        try:
            await self.flush()
        except Exception:
            self._wake.set()  # the batch was put back: retry it after the back-off
            raise
        gap = self.config.flush_interval - (loop.time() - started)
        if gap > 0:
            await asyncio.sleep(gap)

    def run_side(self, coro: Any) -> None:
        """Fire-and-track a short job (geofence events): awaited on shutdown, errors logged."""
        task = asyncio.create_task(coro)
        self._side_tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._side_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("tracking side job failed: %s", t.exception())

        task.add_done_callback(done)

    # -- courier sessions ---------------------------------------------------------------

    async def attach(self, session: CourierSession) -> None:
        """Make `session` the courier's one live connection: an older one here is closed with
        4409 and hands over its state; one on another process hears `Connected` and closes."""
        cid = session.courier_id
        old = self.couriers.get(cid)
        self.couriers[cid] = session
        await self.hub.subscribe(self.channels.courier(cid), session.listener)
        await self.publisher.publish(self.channels.control, encoder.encode(Connected(cid, session.conn_id)))
        if old is not None:
            old.replaced()
            session.take_over(old)
        else:
            stored = await self.index(session.region).stored_state(cid)
            session.resume(stored)
        raw = await self.redis.hget(self.channels.bundles(session.region), cid)
        if raw:
            session.set_bundle(bundle_decoder.decode(raw))
        session.acked(session.track.last_seq, again=True)

    async def heartbeat(self) -> None:
        """A heartbeat round for every courier socket of this process (see CourierSession.heartbeat)."""
        for session in list(self.couriers.values()):
            session.heartbeat()

    async def detach(self, session: CourierSession) -> None:
        if self.couriers.get(session.courier_id) is session:
            del self.couriers[session.courier_id]
            await self.hub.unsubscribe(self.channels.courier(session.courier_id), session.listener)

    def on_control(self, raw: bytes) -> None:
        message = control_decoder.decode(raw)
        if isinstance(message, CustomerErased):
            if self.watchers is not None:
                self.watchers.close_customer(message.customer_id)
            return
        session = self.couriers.get(message.courier_id)
        if session is None:
            return
        if isinstance(message, Connected):
            if message.conn_id != session.conn_id:
                del self.couriers[message.courier_id]
                session.replaced()
                self.run_side(self.hub.unsubscribe(self.channels.courier(message.courier_id), session.listener))
        elif isinstance(message, BundleChanged):
            session.set_bundle(message.orders)
        elif isinstance(message, StatusForced):
            session.force_status(message.status)

    async def take_offline(self, courier_id: str) -> CourierStatusOut:
        """An operator takes the courier offline, as if the courier had sent `status: offline`:
        the same `courier.status_changed` event (dispatch withdraws its offers and re-dispatches
        its unpicked orders), the courier leaves the available index, and its app is told.
        A courier that is offline already is left as it is (nothing recorded)."""
        index = self.index(self.config.region)
        session = self.couriers.get(courier_id)
        stored = await index.stored_state(courier_id)
        if session is None and stored is None:
            raise NotFound("no such courier in the live index", param="courier_id")
        status = session.track.status if session is not None else stored.status  # type: ignore[union-attr]
        if status == "offline":
            return CourierStatusOut(courier_id, "offline", changed=False, connected=session is not None)
        await store.record_events(self.pool, [CourierStatusChanged(courier_id=courier_id, status="offline")
                                              .event(courier_id)])
        if session is not None:
            session.force_status("offline")
            await self.flush()  # the index says offline when the operator gets the answer
        else:
            assert stored is not None
            stored.status, stored.seen = "offline", self.now()
            await index.flush([CourierUpdate(courier_id, False, stored)])
            # A socket on another process keeps the status in memory: tell it (it flushes it again).
            await self.publisher.publish(self.channels.control, encoder.encode(StatusForced(courier_id, "offline")))
        return CourierStatusOut(courier_id, "offline", changed=True, connected=session is not None)

    async def forget_courier(self, courier_id: str) -> bool:
        """A courier's erasure (docs/PRIVACY.md), before its history is deleted: its socket here closes, and
        on any other process too (they hear a `Connected` of another connection and let theirs go); the
        points waiting here are written, so the deletion that follows takes them; and the courier leaves
        the live index (position, state, cell counts, bundle). True if the index held it."""
        session = self.couriers.get(courier_id)
        if session is not None:
            session.replaced()
            await self.detach(session)
        await self.publisher.publish(self.channels.control, encoder.encode(Connected(courier_id, "erased")))
        await self.write_history()
        found = False
        for region, index in self.indexes.items():
            found = await index.forget(courier_id) or found
            await self.redis.hdel(self.channels.bundles(region), courier_id)
        return found

    async def forget_customer(self, customer_id: str) -> None:
        """A customer's erasure (docs/PRIVACY.md): the order-tracking sockets showing their data (their own,
        and their orders' tracking links') close here at once and on every other process (`CustomerErased`)."""
        if self.watchers is not None:
            self.watchers.close_customer(customer_id)
        await self.publisher.publish(self.channels.control, encoder.encode(CustomerErased(customer_id)))

    # -- points -------------------------------------------------------------------------

    def keep_history(self, courier_id: str, points: Sequence[tuple[Point, bool]], received: float) -> None:
        """Queue the points for history, each already encoded as its COPY row (tracking/history.py)."""
        if not self.config.history_writes:
            return
        dropped = encode_points(courier_id, points, received, self.history)
        if dropped:
            # Out of the columns' range (say accuracy 1e300): left out, so they cannot fail a whole write.
            self.stats["history_dropped"] += dropped
            log.warning("location history: %d points of courier %s out of the columns' range, not stored",
                        dropped, courier_id)

    def pending(self, session: CourierSession, seq: int) -> None:
        """The session has something to store (ack up to `seq` after it is stored): the
        flusher wakes now if it is idle, or takes it with the next batch if a flush is running."""
        self.coalescer.mark(session.courier_id, session, seq)
        self._wake.set()

    async def flush(self) -> None:
        """One pipelined round trip per region: the coalesced couriers, and their positions to
        the orders they carry. Acks go out only after Redis accepted the write."""
        async with self._flush_lock:
            batch = self.coalescer.take()
            announce, self._announce = self._announce, {}
            if not batch and not announce:
                return
            by_region: dict[str, list[CourierSession]] = {}
            for session, _seq in batch.values():
                by_region.setdefault(session.region, []).append(session)
            shown: dict[str, list[CourierSession]] = {r: list(sessions) for r, sessions in by_region.items()}
            for cid, session in announce.items():
                if cid not in batch and self.couriers.get(cid) is session:
                    shown.setdefault(session.region, []).append(session)
            if self.config.redis_writes:
                try:
                    await asyncio.gather(*(
                        self.index(region).flush([s.track.update() for s in by_region.get(region, ())],
                                                 self._positions(sessions))
                        for region, sessions in shown.items()
                    ))
                except LIVE_STORE_ERRORS:
                    self.stats["flush_failures"] += 1
                    self.coalescer.restore(batch)
                    for cid, session in announce.items():
                        session.moved = True
                        self._announce.setdefault(cid, session)
                    raise
            self.stats["flushes"] += 1
            for session, seq in batch.values():
                session.acked(seq)

    def announce(self, session: CourierSession) -> None:
        """Publish the courier's current position to its orders at the next flush."""
        self._announce[session.courier_id] = session
        self._wake.set()

    def _positions(self, sessions: list[CourierSession]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for s in sessions:
            if not s.bundle or s.track.fix is None or not s.moved:
                continue
            s.moved = False
            fix = s.track.fix
            lat = s.track.smooth_lat if s.track.smooth_lat is not None else fix.lat
            lng = s.track.smooth_lng if s.track.smooth_lng is not None else fix.lng
            at = datetime.fromtimestamp(fix.ts, UTC)
            card = CourierCard(s.first_name, s.track.vehicle)
            for order in s.bundle:
                eta, eta_to = eta_seconds(lat, lng, order, s.track.vehicle)
                message = CourierPosition(order.order_id, s.courier_id, lat, lng, at, fix.heading, fix.speed,
                                          eta, eta_to, card)  # type: ignore[arg-type]
                out.append((self.channels.order(order.order_id), encoder.encode(message)))
        return out

    async def write_history(self) -> None:
        rows, self.history = self.history, []
        for start in range(0, len(rows), self.config.history_batch_rows):
            chunk = rows[start:start + self.config.history_batch_rows]
            try:
                await store.copy_history(self.pool, chunk)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                log.warning("location history write failed, will retry: %s", exc)
                backlog = rows[start:] + self.history
                overflow = len(backlog) - self.config.history_max_backlog
                if overflow > 0:
                    self.stats["history_dropped"] += overflow
                    backlog = backlog[overflow:]
                self.history = backlog
                if isinstance(exc, asyncpg.UndefinedTableError | asyncpg.CheckViolationError):
                    await self.maintain_partitions()
                return
            self.stats["history_rows"] += len(chunk)

    async def maintain_partitions(self) -> None:
        today = self.clock.now().date()
        await store.ensure_partitions(self.pool, [today - timedelta(days=1), today, today + timedelta(days=1)])
        dropped = await store.drop_partitions_before(self.pool, self.retention_cutoff(today))
        if dropped:
            log.info("dropped location history partitions past retention: %s", dropped)

    def retention_cutoff(self, today: date) -> date:
        return today - timedelta(days=self.config.retention_days)

    # -- sweeper ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Couriers silent for `stale_after` leave the available index; each one is reported
        by exactly one sweeper (the script removes it atomically) as `courier.status_changed`."""
        if not self.config.redis_writes:
            return
        cutoff = self.now() - self.config.stale_after
        for index in list(self.indexes.values()):
            stale = await index.sweep(cutoff)
            if stale:
                await store.record_events(self.pool, [
                    CourierStatusChanged(courier_id=cid, status="stale").event(cid) for cid in stale
                ])

    # -- actions and arrivals -----------------------------------------------------------

    async def record_action(self, courier_id: str, action_id: str | None, action: CourierEvent,
                            aggregate_id: str | None, step: str | None = None) -> bool:
        """Record the courier's action as its event, once per action id. `step` (`picked_up`,
        `delivered`): the order moves too, in the same transaction; an impossible step raises
        the orders' `DomainError` and nothing is recorded."""
        steps = self.steps
        if step is None or steps is None:
            return await store.record_action(self.pool, courier_id, action_id, action, aggregate_id)
        assert isinstance(action, CourierStep), "only a step moves the order"
        order_id, proof = action.order_id, msgspec.to_builtins(action.proof) if action.proof is not None else None

        async def move_order(conn: asyncpg.Connection) -> None:
            await steps(conn, courier_id=courier_id, order_id=order_id, step=step, proof=proof)

        return await store.record_action(self.pool, courier_id, action_id, action, aggregate_id, move_order)

    async def order_at_source(self, order_id: str) -> TrackedOrder | None:
        """The committed order from the orders package (None where orders is not wired)."""
        return None if self.orders is None else await self.orders(order_id)

    async def record_arrival(self, courier_id: str, arrival: Arrival) -> bool:
        """Record the courier's arrival at the order's pickup or dropoff, once per order and courier: the
        geofence and the app's own `arrived` frame both report it, and a reconnect forgets what the geofence
        saw. The first report is kept (its time); later ones write nothing. Returns whether this one was."""
        kind = CourierArrivedPickup if arrival.where == "pickup" else CourierArrivedDropoff
        action = kind(courier_id=courier_id, order_id=arrival.order_id, at=self.clock.now())
        key = f"{kind.event_type}:{arrival.order_id}"  # the arrival's own action id, beside the app's (per courier)
        fresh = await store.record_action(self.pool, courier_id, key, action, arrival.order_id)
        if fresh:
            await self.notify_order(arrival.order_id, kind.event_type)
        return fresh

    async def notify_order(self, order_id: str, event_type: str) -> None:
        note = OrderStatus(order_id, self.clock.now(), event=event_type)
        await self.publisher.publish(self.channels.order(order_id), encoder.encode(note))


# The app's tracking service (web.py re-exports it; the courier socket's handler reads it from here).
TRACKING = web.AppKey("tracking", TrackingService)
