"""The operator's view of the city, built from the durable events (docs/EVENTS.md) and the live
courier positions: orders with their timelines, couriers with their day, stores seen, offer
counts, KPIs and a demand/supply heat map on H3 cells. Pure: `apply` one event at a time,
`snapshot` what the console draws. No I/O; the feed owns that.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import h3

HEAT_RESOLUTION = 7  # ~5 km² cells, the dispatcher's surge resolution
OPEN = {"placed", "accepted", "preparing", "ready", "picked_up"}
FINAL = {"delivered", "cancelled", "rejected", "expired"}
TIMELINE_MAX = 60
TRACK_MAX = 400


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

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "store_id": self.store_id, "pickup": self.pickup,
                "dropoff": self.dropoff, "courier_id": self.courier_id, "placed_at": self.placed_at,
                "promised_at": self.promised_at, "total": self.total}


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


@dataclass
class Projection:
    orders: dict[str, OrderView] = field(default_factory=dict)
    couriers: dict[str, CourierView] = field(default_factory=dict)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {"status", "tenant_id"}
    placed_times: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    click_to_door: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    on_time: deque[bool] = field(default_factory=lambda: deque(maxlen=2000))
    offers: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    payments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # reference -> payment events
    events_seen: int = 0

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

    def apply(self, type_: str, data: dict[str, Any], at: float) -> None:
        """One durable event (type, data, occurred_at as unix seconds)."""
        self.events_seen += 1
        entry = {"at": at, "event": type_}
        if type_.startswith("order."):
            order = self._order(str(data.get("order_id")))
            order.timeline.append({**entry, **{k: v for k, v in data.items() if k in {"reason", "courier_id"}}})
            del order.timeline[:-TIMELINE_MAX]
            status = type_.split(".", 1)[1]
            if type_ == "order.placed":
                order.store_id, order.customer_id = data.get("store_id"), data.get("customer_id")
                order.pickup, order.dropoff = _pt(data.get("pickup")), _pt(data.get("dropoff"))
                order.placed_at = _ts(data.get("placed_at")) or at
                order.promised_at = _ts(data.get("promised_at"))
                order.total = data.get("total")
                self.placed_times.append(order.placed_at)
                if order.store_id:
                    self.stores.setdefault(order.store_id, {"status": "online", "tenant_id": data.get("tenant_id")})
            if status in OPEN | FINAL and (order.status not in FINAL or status in FINAL):
                order.status = status
            if data.get("courier_id"):
                order.courier_id = data["courier_id"]
            if type_ == "order.delivered":
                order.delivered_at = _ts(data.get("at")) or at
                if order.placed_at is not None:
                    self.click_to_door.append(order.delivered_at - order.placed_at)
                    if order.promised_at is not None:
                        self.on_time.append(order.delivered_at <= order.promised_at)
                if order.courier_id:
                    self._courier(order.courier_id).delivered += 1
            if status in FINAL and order.courier_id:
                courier = self._courier(order.courier_id)
                if order.id in courier.order_ids:
                    courier.order_ids.remove(order.id)
            if order.courier_id:
                self._courier(order.courier_id).day.append({**entry, "order_id": order.id})
        elif type_ == "dispatch.offered":
            self.offers += 1
            courier = self._courier(str(data.get("courier_id")))
            courier.offers += 1
            courier.day.append({**entry, "order_ids": data.get("order_ids", [])})
        elif type_ == "courier.offer_response":
            courier = self._courier(str(data.get("courier_id")))
            if data.get("accepted"):
                self.offers_accepted += 1
                courier.accepted += 1
            else:
                self.offers_declined += 1
                courier.declined += 1
            courier.day.append({**entry, "accepted": bool(data.get("accepted"))})
        elif type_ == "dispatch.assigned":
            courier = self._courier(str(data.get("courier_id")))
            for order_id in data.get("order_ids", []):
                self._order(order_id).courier_id = courier.id
                self._order(order_id).timeline.append({**entry, "courier_id": courier.id})
                if order_id not in courier.order_ids:
                    courier.order_ids.append(order_id)
            courier.day.append({**entry, "order_ids": data.get("order_ids", [])})
        elif type_ == "dispatch.unassigned":
            courier = self._courier(str(data.get("courier_id")))
            courier.order_ids = [o for o in courier.order_ids if o not in set(data.get("order_ids", []))]
            courier.day.append({**entry, "reason": data.get("reason")})
        elif type_ == "courier.status_changed":
            courier = self._courier(str(data.get("courier_id")))
            courier.status = str(data.get("status"))
            courier.day.append({**entry, "status": courier.status})
        elif type_.startswith("courier."):
            courier = self._courier(str(data.get("courier_id")))
            courier.day.append({**entry, "order_id": data.get("order_id")})
            if data.get("order_id"):
                self._order(str(data["order_id"])).timeline.append(entry)
        elif type_.startswith("payment."):
            reference = str(data.get("reference"))
            self.payments.setdefault(reference, []).append({**entry, "amount": data.get("amount"),
                                                            "intent_id": data.get("intent_id")})
            if reference in self.orders:
                self.orders[reference].timeline.append({**entry, "amount": data.get("amount")})
        elif type_.startswith("store.") or type_ in {"menu.published", "item.sold_out"}:
            store_id = str(data.get("store_id"))
            store = self.stores.setdefault(store_id, {"status": "online", "tenant_id": data.get("tenant_id")})
            if type_ == "store.paused":
                store["status"] = "paused"
            elif type_ == "store.opened":
                store["status"] = "online"
        for view in (self.couriers.get(str(data.get("courier_id"))),):
            if view is not None:
                del view.day[:-TIMELINE_MAX * 4]

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
        recent = [t for t in self.placed_times if t >= now - 600]
        ctd = sorted(self.click_to_door)
        online = [c for c in self.couriers.values() if c.state() in {"idle", "busy"}]
        busy = [c for c in online if c.state() == "busy"]
        answered = self.offers_accepted + self.offers_declined
        return {
            "orders_per_min": round(len(recent) / 10, 2),
            "on_time_pct": round(100 * sum(self.on_time) / len(self.on_time), 1) if self.on_time else None,
            "click_to_door_min": round(sum(ctd) / len(ctd) / 60, 1) if ctd else None,
            "click_to_door_p90_min": round(ctd[max(0, math.ceil(0.9 * len(ctd)) - 1)] / 60, 1) if ctd else None,
            "utilisation_pct": round(100 * len(busy) / len(online), 1) if online else None,
            "offer_acceptance_pct": round(100 * self.offers_accepted / answered, 1) if answered else None,
            "open_orders": sum(1 for o in self.orders.values() if o.status in OPEN),
            "delivered": sum(1 for o in self.orders.values() if o.status == "delivered"),
            "couriers_online": len(online),
            "couriers_busy": len(busy),
            "offers": self.offers,
            "events": self.events_seen,
        }

    def snapshot(self, now: float) -> dict[str, Any]:
        active = [o.brief() for o in self.orders.values() if o.status in OPEN]
        recent_done = sorted((o for o in self.orders.values() if o.status in FINAL),
                             key=lambda o: o.placed_at or 0, reverse=True)[:30]
        return {
            "type": "snapshot",
            "at": now,
            "kpis": self.kpis(now),
            "orders": active + [o.brief() for o in recent_done],
            "couriers": [{"id": c.id, "state": c.state(), "lat": c.lat, "lng": c.lng, "vehicle": c.vehicle,
                          "order_ids": c.order_ids, "delivered": c.delivered}
                         for c in self.couriers.values()],
            "stores": [{"id": sid, **info} for sid, info in self.stores.items()],
            "heat": self.heat(),
        }

    def order_detail(self, order_id: str) -> dict[str, Any] | None:
        order = self.orders.get(order_id)
        if order is None:
            return None
        courier = self.couriers.get(order.courier_id or "")
        return {**order.brief(), "timeline": order.timeline, "payments": self.payments.get(order_id, []),
                "courier_track": list(courier.track) if courier else []}

    def courier_detail(self, courier_id: str) -> dict[str, Any] | None:
        courier = self.couriers.get(courier_id)
        if courier is None:
            return None
        return {"id": courier.id, "state": courier.state(), "vehicle": courier.vehicle, "lat": courier.lat,
                "lng": courier.lng, "order_ids": courier.order_ids, "offers": courier.offers,
                "accepted": courier.accepted, "declined": courier.declined, "delivered": courier.delivered,
                "day": courier.day, "track": list(courier.track)}
