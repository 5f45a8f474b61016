"""The console's view of orders (timeline, payments, lateness) and the KPIs it shares with the
demo's terminal: one definition, the same figure from the same orders."""

from __future__ import annotations

from datetime import UTC, datetime

from fooddispatch.demo.world import OrderTrack, SimClock, World
from fooddispatch.ops import kpis
from fooddispatch.ops.projection import Projection

T0 = 1_800_000_000.0  # unix seconds
POINT = {"lat": 52.52, "lng": 13.40}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def placed(p: Projection, order_id: str, at: float, promise_s: float) -> None:
    p.apply("order.placed", {"order_id": order_id, "store_id": "s1", "pickup": POINT, "dropoff": POINT,
                             "placed_at": iso(at), "promised_at": iso(at + promise_s),
                             "total": {"amount": 1250, "currency": "EUR"}}, at)


def test_a_courier_arrival_recorded_twice_shows_once_in_the_timeline() -> None:
    p = Projection()
    placed(p, "o1", T0, 2400)
    p.apply("dispatch.assigned", {"courier_id": "c1", "order_ids": ["o1"]}, T0 + 60)
    # Tracking records the geofence's arrival and the app's own "arrived" frame: two events.
    for step in ("arrived_pickup", "arrived_pickup", "picked_up", "arrived_dropoff", "arrived_dropoff"):
        p.apply(f"courier.{step}", {"courier_id": "c1", "order_id": "o1"}, T0 + 120)
    events = [e["event"] for e in p.order_detail("o1")["timeline"]]  # type: ignore[index]
    assert events.count("courier.arrived_pickup") == 1 and events.count("courier.arrived_dropoff") == 1
    # A second courier after a reassignment arrives too: that arrival is shown.
    p.apply("dispatch.assigned", {"courier_id": "c2", "order_ids": ["o1"]}, T0 + 130)
    p.apply("courier.arrived_pickup", {"courier_id": "c2", "order_id": "o1"}, T0 + 140)
    events = [e["event"] for e in p.order_detail("o1")["timeline"]]  # type: ignore[index]
    assert events.count("courier.arrived_pickup") == 2



def test_an_operator_s_assignment_moves_the_order_between_couriers_like_dispatch_s() -> None:
    p = Projection()
    placed(p, "o1", T0, 2400)
    p.apply("dispatch.assigned", {"courier_id": "c1", "order_ids": ["o1"]}, T0 + 60)
    p.apply("order.courier_assigned", {"order_id": "o1", "courier_id": "c2", "previous_courier_id": "c1"}, T0 + 90)
    detail = p.order_detail("o1")
    assert detail is not None and detail["courier_id"] == "c2"
    assert [e["event"] for e in detail["timeline"]][-1] == "order.courier_assigned"
    assert p.courier_detail("c1")["order_ids"] == []  # type: ignore[index]
    assert p.courier_detail("c2")["order_ids"] == ["o1"]  # type: ignore[index]

def test_payments_join_the_timeline_in_time_order_even_when_named_late() -> None:
    p = Projection()
    # A 3-D Secure hold is authorized before its order exists and without a reference.
    p.apply("payment.authorized", {"intent_id": "pi_1", "reference": None,
                                   "amount": {"amount": 1250, "currency": "EUR"}}, T0 - 5)
    placed(p, "o1", T0, 2400)
    p.apply("payment.captured", {"intent_id": "pi_1", "reference": "o1",
                                 "amount": {"amount": 1250, "currency": "EUR"}}, T0 + 1800)
    p.apply("order.delivered", {"order_id": "o1", "at": iso(T0 + 1799)}, T0 + 1799)
    detail = p.order_detail("o1")
    assert detail is not None
    timeline = detail["timeline"]
    assert [e["event"] for e in timeline] == ["payment.authorized", "order.placed", "order.delivered",
                                              "payment.captured"]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert timeline[-1]["amount"] == {"amount": 1250, "currency": "EUR"}
    assert [e["event"] for e in detail["payments"]] == ["payment.authorized", "payment.captured"]
    # A tip's own intent names the order as "<order>:tip:<n>": it is the order's payment too.
    p.apply("payment.captured", {"intent_id": "pi_2", "reference": "o1:tip:1",
                                 "amount": {"amount": 300, "currency": "EUR"}}, T0 + 1900)
    assert [e["intent_id"] for e in p.order_payments("o1")] == ["pi_1", "pi_1", "pi_2"]


def test_an_open_order_is_late_once_its_promise_passed_in_world_time() -> None:
    p = Projection(time_scale=10)
    placed(p, "o1", T0, 2400)  # promised 40 world minutes after it was placed
    assert not p.snapshot(T0 + 239)["orders"][0]["late"]  # 239 real s = 39.8 world min
    snap = p.snapshot(T0 + 241)
    assert snap["orders"][0]["late"] and snap["kpis"]["late_orders"] == 1
    p.apply("order.delivered", {"order_id": "o1", "at": iso(T0 + 250)}, T0 + 250)
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
    for order_id, _at, delivered in orders[:50]:
        p.apply("order.delivered", {"order_id": order_id, "at": iso(delivered)}, delivered)
        world.delivered(order_id, delivered)
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
