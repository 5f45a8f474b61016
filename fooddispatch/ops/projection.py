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
from typing import Any, TypeVar

import h3
import msgspec

from catalog.event_types import ItemSoldOut, MenuPublished, StoreFacts, StoreOpened, StorePaused
from dispatch.event_types import DispatchAssigned, DispatchOffered, DispatchUnassigned
from fooddispatch.ops import kpis
from fooddispatch.ops.messages import ConsoleSnapshot
from fooddispatch.ops.views import FINAL, OPEN, CourierView, OrderView
from kernel.outbox import EventData, MoneyData
from orders.event_types import (
    OrderAccepted,
    OrderCancelled,
    OrderCourierAssigned,
    OrderDelivered,
    OrderEnded,
    OrderExpired,
    OrderPickedUp,
    OrderPlaced,
    OrderPrepTimeChanged,
    OrderReady,
    OrderRefunded,
    OrderRejected,
)
from payments.event_types import IntentMoved, PaymentAuthorized, PaymentCaptured, PaymentRefunded, PaymentVoided
from tracking.event_types import (
    CourierArrivedDropoff,
    CourierArrivedPickup,
    CourierAtOrder,
    CourierDelivered,
    CourierOfferResponse,
    CourierPickedUp,
    CourierStatusChanged,
)

HEAT_RESOLUTION = 7  # ~5 km² cells, the dispatcher's surge resolution

Data = dict[str, Any]
Entry = dict[str, Any]  # a line of an order's timeline or a courier's day


D = TypeVar("D", bound=EventData)
Route = tuple[type[EventData], Callable[[Any, Entry], None]]


def _route(kind: type[D], handler: Callable[[D, Entry], None]) -> Route:
    """One event type's handler, which gets the event's payload decoded into `kind`."""
    return kind, handler


def _money(money: MoneyData) -> dict[str, Any]:
    return {"amount": money.amount, "currency": money.currency}


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

    def __post_init__(self) -> None:
        self._routes = {kind.event_type: (kind, handler) for kind, handler in self._handlers()}

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
        """One durable event (type, data, occurred_at as unix seconds): its data is decoded into the
        type's payload (docs/EVENTS.md) for the type's handler. An event of a type the console does not
        show, or whose data does not fit its type, changes nothing but the count."""
        self.events_seen += 1
        route = self._routes.get(type_)
        if route is None:
            return
        kind, handler = route
        try:
            payload = kind.from_data(data)
        except msgspec.ValidationError:
            return
        handler(payload, {"at": at, "event": type_})

    def _handlers(self) -> list[Route]:
        return [
            _route(OrderPlaced, self._on_placed), _route(OrderAccepted, self._on_accepted),
            _route(OrderPrepTimeChanged, self._on_prep_time_changed), _route(OrderReady, self._on_ready),
            _route(OrderRejected, self._on_ended), _route(OrderExpired, self._on_ended),
            _route(OrderCancelled, self._on_ended), _route(OrderPickedUp, self._on_picked_up),
            _route(OrderDelivered, self._on_delivered), _route(OrderRefunded, self._on_refunded),
            _route(DispatchOffered, self._on_offered), _route(DispatchAssigned, self._on_assigned),
            _route(DispatchUnassigned, self._on_unassigned), _route(OrderCourierAssigned, self._on_courier_assigned),
            _route(CourierStatusChanged, self._on_courier_status),
            _route(CourierOfferResponse, self._on_offer_response),
            _route(CourierArrivedPickup, self._on_courier_step), _route(CourierArrivedDropoff, self._on_courier_step),
            _route(CourierPickedUp, self._on_courier_step), _route(CourierDelivered, self._on_courier_step),
            _route(PaymentAuthorized, self._on_payment), _route(PaymentCaptured, self._on_payment),
            _route(PaymentVoided, self._on_payment), _route(PaymentRefunded, self._on_payment),
            _route(StorePaused, self._on_store), _route(StoreOpened, self._on_store),
            _route(MenuPublished, self._on_store), _route(ItemSoldOut, self._on_store),
        ]

    # ---- orders ----------------------------------------------------------------------------------

    def _on_placed(self, e: OrderPlaced, entry: Entry) -> None:
        self._placed(self._order_changed(e.order_id, entry, {}, "placed", None), e, entry["at"])

    def _on_accepted(self, e: OrderAccepted, entry: Entry) -> None:
        self._order_changed(e.order_id, entry, {"courier_id": e.courier_id}, "accepted", e.courier_id)

    def _on_prep_time_changed(self, e: OrderPrepTimeChanged, entry: Entry) -> None:
        self._order_changed(e.order_id, entry, {}, None, None)

    def _on_ready(self, e: OrderReady, entry: Entry) -> None:
        self._order_changed(e.order_id, entry, {}, "ready", None)

    def _on_ended(self, e: OrderEnded, entry: Entry) -> None:
        status = e.event_type.removeprefix("order.")  # rejected, expired, cancelled
        self._order_changed(e.order_id, entry, {"reason": e.reason, "courier_id": e.courier_id}, status, e.courier_id)

    def _on_picked_up(self, e: OrderPickedUp, entry: Entry) -> None:
        self._order_changed(e.order_id, entry, {"courier_id": e.courier_id}, "picked_up", e.courier_id)

    def _on_delivered(self, e: OrderDelivered, entry: Entry) -> None:
        order = self._order_changed(e.order_id, entry, {"courier_id": e.courier_id}, "delivered", e.courier_id)
        self._delivered(order, e.at.timestamp())

    def _on_refunded(self, e: OrderRefunded, entry: Entry) -> None:
        self._order_changed(e.order_id, entry, {"amount": _money(e.amount), "reason": e.reason}, None, None)

    def _order_changed(self, order_id: str, entry: Entry, noted: Entry, status: str | None,
                       courier_id: str | None) -> OrderView:
        """An order event: a timeline entry (with `noted`), the order's status (never back out of a
        final one), its courier, and a line in that courier's day."""
        order = self._order(order_id)
        order.note({**entry, **noted})
        if status is not None and (order.status not in FINAL or status in FINAL):
            order.status = status
        if courier_id:
            order.courier_id = courier_id
        if status in FINAL and order.courier_id:
            courier = self._courier(order.courier_id)
            if order.id in courier.order_ids:
                courier.order_ids.remove(order.id)
        if order.courier_id:
            self._courier(order.courier_id).note({**entry, "order_id": order.id})
        return order

    def _placed(self, order: OrderView, e: OrderPlaced, at: float) -> None:
        order.store_id, order.customer_id = e.store_id, e.customer_id
        order.pickup, order.dropoff = [e.pickup.lat, e.pickup.lng], [e.dropoff.lat, e.dropoff.lng]
        order.placed_at = e.placed_at.timestamp() or at
        order.promised_at = e.promised_at.timestamp()
        order.total = _money(e.total)
        self.placed_times.append(order.placed_at)
        if order.store_id:
            self.stores.setdefault(order.store_id, {"status": "online", "tenant_id": e.tenant_id})

    def _delivered(self, order: OrderView, delivered_at: float) -> None:
        order.delivered_at = delivered_at
        if order.placed_at is not None:
            self.click_to_door.append(kpis.elapsed(order.placed_at, order.delivered_at, self.time_scale))
            if order.promised_at is not None:
                self.on_time.append(kpis.on_time(order.placed_at, order.promised_at, order.delivered_at,
                                                 self.time_scale))
        if order.courier_id:
            self._courier(order.courier_id).delivered += 1

    # ---- dispatch and couriers -------------------------------------------------------------------

    def _on_offered(self, e: DispatchOffered, entry: Entry) -> None:
        self.offers += 1
        courier = self._courier(e.courier_id)
        courier.offers += 1
        courier.note({**entry, "order_ids": list(e.order_ids)})

    def _on_offer_response(self, e: CourierOfferResponse, entry: Entry) -> None:
        courier = self._courier(e.courier_id)
        if e.accepted:
            self.offers_accepted += 1
            courier.accepted += 1
        else:
            self.offers_declined += 1
            courier.declined += 1
        courier.note({**entry, "accepted": e.accepted})

    def _on_assigned(self, e: DispatchAssigned, entry: Entry) -> None:
        courier = self._courier(e.courier_id)
        for order_id in e.order_ids:
            order = self._order(order_id)
            order.courier_id = courier.id
            order.note({**entry, "courier_id": courier.id})
            if order_id not in courier.order_ids:
                courier.order_ids.append(order_id)
        courier.note({**entry, "order_ids": list(e.order_ids)})

    def _on_unassigned(self, e: DispatchUnassigned, entry: Entry) -> None:
        courier = self._courier(e.courier_id)
        gone = set(e.order_ids)
        courier.order_ids = [o for o in courier.order_ids if o not in gone]
        for order_id in gone:
            order = self._order(order_id)
            if order.courier_id == courier.id:
                order.courier_id = None
            order.note({**entry, "courier_id": courier.id, "reason": e.reason})
        courier.note({**entry, "reason": e.reason})

    def _on_courier_assigned(self, e: OrderCourierAssigned, entry: Entry) -> None:
        """An operator gave the order to a courier by hand: it leaves the courier that had it."""
        order = self._order(e.order_id)
        courier = self._courier(e.courier_id)
        if order.courier_id and order.courier_id != courier.id:
            previous = self._courier(order.courier_id)
            previous.order_ids = [o for o in previous.order_ids if o != order.id]
        order.courier_id = courier.id
        order.note({**entry, "courier_id": courier.id})
        if order.id not in courier.order_ids:
            courier.order_ids.append(order.id)
        courier.note({**entry, "order_id": order.id})

    def _on_courier_status(self, e: CourierStatusChanged, entry: Entry) -> None:
        courier = self._courier(e.courier_id)
        courier.status = e.status
        courier.note({**entry, "status": courier.status})

    def _on_courier_step(self, e: CourierAtOrder, entry: Entry) -> None:
        courier = self._courier(e.courier_id)
        courier.note({**entry, "order_id": e.order_id})
        if e.order_id:
            self._order(e.order_id).note({**entry, "courier_id": courier.id})

    # ---- payments and stores ---------------------------------------------------------------------

    def _on_payment(self, e: IntentMoved, entry: Entry) -> None:
        # A hold confirmed after 3-D Secure has no reference until checkout attaches it to its order:
        # its events are kept by intent and shown with the order once a later one names it.
        if e.reference:  # the order, or "<order>:tip:<n>" for a tip's own intent
            self.intent_order[e.intent_id] = e.reference.split(":", 1)[0]
        self.payments.setdefault(e.intent_id, []).append({**entry, "amount": _money(e.amount),
                                                          "intent_id": e.intent_id})

    def _on_store(self, e: StoreFacts, entry: Entry) -> None:
        store = self.stores.setdefault(e.store_id, {"status": "online", "tenant_id": e.tenant_id})
        if isinstance(e, StorePaused):
            store["status"] = "paused"
        elif isinstance(e, StoreOpened):
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

    def frame(self, now: float, region: str) -> ConsoleSnapshot:
        """The snapshot as the console socket sends it (its type is the frame's documentation)."""
        return msgspec.convert({**self.snapshot(now), "region": region}, ConsoleSnapshot)

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
        return {**order.brief(now, self.time_scale), "customer_id": order.customer_id, "timeline": timeline,
                "payments": payments, "courier_track": list(courier.track) if courier else []}

    def courier_detail(self, courier_id: str) -> dict[str, Any] | None:
        courier = self.couriers.get(courier_id)
        if courier is None:
            return None
        return {"id": courier.id, "state": courier.state(), "vehicle": courier.vehicle, "lat": courier.lat,
                "lng": courier.lng, "order_ids": courier.order_ids, "offers": courier.offers,
                "accepted": courier.accepted, "declined": courier.declined, "delivered": courier.delivered,
                "day": courier.day, "track": list(courier.track)}
