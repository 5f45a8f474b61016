"""The console's view of orders (timeline, payments, lateness) and the KPIs it shares with the
demo's terminal: one definition, the same figure from the same orders."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatch.event_types import DispatchAssigned
from fooddispatch.demo.world import OrderTrack, SimClock, World
from fooddispatch.ops import kpis
from fooddispatch.ops.projection import Projection
from kernel.outbox import EventData, MoneyData, PointData
from orders.event_types import OrderCourierAssigned, OrderDelivered, OrderPlaced
from payments.event_types import PaymentAuthorized, PaymentCaptured
from tracking.event_types import CourierArrivedDropoff, CourierArrivedPickup, CourierPickedUp

T0 = 1_800_000_000.0  # unix seconds
POINT = PointData(52.52, 13.40)
EUR_12_50 = MoneyData(1250, "EUR")


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def apply(p: Projection, payload: EventData, t: float) -> None:
    """As the feed does: the event's type and its data in wire form."""
    p.apply(payload.event_type, payload.to_data(), t)


def placed(p: Projection, order_id: str, t: float, promise_s: float) -> None:
    apply(p, OrderPlaced(order_id=order_id, customer_id="cus_1", store_id="s1", tenant_id="ten_1", region="r",
                         status="placed", pickup=POINT, dropoff=POINT, total=EUR_12_50, placed_at=at(t),
                         accept_by=at(t + 300), promised_at=at(t + promise_s), scheduled_for=None, lines=[]), t)


def assigned(p: Projection, courier_id: str, order_id: str, t: float) -> None:
    apply(p, DispatchAssigned(offer_id="off_1", courier_id=courier_id, order_ids=(order_id,), at=at(t)), t)


def delivered(p: Projection, order_id: str, t: float, courier_id: str | None = None) -> None:
    apply(p, OrderDelivered(order_id=order_id, store_id="s1", tenant_id="ten_1", customer_id="cus_1",
                            status="delivered", courier_id=courier_id, at=at(t), proof=None), t)


def test_a_courier_arrival_recorded_twice_shows_once_in_the_timeline() -> None:
    p = Projection()
    placed(p, "o1", T0, 2400)
    assigned(p, "c1", "o1", T0 + 60)
    # Tracking records the geofence's arrival and the app's own "arrived" frame: two events.
    step = {"courier_id": "c1", "order_id": "o1", "at": at(T0 + 120)}
    for payload in (CourierArrivedPickup(**step), CourierArrivedPickup(**step), CourierPickedUp(**step, proof=None),
                    CourierArrivedDropoff(**step), CourierArrivedDropoff(**step)):
        apply(p, payload, T0 + 120)
    events = [e["event"] for e in p.order_detail("o1")["timeline"]]  # type: ignore[index]
    assert events.count("courier.arrived_pickup") == 1 and events.count("courier.arrived_dropoff") == 1
    # A second courier after a reassignment arrives too: that arrival is shown.
    assigned(p, "c2", "o1", T0 + 130)
    apply(p, CourierArrivedPickup(courier_id="c2", order_id="o1", at=at(T0 + 140)), T0 + 140)
    events = [e["event"] for e in p.order_detail("o1")["timeline"]]  # type: ignore[index]
    assert events.count("courier.arrived_pickup") == 2


def test_an_operator_s_assignment_moves_the_order_between_couriers_like_dispatch_s() -> None:
    p = Projection()
    placed(p, "o1", T0, 2400)
    assigned(p, "c1", "o1", T0 + 60)
    apply(p, OrderCourierAssigned(order_id="o1", store_id="s1", tenant_id="ten_1", customer_id="cus_1",
                                  status="placed", courier_id="c2", previous_courier_id="c1", operator_id="op_1",
                                  region="r", pickup=POINT, dropoff=POINT, placed_at=at(T0),
                                  promised_at=at(T0 + 2400), at=at(T0 + 90)), T0 + 90)
    detail = p.order_detail("o1")
    assert detail is not None and detail["courier_id"] == "c2"
    assert [e["event"] for e in detail["timeline"]][-1] == "order.courier_assigned"
    assert p.courier_detail("c1")["order_ids"] == []  # type: ignore[index]
    assert p.courier_detail("c2")["order_ids"] == ["o1"]  # type: ignore[index]


def test_payments_join_the_timeline_in_time_order_even_when_named_late() -> None:
    p = Projection()
    # A 3-D Secure hold is authorized before its order exists and without a reference.
    apply(p, PaymentAuthorized(intent_id="pi_1", reference=None, amount=EUR_12_50), T0 - 5)
    placed(p, "o1", T0, 2400)
    apply(p, PaymentCaptured(intent_id="pi_1", reference="o1", amount=EUR_12_50), T0 + 1800)
    delivered(p, "o1", T0 + 1799)
    detail = p.order_detail("o1")
    assert detail is not None
    timeline = detail["timeline"]
    assert [e["event"] for e in timeline] == ["payment.authorized", "order.placed", "order.delivered",
                                              "payment.captured"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert timeline[-1]["amount"] == {"amount": 1250, "currency": "EUR"}
    assert [e["event"] for e in detail["payments"]] == ["payment.authorized", "payment.captured"]
    # A tip's own intent names the order as "<order>:tip:<n>": it is the order's payment too.
    apply(p, PaymentCaptured(intent_id="pi_2", reference="o1:tip:1", amount=MoneyData(300, "EUR")), T0 + 1900)
    assert [e["intent_id"] for e in p.order_payments("o1")] == ["pi_1", "pi_1", "pi_2"]


def test_an_open_order_is_late_once_its_promise_passed_in_world_time() -> None:
    p = Projection(time_scale=10)
    placed(p, "o1", T0, 2400)  # promised 40 world minutes after it was placed
    assert not p.snapshot(T0 + 239)["orders"][0]["late"]  # 239 real s = 39.8 world min
    snap = p.snapshot(T0 + 241)
    assert snap["orders"][0]["late"] and snap["kpis"]["late_orders"] == 1
    delivered(p, "o1", T0 + 250)
    snap = p.snapshot(T0 + 300)
    assert not snap["orders"][0]["late"] and snap["kpis"]["late_orders"] == 0
    assert snap["kpis"]["on_time_pct"] == 0.0


def test_console_and_terminal_show_the_same_orders_per_minute_on_time_and_click_to_door() -> None:
    speed = 10.0
    p = Projection(time_scale=speed)
    world = World(SimClock(speed))
    # Promise 40 world minutes; deliveries after 3.5 to 4.4 real minutes (35 to 44 world minutes).
    orders = [(f"o{i}", T0 + 7 * i, T0 + 7 * i + 210 + 6 * (i % 10)) for i in range(60)]
    for order_id, at, _delivered in orders:
        placed(p, order_id, at, 2400)
        world.placed(OrderTrack(order_id, "c1", "s1", at, at + 2400))
    for order_id, _at, delivered_at in orders[:50]:
        delivered(p, order_id, delivered_at)
        world.delivered(order_id, delivered_at)
    now = T0 + 7 * 60
    console = p.kpis(now)
    on_time = world.tally.on_time_pct()
    ctd = [s / 60 for s in world.tally.click_to_door]
    assert console["on_time_pct"] == on_time == 60.0  # i % 10 <= 5: within the 40 world minutes
    assert console["orders_per_min"] == world.orders_per_minute(now) == kpis.orders_per_minute(
        [at for _, at, _ in orders], now, speed)
    # 10 world minutes are 60 real seconds at x10: the orders of the last minute, per world minute.
    assert console["orders_per_min"] == round(sum(1 for _, at, _ in orders if at >= now - 60) / 10, 1)
    assert console["click_to_door_min"] == round(sum(ctd) / len(ctd), 1)


def test_undelivered_orders_are_counted_by_how_they_ended() -> None:
    world = World(SimClock(10))
    for i, outcome in enumerate(["delivered", None, None, "cancelled", "rejected"]):
        world.placed(OrderTrack(f"o{i}", "c1", "s1", T0, T0 + 2400))
        if outcome == "delivered":
            world.delivered(f"o{i}", T0 + 100)
        elif outcome:
            world.orders[f"o{i}"].outcome = outcome
    assert world.undelivered() == {"open": 2, "cancelled": 1, "rejected": 1}
