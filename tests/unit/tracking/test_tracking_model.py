"""The pure core of live tracking: validation rules, seq dedup, coalescing, cell moves
as computed for a flush, geofences, the tracking window and frame decoding."""

from __future__ import annotations

import math

import h3
import msgspec
import pytest

from geo.eta import haversine_m
from tracking.messages import BundleOrder, LatLng, Location, Point, Status, json_frame_decoder
from tracking.model import (
    REJECT_AHEAD,
    REJECT_BEHIND,
    REJECT_NOT_FINITE,
    REJECT_OUT_OF_RANGE,
    REJECT_TELEPORT,
    Coalescer,
    CourierTrack,
    Fix,
    Geofences,
    OrderView,
    Rules,
    TokenBucket,
    check_point,
    distance_sq_m2,
    next_status,
)

NOW = 1_800_000_000.0
RULES = Rules()
LAT, LNG = 52.52, 13.405


def p(seq: int, lat: float = LAT, lng: float = LNG, ts: float = NOW, accuracy: float | None = 5.0) -> Point:
    return Point(lat, lng, ts, seq, accuracy)


@pytest.mark.parametrize(("lat", "lng", "reason"), [
    (math.nan, LNG, REJECT_NOT_FINITE), (LAT, math.inf, REJECT_NOT_FINITE),
    (90.5, LNG, REJECT_OUT_OF_RANGE), (LAT, -180.01, REJECT_OUT_OF_RANGE),
    (math.inf, 500.0, REJECT_NOT_FINITE), (-math.inf, LNG, REJECT_NOT_FINITE),
])
def test_coordinates_must_be_finite_and_in_range(lat, lng, reason) -> None:
    assert check_point(p(1, lat, lng), None, NOW, "car", RULES).reason == reason


def test_device_time_may_be_30_s_ahead_and_10_min_behind() -> None:
    assert check_point(p(1, ts=NOW + 29), None, NOW, "car", RULES).reason is None
    assert check_point(p(1, ts=NOW + 31), None, NOW, "car", RULES).reason == REJECT_AHEAD
    assert check_point(p(1, ts=NOW - 599), None, NOW, "car", RULES).reason is None
    assert check_point(p(1, ts=NOW - 601), None, NOW, "car", RULES).reason == REJECT_BEHIND


def test_implied_speed_above_the_vehicle_limit_is_a_teleport() -> None:
    prev = Fix(LAT, LNG, NOW - 10)
    east_300m = LNG + 300 / (111_320 * math.cos(math.radians(LAT)))  # 30 m/s over 10 s
    assert check_point(p(2, lng=east_300m), prev, NOW, "bicycle", RULES).reason == REJECT_TELEPORT
    assert check_point(p(2, lng=east_300m), prev, NOW, "car", RULES).reason is None
    assert check_point(p(2, lng=east_300m), prev, NOW, None, RULES).reason is None  # unknown: car limit


@pytest.mark.parametrize(("a", "b"), [
    ((LAT, LNG), (LAT + 0.0003, LNG)), ((LAT, LNG), (LAT + 0.1, LNG + 0.2)), ((LAT, LNG), (LAT - 0.25, LNG - 0.25)),
    ((-33.87, 151.21), (-33.6, 151.0)), ((0.0, 0.0), (0.2, 0.2)), ((69.6, 18.9), (69.7, 19.3)),
])
def test_the_cheap_distance_is_within_a_tenth_of_a_percent_of_haversine_up_to_30_km(a, b) -> None:
    exact = haversine_m(a, b)
    assert math.sqrt(distance_sq_m2(*a, *b)) == pytest.approx(exact, rel=1e-3)


def test_a_jump_across_the_antimeridian_is_measured_the_short_way() -> None:
    assert math.sqrt(distance_sq_m2(0.0, 179.999, 0.0, -179.999)) == pytest.approx(
        haversine_m((0.0, 179.999), (0.0, -179.999)), rel=1e-3)
    assert math.sqrt(distance_sq_m2(0.0, 0.0, 0.0, 180.0)) > 20_000_000  # the other side of the earth


def test_accuracy_widens_the_jitter_allowance_but_not_when_it_is_not_finite() -> None:
    prev = Fix(LAT, LNG, NOW)
    north_150m = LAT + 150 / 111_195
    assert check_point(p(2, lat=north_150m, accuracy=200.0), prev, NOW, "walk", RULES).reason is None
    for accuracy in (math.inf, math.nan, None):
        assert check_point(p(2, lat=north_150m, accuracy=accuracy), prev, NOW, "walk", RULES).reason == \
            REJECT_TELEPORT


def test_gps_jitter_near_the_previous_fix_is_not_a_teleport() -> None:
    prev = Fix(LAT, LNG, NOW)
    assert check_point(p(2, lat=LAT + 0.0003), prev, NOW, "walk", RULES).reason is None  # ~33 m, same second


def test_poor_accuracy_is_kept_for_history_but_not_dispatch() -> None:
    check = check_point(p(1, accuracy=250.0), None, NOW, "car", RULES)
    assert check.reason is None and check.dispatchable is False
    assert check_point(p(1, accuracy=None), None, NOW, "car", RULES).dispatchable is True


def test_replayed_seqs_are_not_applied_twice() -> None:
    track = CourierTrack("cou_1")
    first = track.apply([p(1), p(2), p(3)], NOW, RULES)
    assert [a.point.seq for a in first.accepted] == [1, 2, 3]
    again = track.apply([p(2), p(3), p(4)], NOW, RULES)
    assert [a.point.seq for a in again.accepted] == [4]
    assert again.duplicates == 2 and again.max_seq == 4 and track.last_seq == 4


def test_a_teleport_is_dropped_and_does_not_move_the_fix() -> None:
    track = CourierTrack("cou_1", vehicle="bicycle")
    track.apply([p(1, ts=NOW - 5)], NOW, RULES)
    out = track.apply([p(2, lat=LAT + 1.0, ts=NOW)], NOW, RULES)
    assert out.rejected == [(2, REJECT_TELEPORT)] and out.accepted == []
    assert track.fix is not None and track.fix.lat == LAT
    assert track.last_seq == 2  # a rejected seq is done: a resend is a duplicate


def test_resume_keeps_applied_seqs_and_break_status() -> None:
    from geo.live import LiveState

    track = CourierTrack.resume("cou_1", LiveState(status="break", seen=NOW, seq=41, lat=LAT, lng=LNG, ts=NOW),
                                "car")
    assert track.last_seq == 41 and track.status == "break" and track.fix is not None
    assert CourierTrack.resume("cou_1", LiveState(status="stale", seen=NOW), None).status == "online"


def test_flush_update_carries_the_last_dispatchable_fix_and_its_cell() -> None:
    track = CourierTrack("cou_1")
    track.apply([p(1, ts=NOW - 200), p(2, lat=LAT + 0.01, ts=NOW - 100), p(3, lat=LAT + 0.02, ts=NOW,
                                                                            accuracy=500.0)], NOW, RULES)
    update = track.update()
    assert update.lat == LAT + 0.01 and update.available
    assert update.cell == h3.latlng_to_cell(LAT + 0.01, LNG, 9) == update.state.cell
    assert update.state.seq == 3
    track.status = "break"
    assert track.update().available is False


def test_crossing_a_cell_boundary_changes_the_cell_in_the_update() -> None:
    track = CourierTrack("cou_1")
    track.apply([p(1)], NOW, RULES)
    before = track.update().cell
    track.apply([p(2, lat=LAT + 0.005, ts=NOW + 60)], NOW + 60, RULES)  # ~550 m north: another res-9 cell
    after = track.update().cell
    assert before != after and h3.grid_distance(before, after) >= 1


def test_coalescer_keeps_one_entry_per_courier_with_the_highest_seq() -> None:
    c: Coalescer[str] = Coalescer()
    c.mark("a", "s1", 3)
    c.mark("a", "s1", 7)
    c.mark("a", "s1", 5)
    c.mark("b", "s2", 1)
    batch = c.take()
    assert batch == {"a": ("s1", 7), "b": ("s2", 1)} and len(c) == 0


def test_a_failed_flush_is_restored_under_newer_marks() -> None:
    c: Coalescer[str] = Coalescer()
    c.mark("a", "s1", 3)
    batch = c.take()
    c.mark("a", "s1", 9)
    c.restore(batch)
    assert c.take() == {"a": ("s1", 9)}
    c.mark("a", "s2", 1)  # a new connection's entry wins over the old session's batch
    c.restore({"a": ("s1", 4)})
    assert c.take() == {"a": ("s2", 1)}


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.5) is True and bucket.allow(0.5) is False


def test_geofence_needs_two_consecutive_points_and_fires_once() -> None:
    order = BundleOrder("ord_1", LatLng(LAT, LNG), LatLng(LAT + 0.01, LNG))
    fences = Geofences()
    fences.set_orders([order])
    assert fences.observe(LAT + 0.0002, LNG, RULES) == []  # ~22 m: inside, first
    assert fences.observe(LAT + 0.002, LNG, RULES) == []  # outside: count restarts
    assert fences.observe(LAT, LNG, RULES) == []
    arrivals = fences.observe(LAT, LNG, RULES)
    assert [(a.order_id, a.where) for a in arrivals] == [("ord_1", "pickup")]
    assert fences.observe(LAT, LNG, RULES) == []
    fences.set_orders([BundleOrder("ord_1", LatLng(LAT, LNG), LatLng(LAT + 0.01, LNG), picked_up=True)])
    fences.observe(LAT + 0.01, LNG, RULES)
    assert [a.where for a in fences.observe(LAT + 0.01, LNG, RULES)] == ["dropoff"]
    assert haversine_m((LAT, LNG), (LAT + 0.0002, LNG)) < RULES.geofence_radius_m


def test_an_order_that_arrives_after_the_courier_got_there_is_checked_against_the_last_fixes() -> None:
    fences = Geofences()
    fences.observe(LAT + 0.002, LNG, RULES)  # ~220 m away, then two fixes at the restaurant
    fences.observe(LAT + 0.0002, LNG, RULES)
    fences.observe(LAT, LNG, RULES)
    first = BundleOrder("ord_1", LatLng(LAT, LNG), LatLng(LAT + 0.01, LNG))
    assert [(a.order_id, a.where) for a in fences.set_orders([first], RULES)] == [("ord_1", "pickup")]
    assert fences.set_orders([first], RULES) == []  # not new: not reported again
    elsewhere = BundleOrder("ord_2", LatLng(LAT + 0.003, LNG), LatLng(LAT + 0.01, LNG))
    assert fences.set_orders([first, elsewhere], RULES) == []
    fences.observe(LAT + 0.0031, LNG, RULES)  # one fix at ord_2's pickup: not yet
    late = BundleOrder("ord_3", LatLng(LAT + 0.003, LNG), LatLng(LAT + 0.01, LNG))
    assert fences.set_orders([first, elsewhere, late], RULES) == []  # only one of the last two fixes inside
    assert [a.order_id for a in fences.observe(LAT + 0.003, LNG, RULES)] == ["ord_2", "ord_3"]


def test_order_status_never_goes_back_and_terminal_is_final() -> None:
    assert next_status("accepted", "ready") == "ready"
    assert next_status("picked_up", "ready") is None
    assert next_status("delivered", "cancelled") is None
    assert next_status(None, "accepted") == "accepted"


def test_order_view_passes_positions_only_from_the_current_courier_in_the_window() -> None:
    view = OrderView("ord_1", "accepted", None, 1)
    assert not view.allows_position_of("cou_1")  # before assignment
    assert view.apply_status("accepted", "cou_1", 2)
    assert view.allows_position_of("cou_1") and not view.allows_position_of("cou_2")
    assert view.apply_status("accepted", "cou_2", 3)  # reassigned
    assert not view.allows_position_of("cou_1")
    assert not view.apply_status("accepted", "cou_1", 2)  # late message: ignored
    assert view.apply_status("delivered", "cou_2", 4)
    assert not view.allows_position_of("cou_2")  # after delivery


def test_frames_decode_as_a_tagged_union() -> None:
    frame = json_frame_decoder.decode(b'{"type":"location","lat":1.0,"lng":2.0,"ts":3.0,"seq":4}')
    assert isinstance(frame, Location) and [pt.seq for pt in frame.all_points() or []] == [4]
    batch = json_frame_decoder.decode(
        b'{"type":"location","points":[{"lat":1,"lng":2,"ts":3,"seq":5},{"lat":1,"lng":2,"ts":4,"seq":6}]}'
    )
    assert [pt.seq for pt in batch.all_points() or []] == [5, 6]
    assert json_frame_decoder.decode(b'{"type":"location","lat":1.0}').all_points() is None
    assert isinstance(json_frame_decoder.decode(b'{"type":"status","status":"break"}'), Status)
    with pytest.raises(msgspec.ValidationError):
        json_frame_decoder.decode(b'{"type":"teleport"}')
    with pytest.raises(msgspec.ValidationError):
        json_frame_decoder.decode(b'{"type":"status","status":"asleep"}')
