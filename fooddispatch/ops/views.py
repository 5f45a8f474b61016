"""The operator console's view of one order and one courier: what the projection keeps per entity
(a timeline, a courier's day, its track) and how the console shows it. Pure, no I/O."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fooddispatch.ops import kpis

OPEN = {"placed", "accepted", "preparing", "ready", "picked_up"}
FINAL = {"delivered", "cancelled", "rejected", "expired"}
# A courier reports each of these once per order; tracking may record one twice (the geofence and
# the app's own "arrived" frame both announce an arrival), the timeline shows the first.
ONCE_PER_COURIER = {"courier.arrived_pickup", "courier.arrived_dropoff", "courier.picked_up", "courier.delivered",
                    "dispatch.assigned"}
TIMELINE_MAX = 60
TRACK_MAX = 400


@dataclass
class OrderView:
    id: str
    status: str = "placed"
    store_id: str | None = None
    customer_id: str | None = None
    pickup: list[float] | None = None
    dropoff: list[float] | None = None
    placed_at: float | None = None
    promised_at: float | None = None
    delivered_at: float | None = None
    courier_id: str | None = None
    total: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def late(self, now: float, scale: float) -> bool:
        return (self.status in OPEN and self.placed_at is not None and self.promised_at is not None
                and kpis.late(self.placed_at, self.promised_at, now, scale))

    def brief(self, now: float | None, scale: float) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "store_id": self.store_id, "pickup": self.pickup,
                "dropoff": self.dropoff, "courier_id": self.courier_id, "placed_at": self.placed_at,
                "promised_at": self.promised_at, "delivered_at": self.delivered_at, "total": self.total,
                "late": None if now is None else self.late(now, scale)}

    def note(self, entry: dict[str, Any]) -> None:
        """Add a timeline entry, once for a courier's one-time step."""
        if entry["event"] in ONCE_PER_COURIER and any(
                e["event"] == entry["event"] and e.get("courier_id") == entry.get("courier_id") for e in self.timeline):
            return
        self.timeline.append(entry)
        del self.timeline[:-TIMELINE_MAX]


@dataclass
class CourierView:
    id: str
    status: str = "offline"
    lat: float | None = None
    lng: float | None = None
    vehicle: str | None = None
    order_ids: list[str] = field(default_factory=list)
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    delivered: int = 0
    day: list[dict[str, Any]] = field(default_factory=list)
    track: deque[list[float]] = field(default_factory=lambda: deque(maxlen=TRACK_MAX))

    def state(self) -> str:
        if self.status in {"offline", "stale", "break"}:
            return self.status
        return "busy" if self.order_ids else "idle"

    def note(self, entry: dict[str, Any]) -> None:
        self.day.append(entry)
        del self.day[:-TIMELINE_MAX * 4]
