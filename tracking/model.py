"""The pure core of live tracking: GPS validation, per-courier state and coalescing,
rate limits, geofences, smoothing, and the rules of the customer's tracking window.
No I/O, no asyncio: everything here is unit-tested with plain values."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from geo.distance import distance_sq_m2
from geo.eta import HaversineTravelTime
from geo.h3cells import cell_of
from geo.live import CourierUpdate, LiveState
from tracking.messages import BundleOrder, Point

# Fastest plausible speed per vehicle (m/s), with headroom for GPS error; above it a
# point is a teleport. Unknown vehicles get the car limit, so no real courier is dropped.
MAX_SPEED_MPS = {"walk": 7.0, "bicycle": 16.0, "scooter": 33.0, "car": 50.0}
DEFAULT_VEHICLE = "car"


@dataclass(frozen=True, slots=True)
class Rules:
    max_ahead_s: float = 30.0  # device clock ahead of ours
    max_behind_s: float = 600.0  # offline buffer replay window
    poor_accuracy_m: float = 100.0  # worse than this: history only, not dispatch
    jitter_m: float = 50.0  # distance always allowed between two fixes (GPS noise)
    geofence_radius_m: float = 60.0
    geofence_points: int = 2  # consecutive points inside the radius


REJECT_NOT_FINITE = "not_finite"
REJECT_OUT_OF_RANGE = "out_of_range"
REJECT_AHEAD = "clock_ahead"
REJECT_BEHIND = "too_old"
REJECT_TELEPORT = "teleport"


class Check(NamedTuple):
    reason: str | None  # None: accepted
    dispatchable: bool  # accepted and accurate enough for the live index


def check_point(point: Point, prev: Fix | None, now: float, vehicle: str | None, rules: Rules) -> Check:
    """Validate one point against the clock and the courier's previous dispatchable fix."""
    lat, lng, ts = point.lat, point.lng, point.ts
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0 and -_INF < ts < _INF):
        # NaN fails every comparison, so it lands here too.
        finite = math.isfinite(lat) and math.isfinite(lng) and math.isfinite(ts)
        return Check(REJECT_OUT_OF_RANGE if finite else REJECT_NOT_FINITE, False)
    if ts > now + rules.max_ahead_s:
        return Check(REJECT_AHEAD, False)
    if ts < now - rules.max_behind_s:
        return Check(REJECT_BEHIND, False)
    accuracy = point.accuracy
    if prev is not None:
        limit = MAX_SPEED_MPS.get(vehicle or DEFAULT_VEHICLE, _DEFAULT_LIMIT)
        elapsed = max(abs(ts - prev.ts), 1.0)
        slack = rules.jitter_m if accuracy is None or not accuracy > rules.jitter_m or accuracy == _INF else accuracy
        allowed = limit * elapsed + slack
        if distance_sq_m2(prev.lat, prev.lng, lat, lng) > allowed * allowed:
            return Check(REJECT_TELEPORT, False)
    accurate = accuracy is None or 0 <= accuracy <= rules.poor_accuracy_m
    return Check(None, accurate)


_INF = math.inf
_RESET_SQ = 250.0 * 250.0  # smoothing restarts after a jump of more than 250 m
_DEFAULT_LIMIT = MAX_SPEED_MPS[DEFAULT_VEHICLE]
def _finite_or(value: float | None, default: float) -> float:
    return value if value is not None and math.isfinite(value) else default


def _clean(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(slots=True)
class Fix:
    """A courier's last dispatchable position."""

    lat: float
    lng: float
    ts: float
    accuracy: float | None = None
    speed: float | None = None
    heading: float | None = None


class Accepted(NamedTuple):
    point: Point
    dispatchable: bool


@dataclass(slots=True)
class Applied:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (seq, reason)
    duplicates: int = 0
    max_seq: int = 0  # highest seq seen in the frame (applied, rejected or duplicate)


@dataclass(slots=True)
class CourierTrack:
    """What one courier's session knows: validation memory (last seq, last fix), status,
    and the smoothed position shown to customers."""

    courier_id: str
    vehicle: str | None = None
    status: str = "online"
    last_seq: int = 0
    fix: Fix | None = None
    seen: float = 0.0
    smooth_lat: float | None = None
    smooth_lng: float | None = None

    @classmethod
    def resume(cls, courier_id: str, stored: LiveState | None, vehicle: str | None) -> CourierTrack:
        """Continue from the live index after a reconnect: seqs already applied stay applied,
        a courier on break stays on break, anyone else is back online."""
        track = cls(courier_id, vehicle=vehicle)
        if stored is not None:
            track.last_seq = stored.seq
            track.status = "break" if stored.status == "break" else "online"
            if stored.lat is not None and stored.lng is not None and stored.ts is not None:
                track.fix = Fix(stored.lat, stored.lng, stored.ts, stored.accuracy, stored.speed, stored.heading)
            track.vehicle = vehicle or stored.vehicle
        return track

    def apply(self, points: Iterable[Point], now: float, rules: Rules) -> Applied:
        """Apply points in order: duplicates (seq <= last applied) are skipped, the rest
        validated; accepted dispatchable points move the fix."""
        out = Applied(max_seq=self.last_seq)
        for point in points:
            seq = point.seq
            if seq > out.max_seq:
                out.max_seq = seq
            if seq <= self.last_seq:
                out.duplicates += 1
                continue
            self.last_seq = seq
            reason, dispatchable = check_point(point, self.fix, now, self.vehicle, rules)
            if reason is not None:
                out.rejected.append((seq, reason))
                continue
            out.accepted.append(Accepted(point, dispatchable))
            if dispatchable:
                self.fix = Fix(point.lat, point.lng, point.ts, point.accuracy, _clean(point.speed),
                               _clean(point.heading))  # a dispatchable fix's accuracy is finite
                self._smooth(point)
        self.seen = now
        return out

    def _smooth(self, point: Point) -> None:
        # Exponential smoothing weighted by accuracy; a jump (> 250 m) resets it, since
        # lagging far behind a real move is worse than a little jitter.
        lat, lng = point.lat, point.lng
        slat, slng = self.smooth_lat, self.smooth_lng
        if slat is None or slng is None or distance_sq_m2(slat, slng, lat, lng) > _RESET_SQ:
            self.smooth_lat, self.smooth_lng = lat, lng
            return
        alpha = min(1.0, max(0.3, 20.0 / max(_finite_or(point.accuracy, 20.0), 1.0)))
        self.smooth_lat = slat + alpha * (lat - slat)
        self.smooth_lng = slng + alpha * (lng - slng)

    @property
    def available(self) -> bool:
        return self.status == "online"

    def update(self) -> CourierUpdate:
        """The courier's entry for the next flush (its state as of now)."""
        fix = self.fix
        cell = cell_of(fix.lat, fix.lng) if fix is not None else None
        state = LiveState(
            status=self.status, seen=self.seen, seq=self.last_seq, vehicle=self.vehicle, cell=cell,
            lat=fix.lat if fix else None, lng=fix.lng if fix else None, ts=fix.ts if fix else None,
            accuracy=fix.accuracy if fix else None, speed=fix.speed if fix else None,
            heading=fix.heading if fix else None,
        )
        return CourierUpdate(
            self.courier_id, self.available, state,
            lat=fix.lat if fix else None, lng=fix.lng if fix else None, cell=cell,
        )


S = TypeVar("S")


class Coalescer(Generic[S]):
    """Couriers changed since the last flush, with the highest seq to ack for each.
    However many points a courier sends between two flushes, the flush writes it once."""

    def __init__(self) -> None:
        self._dirty: dict[str, tuple[S, int]] = {}

    def mark(self, courier_id: str, session: S, seq: int) -> None:
        previous = self._dirty.get(courier_id)
        if previous is not None and previous[0] is session:
            seq = max(seq, previous[1])
        self._dirty[courier_id] = (session, seq)

    def pending_seq(self, courier_id: str) -> int | None:
        entry = self._dirty.get(courier_id)
        return entry[1] if entry else None

    def take(self) -> dict[str, tuple[S, int]]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def restore(self, batch: dict[str, tuple[S, int]]) -> None:
        """Put back a batch whose flush failed, under anything marked since."""
        for courier_id, (session, seq) in batch.items():
            if courier_id in self._dirty:
                newer_session, newer_seq = self._dirty[courier_id]
                if newer_session is session:
                    self._dirty[courier_id] = (session, max(seq, newer_seq))
            else:
                self._dirty[courier_id] = (session, seq)

    def __len__(self) -> int:
        return len(self._dirty)


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def allow(self, now: float, cost: float = 1.0) -> bool:
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class Arrival(NamedTuple):
    order_id: str
    where: str  # "pickup" | "dropoff"


_NO_ARRIVALS: list[Arrival] = []  # shared and never appended to


@dataclass(slots=True)
class Geofences:
    """Arrival detection for the orders a courier carries: `points` consecutive fixes
    within the radius of the pickup (before pick-up) or the dropoff (after) raise one
    arrival per order and place. The last few fixes are kept, so an order that reaches
    the courier's process after the courier got there (assigned while waiting at the
    restaurant, or its points were read before the assignment was) is checked at once."""

    orders: dict[str, BundleOrder] = field(default_factory=dict)
    inside: dict[tuple[str, str], int] = field(default_factory=dict)
    arrived: set[tuple[str, str]] = field(default_factory=set)
    recent: list[tuple[float, float]] = field(default_factory=list)  # the last fixes, oldest first

    def set_orders(self, orders: Iterable[BundleOrder], rules: Rules | None = None) -> list[Arrival]:
        """Carry these orders from now on; with `rules`, check the new ones against the recent fixes."""
        previous = self.orders
        self.orders = {o.order_id: o for o in orders}
        keep = set(self.orders)
        self.inside = {k: v for k, v in self.inside.items() if k[0] in keep}
        self.arrived = {k for k in self.arrived if k[0] in keep}
        found: list[Arrival] = []
        if rules is not None:
            for order in self.orders.values():
                if order.order_id not in previous:
                    for lat, lng in self.recent:
                        self._check(order, lat, lng, rules, found)
        return found

    def mark_arrived(self, order_id: str, where: str) -> bool:
        """Record an arrival the courier reported; False if it was already known."""
        key = (order_id, where)
        if key in self.arrived:
            return False
        self.arrived.add(key)
        return True

    def observe(self, lat: float, lng: float, rules: Rules) -> list[Arrival]:
        recent = self.recent
        recent.append((lat, lng))
        if len(recent) > rules.geofence_points:
            del recent[0]
        if not self.orders:
            return _NO_ARRIVALS  # the common case, a courier between orders: no list per point
        found: list[Arrival] = []
        for order in self.orders.values():
            self._check(order, lat, lng, rules, found)
        return found

    def _check(self, order: BundleOrder, lat: float, lng: float, rules: Rules, found: list[Arrival]) -> None:
        where, target = ("dropoff", order.dropoff) if order.picked_up else ("pickup", order.pickup)
        key = (order.order_id, where)
        if target is None or key in self.arrived:
            return
        radius = rules.geofence_radius_m
        if distance_sq_m2(lat, lng, target.lat, target.lng) <= radius * radius:
            self.inside[key] = self.inside.get(key, 0) + 1
            if self.inside[key] >= rules.geofence_points:
                self.arrived.add(key)
                found.append(Arrival(order.order_id, where))
        else:
            self.inside.pop(key, None)


_travel = HaversineTravelTime()


def eta_seconds(lat: float, lng: float, order: BundleOrder, vehicle: str | None) -> tuple[int | None, str | None]:
    """Seconds to the courier's next stop for this order, and which stop it is."""
    where, target = ("dropoff", order.dropoff) if order.picked_up else ("pickup", order.pickup)
    if target is None:
        return None, None
    v = {"bicycle": "bicycle", "scooter": "scooter", "car": "car", "walk": "walk"}.get(vehicle or "", "car")
    return round(_travel.seconds((lat, lng), (target.lat, target.lng), v)), where


# -- the customer's tracking window -----------------------------------------------------

# Order status as tracking sees it; a status never goes back to a lower rank (events may
# arrive out of order), and the terminal ones are final.
STATUS_RANK = {"placed": 0, "accepted": 1, "ready": 2, "picked_up": 3,
               "delivered": 9, "cancelled": 9, "rejected": 9, "expired": 9}
TERMINAL = frozenset({"delivered", "cancelled", "rejected", "expired"})


def next_status(current: str | None, incoming: str) -> str | None:
    """The status after an order event, or None if the event is stale and changes nothing."""
    if current is None:
        return incoming
    if current in TERMINAL:
        return None
    if STATUS_RANK.get(incoming, 0) < STATUS_RANK.get(current, 0):
        return None
    return incoming if incoming != current else None


def in_window(status: str, courier_id: str | None) -> bool:
    """A customer sees a courier's position only between assignment and delivery."""
    return courier_id is not None and status not in TERMINAL


@dataclass(slots=True)
class OrderView:
    """One process's view of an order that has watchers: positions pass only from the
    courier assigned now, inside the window; older status messages are ignored."""

    order_id: str
    status: str
    courier_id: str | None
    version: int

    def apply_status(self, status: str, courier_id: str | None, version: int) -> bool:
        if version < self.version:
            return False
        self.status, self.courier_id, self.version = status, courier_id, version
        return True

    def allows_position_of(self, courier_id: str) -> bool:
        return in_window(self.status, self.courier_id) and courier_id == self.courier_id
