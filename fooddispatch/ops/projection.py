"""The operator's view of the city, built from the durable events (docs/EVENTS.md) and the live
courier positions: orders with their timelines, couriers with their day, stores seen, offer
counts, KPIs and a demand/supply heat map on H3 cells. Pure: `apply` one event at a time,
`snapshot` what the console draws. No I/O; the feed owns that.

KPIs follow `fooddispatch.ops.kpis` (the demo's terminal uses the same definitions), read at
`time_scale` simulated seconds per real second (1 outside the demo).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import h3

from fooddispatch.ops import kpis

HEAT_RESOLUTION = 7  # ~5 km² cells, the dispatcher's surge resolution
OPEN = {"placed", "accepted", "preparing", "ready", "picked_up"}
FINAL = {"delivered", "cancelled", "rejected", "expired"}
# A courier reports each of these once per order; tracking may record one twice (the geofence and
# the app's own "arrived" frame both announce an arrival), the timeline shows the first.
ONCE_PER_COURIER = {"courier.arrived_pickup", "courier.arrived_dropoff", "courier.picked_up", "courier.delivered",
                    "dispatch.assigned"}
TIMELINE_MAX = 60
TRACK_MAX = 400

Data = dict[str, Any]


def _ts(value: Any) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def _pt(value: Any) -> list[float] | None:
    if isinstance(value, dict) and "lat" in value and "lng" in value:
        return [float(value["lat"]), float(value["lng"])]
    return None


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


@dataclass
class Projection:
    orders: dict[str, OrderView] = field(default_factory=dict)
    couriers: dict[str, CourierView] = field(default_factory=dict)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"status", "tenant_id"}
    placed_times: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    click_to_door: deque[float] = field(default_factory=lambda: deque(maxlen=2000))  # world seconds
    on_time: deque[bool] = field(default_factory=lambda: deque(maxlen=2000))
    offers: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    payments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # intent id -> its events
    intent_order: dict[str, str] = field(default_factory=dict)  # intent id -> order (its `reference`)
    events_seen: int = 0
    time_scale: float = 1.0  # simulated seconds per real second (the demo's --speed)

    def _order(self, order_id: str) -> OrderView:
        view = self.orders.get(order_id)
        if view is None:
            view = self.orders[order_id] = OrderView(order_id)
        return view

    def _courier(self, courier_id: str) -> CourierView:
        view = self.couriers.get(courier_id)
        if view is None:
            view = self.couriers[courier_id] = CourierView(courier_id)
        return view

    def apply(self, type_: str, data: Data, at: float) -> None:
        """One durable event (type, data, occurred_at as unix seconds)."""
        self.events_seen += 1
        handler = self._handlers().get(type_)
        if handler is None:
            family = type_.split(".", 1)[0]
            handler = {"order": self._on_order, "courier": self._on_courier_step, "payment": self._on_payment,
                       "store": self._on_store}.get(family)
        if handler is not None:
            handler(type_, data, {"at": at, "event": type_})

    def _handlers(self) -> dict[str, Callable[[str, Data, dict[str, Any]], None]]:
        return {
            "dispatch.offered": self._on_offered,
            "courier.offer_response": self._on_offer_response,
            "dispatch.assigned": self._on_assigned,
            "dispatch.unassigned": self._on_unassigned,
            "order.courier_assigned": self._on_courier_assigned,
            "courier.status_changed": self._on_courier_status,
            "menu.published": self._on_store,
            "item.sold_out": self._on_store,
        }

    # ---- orders ----------------------------------------------------------------------------------

    def _on_order(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        order = self._order(str(data.get("order_id")))
        order.note({**entry, **{k: v for k, v in data.items() if k in {"reason", "courier_id", "amount"}}})
        if type_ == "order.placed":
            self._placed(order, data, entry["at"])
        status = type_.split(".", 1)[1]
        if status in OPEN | FINAL and (order.status not in FINAL or status in FINAL):
            order.status = status
        if data.get("courier_id"):
            order.courier_id = data["courier_id"]
        if type_ == "order.delivered":
            self._delivered(order, data, entry["at"])
        if status in FINAL and order.courier_id:
            courier = self._courier(order.courier_id)
            if order.id in courier.order_ids:
                courier.order_ids.remove(order.id)
        if order.courier_id:
            self._courier(order.courier_id).note({**entry, "order_id": order.id})

    def _placed(self, order: OrderView, data: Data, at: float) -> None:
        order.store_id, order.customer_id = data.get("store_id"), data.get("customer_id")
        order.pickup, order.dropoff = _pt(data.get("pickup")), _pt(data.get("dropoff"))
        order.placed_at = _ts(data.get("placed_at")) or at
        order.promised_at = _ts(data.get("promised_at"))
        order.total = data.get("total")
        self.placed_times.append(order.placed_at)
        if order.store_id:
            self.stores.setdefault(order.store_id, {"status": "online", "tenant_id": data.get("tenant_id")})

    def _delivered(self, order: OrderView, data: Data, at: float) -> None:
        order.delivered_at = _ts(data.get("at")) or at
        if order.placed_at is not None:
            self.click_to_door.append(kpis.elapsed(order.placed_at, order.delivered_at, self.time_scale))
            if order.promised_at is not None:
                self.on_time.append(kpis.on_time(order.placed_at, order.promised_at, order.delivered_at,
                                                 self.time_scale))
        if order.courier_id:
            self._courier(order.courier_id).delivered += 1

    # ---- dispatch and couriers -------------------------------------------------------------------

    def _on_offered(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        self.offers += 1
        courier = self._courier(str(data.get("courier_id")))
        courier.offers += 1
        courier.note({**entry, "order_ids": data.get("order_ids", [])})

    def _on_offer_response(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        courier = self._courier(str(data.get("courier_id")))
        if data.get("accepted"):
            self.offers_accepted += 1
            courier.accepted += 1
        else:
            self.offers_declined += 1
            courier.declined += 1
        courier.note({**entry, "accepted": bool(data.get("accepted"))})

    def _on_assigned(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        courier = self._courier(str(data.get("courier_id")))
        for order_id in data.get("order_ids", []):
            order = self._order(order_id)
            order.courier_id = courier.id
            order.note({**entry, "courier_id": courier.id})
            if order_id not in courier.order_ids:
                courier.order_ids.append(order_id)
        courier.note({**entry, "order_ids": data.get("order_ids", [])})

    def _on_unassigned(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        courier = self._courier(str(data.get("courier_id")))
        gone = set(data.get("order_ids", []))
        courier.order_ids = [o for o in courier.order_ids if o not in gone]
        for order_id in gone:
            order = self._order(order_id)
            if order.courier_id == courier.id:
                order.courier_id = None
            order.note({**entry, "courier_id": courier.id, "reason": data.get("reason")})
        courier.note({**entry, "reason": data.get("reason")})

    def _on_courier_assigned(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        """An operator gave the order to a courier by hand: it leaves the courier that had it."""
        order = self._order(str(data.get("order_id")))
        courier = self._courier(str(data.get("courier_id")))
        if order.courier_id and order.courier_id != courier.id:
            previous = self._courier(order.courier_id)
            previous.order_ids = [o for o in previous.order_ids if o != order.id]
        order.courier_id = courier.id
        order.note({**entry, "courier_id": courier.id})
        if order.id not in courier.order_ids:
            courier.order_ids.append(order.id)
        courier.note({**entry, "order_id": order.id})

    def _on_courier_status(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        courier = self._courier(str(data.get("courier_id")))
        courier.status = str(data.get("status"))
        courier.note({**entry, "status": courier.status})

    def _on_courier_step(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        courier = self._courier(str(data.get("courier_id")))
        courier.note({**entry, "order_id": data.get("order_id")})
        if data.get("order_id"):
            self._order(str(data["order_id"])).note({**entry, "courier_id": courier.id})

    # ---- payments and stores ---------------------------------------------------------------------

    def _on_payment(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        # A hold confirmed after 3-D Secure has no reference until checkout attaches it to its order:
        # its events are kept by intent and shown with the order once a later one names it.
        intent = str(data.get("intent_id"))
        if data.get("reference"):  # the order, or "<order>:tip:<n>" for a tip's own intent
            self.intent_order[intent] = str(data["reference"]).split(":", 1)[0]
        self.payments.setdefault(intent, []).append({**entry, "amount": data.get("amount"), "intent_id": intent})

    def _on_store(self, type_: str, data: Data, entry: dict[str, Any]) -> None:
        store_id = str(data.get("store_id"))
        store = self.stores.setdefault(store_id, {"status": "online", "tenant_id": data.get("tenant_id")})
        if type_ == "store.paused":
            store["status"] = "paused"
        elif type_ == "store.opened":
            store["status"] = "online"

    # ---- live positions --------------------------------------------------------------------------

    def position(self, courier_id: str, lat: float, lng: float, status: str | None = None,
                 vehicle: str | None = None) -> None:
        courier = self._courier(courier_id)
        if status:
            courier.status = status
        if vehicle:
            courier.vehicle = vehicle
        if courier.lat != lat or courier.lng != lng:
            courier.lat, courier.lng = lat, lng
            courier.track.append([round(lat, 6), round(lng, 6)])

    # ---- what the console reads ------------------------------------------------------------------

    def heat(self) -> list[dict[str, Any]]:
        """Orders still waiting for a courier per H3 cell against idle couriers there: the pressure
        the dispatcher prices as surge."""
        demand: dict[str, int] = {}
        supply: dict[str, int] = {}
        for order in self.orders.values():
            if order.status in {"placed", "accepted", "preparing", "ready"} and order.pickup and not order.courier_id:
                cell = h3.latlng_to_cell(order.pickup[0], order.pickup[1], HEAT_RESOLUTION)
                demand[cell] = demand.get(cell, 0) + 1
        for courier in self.couriers.values():
            if courier.state() == "idle" and courier.lat is not None and courier.lng is not None:
                cell = h3.latlng_to_cell(courier.lat, courier.lng, HEAT_RESOLUTION)
                supply[cell] = supply.get(cell, 0) + 1
        out = []
        for cell, n in demand.items():
            ratio = n / max(supply.get(cell, 0), 1)
            out.append({"cell": cell, "orders": n, "couriers": supply.get(cell, 0), "pressure": round(ratio, 2),
                        "boundary": [[round(a, 5), round(b, 5)] for a, b in h3.cell_to_boundary(cell)]})
        return out

    def kpis(self, now: float) -> dict[str, Any]:
        ctd = [s / 60 for s in self.click_to_door]
        p90 = kpis.nearest_rank(ctd, 90)
        online = [c for c in self.couriers.values() if c.state() in {"idle", "busy"}]
        busy = [c for c in online if c.state() == "busy"]
        answered = self.offers_accepted + self.offers_declined
        return {
            "orders_per_min": kpis.orders_per_minute(self.placed_times, now, self.time_scale),
            "on_time_pct": kpis.percent(sum(self.on_time), len(self.on_time)),
            "click_to_door_min": round(sum(ctd) / len(ctd), 1) if ctd else None,
            "click_to_door_p90_min": round(p90, 1) if p90 is not None else None,
            "utilisation_pct": kpis.percent(len(busy), len(online)),
            "offer_acceptance_pct": kpis.percent(self.offers_accepted, answered),
            "open_orders": sum(1 for o in self.orders.values() if o.status in OPEN),
            "late_orders": sum(1 for o in self.orders.values() if o.late(now, self.time_scale)),
            "delivered": sum(1 for o in self.orders.values() if o.status == "delivered"),
            "couriers_online": len(online),
            "couriers_busy": len(busy),
            "offers": self.offers,
            "events": self.events_seen,
            "time_scale": self.time_scale,
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        scale = self.time_scale
        active = [o.brief(now, scale) for o in self.orders.values() if o.status in OPEN]
        recent_done = sorted((o for o in self.orders.values() if o.status in FINAL),
                             key=lambda o: o.placed_at or 0, reverse=True)[:30]
        return {
            "type": "snapshot",
            "at": now,
            "kpis": self.kpis(now),
            "orders": active + [o.brief(now, scale) for o in recent_done],
            "couriers": [{"id": c.id, "state": c.state(), "lat": c.lat, "lng": c.lng, "vehicle": c.vehicle,
                          "order_ids": c.order_ids, "delivered": c.delivered}
                         for c in self.couriers.values()],
            "stores": [{"id": sid, **info} for sid, info in self.stores.items()],
            "heat": self.heat(),
        }

    def order_payments(self, order_id: str) -> list[dict[str, Any]]:
        return sorted((e for intent, order in self.intent_order.items() if order == order_id
                       for e in self.payments.get(intent, [])), key=lambda e: e["at"])

    def order_detail(self, order_id: str, now: float | None = None) -> dict[str, Any] | None:
        """The order with one timeline: its status changes, the dispatch and courier steps and its
        payments, in time order."""
        order = self.orders.get(order_id)
        if order is None:
            return None
        courier = self.couriers.get(order.courier_id or "")
        payments = self.order_payments(order_id)
        timeline = sorted([*order.timeline, *payments], key=lambda e: e["at"])
        return {**order.brief(now, self.time_scale), "timeline": timeline,
                "payments": payments, "courier_track": list(courier.track) if courier else []}

    def courier_detail(self, courier_id: str) -> dict[str, Any] | None:
        courier = self.couriers.get(courier_id)
        if courier is None:
            return None
        return {"id": courier.id, "state": courier.state(), "vehicle": courier.vehicle, "lat": courier.lat,
                "lng": courier.lng, "order_ids": courier.order_ids, "offers": courier.offers,
                "accepted": courier.accepted, "declined": courier.declined, "delivered": courier.delivered,
                "day": courier.day, "track": list(courier.track)}
