import math

import pytest

from geo.eta import HaversineTravelTime, MdrpTravelTime, PrepTimeEstimator, TravelTime, haversine_m


def test_mdrp_travel_rounds_up_to_whole_minutes():
    travel = MdrpTravelTime(320.0)
    assert travel.minutes((0, 0), (320, 0)) == 1
    assert travel.minutes((0, 0), (321, 0)) == 2
    assert travel.minutes((0, 0), (300, 400)) == 2  # 500 m
    assert travel.seconds((0, 0), (300, 400)) == 120
    assert travel.minutes((5, 5), (5, 5)) == 0


def test_mdrp_travel_can_break_the_triangle_inequality_as_the_rules_say():
    travel = MdrpTravelTime(100.0)
    a, b, c = (0, 0), (101, 0), (202, 0)
    assert travel.minutes(a, c) == 3
    assert travel.minutes(a, b) + travel.minutes(b, c) == 4  # never assume the shortcut is longer


def test_both_models_satisfy_the_protocol():
    assert isinstance(MdrpTravelTime(300.0), TravelTime)
    assert isinstance(HaversineTravelTime(), TravelTime)


def test_haversine_travel_scales_with_detour_and_vehicle_speed():
    one_degree_north = ((52.0, 13.0), (53.0, 13.0))
    meters = haversine_m(*one_degree_north)
    assert meters == pytest.approx(111_195, rel=1e-3)
    model = HaversineTravelTime(detour_factor=1.5, speed_mps={"bicycle": 5.0, "car": 10.0})
    assert model.seconds(*one_degree_north, vehicle="bicycle") == pytest.approx(meters * 1.5 / 5.0)
    assert model.seconds(*one_degree_north, vehicle="car") == pytest.approx(meters * 1.5 / 10.0)
    assert model.minutes(*one_degree_north, vehicle="car") == pytest.approx(meters * 1.5 / 10.0 / 60)
    # An unknown vehicle falls back to the default one instead of failing the round.
    assert model.seconds(*one_degree_north, vehicle="hovercraft") == model.seconds(*one_degree_north)


def test_haversine_rejects_a_detour_shorter_than_the_crow_flies():
    with pytest.raises(ValueError):
        HaversineTravelTime(detour_factor=0.9)


def test_prep_estimate_learns_a_stores_lateness_exponentially():
    estimator = PrepTimeEstimator(alpha=0.5)
    assert estimator.estimate_s("pizza", 600) == 600
    late = estimator.observed("pizza", 600, 900)  # 5 min late
    assert late.estimate_s("pizza", 600) == 900
    later = late.observed("pizza", 600, 600)  # on time: lateness halves
    assert later.estimate_s("pizza", 600) == 750
    assert later.estimate_s("sushi", 600) == 600  # other stores are untouched
    assert estimator.estimate_s("pizza", 600) == 600  # immutable: the old snapshot is unchanged


def test_prep_estimate_never_goes_below_the_floor():
    estimator = PrepTimeEstimator(alpha=1.0, min_prep_s=120).observed("fast", 600, 0)
    assert estimator.estimate_s("fast", 300) == 120
    assert math.isclose(estimator.lateness_s["fast"], -600)
