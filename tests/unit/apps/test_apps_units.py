"""The pure parts of the apps: tracking-link tokens, the OsmAnd protocol, the customer's ETA and what a
link's holder may see of the order feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from fooddispatch.apps.view import estimate_eta, tracking_view
from orders.errors import TrackingLinkGone, TrackingLinkInvalid
from orders.messages import OrderOut
from orders.tracking_link import LinkClaims, LinkSigner
from tracking.messages import CourierCard, CourierPosition, OrderStatus, encoder
from tracking.osmand import KNOT_MPS, InvalidFix, parse_json, parse_params, parse_timestamp
from tracking.public_view import redact

SECRET = "s" * 40
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


# ---- tracking links -----------------------------------------------------------------------------------

def test_a_signed_link_reads_back_until_it_expires() -> None:
    signer = LinkSigner(SECRET)
    token = signer.sign(LinkClaims(o="ord_1", l="tl_a", i=1_000, e=2_000))
    assert signer.read(token, 1_999).order_id == "ord_1"
    with pytest.raises(TrackingLinkGone):
        signer.read(token, 2_000)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
    lambda t: t.split(".")[0] + "x." + t.split(".")[1],  # claims changed
    lambda t: t.replace(".", ""),
    lambda t: "",
    lambda t: t + "." + t,
])
def test_a_changed_or_foreign_token_is_not_a_link(mangle) -> None:
    token = LinkSigner(SECRET).sign(LinkClaims(o="ord_1", l="tl_a", i=1_000, e=2_000))
    with pytest.raises(TrackingLinkInvalid):
        LinkSigner(SECRET).read(mangle(token), 1_500)


def test_a_link_signed_with_another_secret_is_not_ours() -> None:
    token = LinkSigner("t" * 40).sign(LinkClaims(o="ord_1", l="tl_a", i=1_000, e=2_000))
    with pytest.raises(TrackingLinkInvalid):
        LinkSigner(SECRET).read(token, 1_500)


# ---- the OsmAnd protocol ------------------------------------------------------------------------------

def test_query_parameters_become_a_fix_in_our_units() -> None:
    fix = parse_params({"id": "fdd_k", "lat": "52.5", "lon": "13.4", "timestamp": "1700000000", "speed": "10",
                        "bearing": "270", "accuracy": "5", "altitude": "40", "batt": "77"})
    assert (fix.device_key, fix.lat, fix.lng, fix.ts) == ("fdd_k", 52.5, 13.4, 1_700_000_000)
    assert fix.speed == pytest.approx(5.14444, abs=1e-4) and fix.heading == 270 and fix.battery == 77
    assert parse_params({"id": "k", "location": "52.5,13.4"})[1:3] == (52.5, 13.4)
    assert parse_params({"id": "k", "lat": "1", "lon": "2"}).ts is None  # no time: the arrival time is used


@pytest.mark.parametrize(("raw", "expected"), [
    ("1700000000", 1_700_000_000), ("1700000000123", 1_700_000_000.123), (1_700_000_000, 1_700_000_000),
    ("2023-11-14T22:13:20Z", 1_700_000_000), ("2023-11-14 22:13:20", 1_700_000_000),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000),
])
def test_timestamps_in_every_form_tracker_apps_send(raw, expected) -> None:
    assert parse_timestamp(raw) == pytest.approx(expected)


@pytest.mark.parametrize("params", [{"id": "k", "lat": "x", "lon": "1"}, {"id": "k", "lat": "1"},
                                    {"id": "k", "lat": "nan", "lon": "1"}, {"id": "k", "lat": "1", "lon": "2",
                                                                            "timestamp": "yesterday"}])
def test_a_malformed_fix_is_a_validation_error(params) -> None:
    with pytest.raises(InvalidFix):
        parse_params(params)


def test_the_json_body_of_newer_traccar_clients() -> None:
    body = {"device_id": "fdd_k", "location": {"timestamp": "2023-11-14T22:13:20.000Z", "coords": {
        "latitude": 52.5, "longitude": 13.4, "speed": 3.0, "heading": 90, "accuracy": 4, "altitude": 30},
        "battery": {"level": 0.55, "is_charging": False}, "is_moving": True}}
    [fix] = parse_json(json.dumps(body).encode())
    assert (fix.device_key, fix.lat, fix.lng, fix.ts, fix.speed) == ("fdd_k", 52.5, 13.4, 1_700_000_000, 3.0)
    assert fix.battery == pytest.approx(55)
    body["location"] = [body["location"], body["location"]]
    assert len(parse_json(json.dumps(body).encode())) == 2
    with pytest.raises(InvalidFix):
        parse_json(b'{"device_id": "k", "location": {"coords": {"latitude": 1}}}')
    with pytest.raises(InvalidFix):
        parse_json(b"not json")
    assert KNOT_MPS == pytest.approx(0.514444, abs=1e-6)


# ---- the customer's view ------------------------------------------------------------------------------

def _order(status: str, **kw) -> OrderOut:
    money = {"amount": 0, "currency": "EUR"}
    base = {
        "id": "ord_1", "status": status, "customer_id": "cus_1", "store_id": "sto_1", "tenant_id": "ten_1",
        "region": "demo", "currency": "EUR", "lines": [], "subtotal": money, "fees": [], "total": money,
        "refunded": money, "captured": money, "cancel_fee": money, "pickup": {"lat": 52.52, "lng": 13.405},
        "dropoff": {"lat": 52.53, "lng": 13.41}, "address": "Torstr. 1", "placed_at": NOW, "accept_by": NOW,
        "accepted_at": None, "prep_time_s": 600, "ready_at": NOW + timedelta(minutes=10), "picked_up_at": None,
        "delivered_at": None, "promised_window": {"start": NOW, "end": NOW + timedelta(minutes=40)},
        "eta": NOW + timedelta(minutes=40), "courier_id": "cou_1", "end_reason": None,
        "cancel": {"allowed": True, "fee": money, "fee_from": None}, "tip_changeable_until": None, "rating": None,
        "history": [], "allowed_actions": [], "delivery_note": None,
    }
    return msgspec.convert({**base, **kw}, OrderOut)


def _position(eta_s: int, to: str) -> CourierPosition:
    return CourierPosition("ord_1", "cou_1", 52.525, 13.407, NOW, None, None, eta_s, to,  # type: ignore[arg-type]
                           CourierCard("Grace", "bicycle"))


def test_the_eta_follows_the_courier_once_there_is_one() -> None:
    assert estimate_eta(_order("accepted"), None) == (NOW + timedelta(minutes=40), "promised")
    late_kitchen = _order("accepted", ready_at=NOW + timedelta(minutes=45))
    eta, source = estimate_eta(late_kitchen, None)
    assert source == "kitchen" and eta > NOW + timedelta(minutes=45)
    assert estimate_eta(_order("picked_up"), _position(300, "dropoff")) == (NOW + timedelta(seconds=300), "courier")
    to_pickup, _ = estimate_eta(_order("ready", ready_at=NOW), _position(120, "pickup"))
    assert to_pickup > NOW + timedelta(seconds=120)  # then the ride to the door
    done = NOW + timedelta(minutes=30)
    assert estimate_eta(_order("delivered", delivered_at=done), None) == (done, "delivered")
    assert estimate_eta(_order("cancelled"), None) == (None, None)


def test_a_finished_order_shows_no_courier_whatever_it_is_given() -> None:
    assert tracking_view(_order("delivered", delivered_at=NOW), "R", _position(1, "dropoff"), "Grace").courier is None
    shown = tracking_view(_order("picked_up"), "R", _position(60, "dropoff"), None).courier
    assert shown is not None and shown.first_name == "Grace" and shown.vehicle == "bicycle"


def test_a_link_watcher_never_sees_account_ids() -> None:
    status = json.loads(redact(encoder.encode(OrderStatus("ord_1", NOW, "accepted", 3, "cou_1", "dispatch.assigned"))))
    assert status == {"type": "status", "order_id": "ord_1", "at": NOW.isoformat().replace("+00:00", "Z"),
                      "status": "accepted", "version": 3, "event": "dispatch.assigned"}
    position = json.loads(redact(encoder.encode(_position(60, "dropoff"))))
    assert "courier_id" not in json.dumps(position) and position["courier"] == {"first_name": "Grace",
                                                                                 "vehicle": "bicycle"}
