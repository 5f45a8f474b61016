"""Pure parts of the demo and the console: route discovery, carts, metrics, the ops projection."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import msgspec

from catalog.messages import CustomerMenu
from dispatch.event_types import DispatchAssigned, DispatchOffered
from dispatch.messages import MoneyOut as DispatchMoney
from dispatch.messages import OfferDropoff, OfferFrame, OfferPickup
from fooddispatch.demo.console import dispatch_figures, parse_metrics
from fooddispatch.demo.couriers import stops_from_offer
from fooddispatch.demo.customers import build_cart
from fooddispatch.demo.world import percentile
from fooddispatch.ops.discovery import Route, find_routes
from fooddispatch.ops.projection import Projection
from kernel.outbox import MoneyData, PointData
from orders.event_types import OrderDelivered, OrderPlaced
from tracking.event_types import CourierOfferResponse

SPEC = {"paths": {
    "/v1/tenants/{tenant_id}/stores": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/StoreCreate"}}}},
        "responses": {"201": {}}}},
    "/v1/orders": {"post": {
        "x-idempotent": True,
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckoutRequest"}}}},
        "responses": {"201": {}}}},
    "/v1/orders/{order_id}": {"get": {"responses": {"200": {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderOut"}}}}}}},
}}


def test_routes_are_found_by_their_wire_types_and_missing_ones_are_absent() -> None:
    found = find_routes(SPEC)
    assert found["create_store"] == Route("POST", "/v1/tenants/{tenant_id}/stores")
    assert found["checkout"].idempotent
    assert found["get_order"].url(order="ord_1") == "/v1/orders/ord_1"
    assert "quote" not in found and "courier_ws" not in found


def _menu(items: list[dict]) -> CustomerMenu:
    """A customer menu from the fields a cart depends on; the rest filled in."""
    def option(o: dict) -> dict:
        return {"name": o["id"], "price": 0, "max_quantity": 1, "available": True, **o,
                "modifier_groups": [group(g) for g in o.get("modifier_groups", [])]}

    def group(g: dict) -> dict:
        return {"name": g["id"], **g, "options": [option(o) for o in g["options"]]}

    return msgspec.convert({"store_id": "sto_1", "store_name": "S", "currency": "EUR", "version": 1, "categories": [
        {"id": "cat_1", "name": "C", "items": [
            {"name": i["id"], "description": "", "price": 100, "dietary_tags": [], "image_url": None, **i,
             "modifier_groups": [group(g) for g in i["modifier_groups"]]} for i in items]}]}, CustomerMenu)


def test_carts_respect_every_modifier_group_including_nested_ones() -> None:
    ice = {"id": "g3", "min": 1, "max": 1, "options": [{"id": "o5"}, {"id": "o6"}]}
    menu = _menu([{"id": "i1", "sold_out": False, "modifier_groups": [
        {"id": "g1", "min": 1, "max": 1, "options": [{"id": "o1"}, {"id": "o2"}, {"id": "o9", "available": False}]},
        {"id": "g2", "min": 0, "max": 2, "options": [{"id": "o3", "modifier_groups": [ice]}, {"id": "o4"}]}]},
        {"id": "i2", "sold_out": True, "modifier_groups": []}])
    for seed in range(50):
        for line in build_cart(random.Random(seed), menu):
            assert line.item_id == "i1"
            sizes = [o for o in line.options if o.option_id in {"o1", "o2", "o9"}]
            assert len(sizes) == 1 and sizes[0].option_id != "o9"
            for option in line.options:
                if option.option_id == "o3":
                    assert len(option.options) == 1


def test_a_bundle_offer_is_ridden_pickup_first_then_each_dropoff_in_the_planned_order() -> None:
    t = datetime(2026, 1, 1, 18, 0, tzinfo=UTC)
    offer = OfferFrame(offer_id="ofr_1", order_ids=["o1", "o2"], expires_at=t, payout=DispatchMoney(500, "EUR"),
                       pickup=OfferPickup("sto_1", 52.5, 13.4, t, t), region="demo",
                       dropoffs=[OfferDropoff("o2", 52.51, 13.41, t, t), OfferDropoff("o1", 52.52, 13.42, t, t)])
    assert stops_from_offer(offer) == [("pickup", "o1", (52.5, 13.4)), ("pickup", "o2", (52.5, 13.4)),
                                       ("dropoff", "o2", (52.51, 13.41)), ("dropoff", "o1", (52.52, 13.42))]


def test_dispatch_round_and_surge_are_read_from_prometheus_text() -> None:
    text = ('# HELP x\ndispatch_round_seconds_sum{region="demo"} 0.5\n'
            'dispatch_round_seconds_count{region="demo"} 10\nsurge_cells_active 3\n')
    round_ms, surge = dispatch_figures(parse_metrics(text))
    assert round_ms == 50.0 and surge == 3
    assert dispatch_figures(parse_metrics("outbox_lag_events 0\n")) == (None, None)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 90) == 0.0
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([5.0], 50) == 5.0


def test_projection_follows_an_order_from_placed_to_delivered() -> None:
    p = Projection()
    point, eur = PointData(52.52, 13.40), MoneyData(1250, "EUR")
    t = datetime(2026, 1, 1, 18, 0, tzinfo=UTC)
    order = {"order_id": "o1", "store_id": "s1", "tenant_id": "ten_1", "customer_id": "cus_1"}
    for payload in (
        OrderPlaced(**order, region="r", status="placed", pickup=point, dropoff=point, total=eur, placed_at=t,
                    accept_by=t + timedelta(minutes=5), promised_at=t + timedelta(minutes=40), scheduled_for=None,
                    lines=[]),
        DispatchOffered(offer_id="off_1", courier_id="c1", order_ids=("o1",), expires_at=t, payout=eur),
        CourierOfferResponse(courier_id="c1", offer_id="off_1", accepted=True, at=t),
        DispatchAssigned(offer_id="off_1", courier_id="c1", order_ids=("o1",), at=t),
    ):
        p.apply(payload.event_type, payload.to_data(), 0)
    p.position("c1", 52.5, 13.4, "online")
    assert p.couriers["c1"].state() == "busy"
    assert p.heat() == []  # no open order waits for a courier: it has one
    done = OrderDelivered(**order, status="delivered", courier_id="c1", at=t + timedelta(minutes=30), proof=None)
    p.apply(done.event_type, done.to_data(), 4)
    kpis = p.kpis(now=1767292200.0)
    assert kpis["click_to_door_min"] == 30.0 and kpis["on_time_pct"] == 100.0 and kpis["late_orders"] == 0
    assert kpis["offer_acceptance_pct"] == 100.0 and p.couriers["c1"].state() == "idle"
    detail = p.order_detail("o1")
    assert detail is not None and detail["timeline"][0]["event"] == "order.placed"
    assert p.courier_detail("c1")["delivered"] == 1  # type: ignore[index]


def test_the_demo_reaches_its_server_on_the_loopback_of_the_family_it_bound() -> None:
    from fooddispatch.demo.runner import local_host

    assert local_host("0.0.0.0") == local_host("") == "127.0.0.1"
    assert local_host("::") == "[::1]"  # an IPv6 wildcard socket takes no IPv4 connection
    assert local_host("fe80::1") == "[fe80::1]" and local_host("localhost") == "localhost"
