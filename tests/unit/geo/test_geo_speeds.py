"""The learned travel-time model: it learns a cell's real speed from hops, converges, stays near
the nominal model on little evidence, and ignores what is not travel."""

from __future__ import annotations

import math

import h3
import pytest

from geo.eta import HaversineTravelTime, haversine_m
from geo.speeds import (
    ALL_DAY,
    Fix,
    Hop,
    HopTracker,
    LearnedTravelTime,
    SpeedLearning,
    SpeedTable,
    hop_between,
)

NOMINAL = HaversineTravelTime()  # car: 7 m/s
LEARNING = SpeedLearning()
ORIGIN = (52.5200, 13.4050)
NOON = 1_764_072_000.0  # 2025-11-25 12:00 UTC
CELL = h3.latlng_to_cell(*ORIGIN, LEARNING.resolution)


def north(meters: float, start: tuple[float, float] = ORIGIN) -> tuple[float, float]:
    return start[0] + meters / 111_195.0, start[1]


def hop(observed_s: float, nominal_s: float, at: float = NOON, cell: str = CELL) -> Hop:
    return Hop(cell, LEARNING.hour_of(at), observed_s, nominal_s, at)


def test_a_hop_at_half_the_nominal_speed_takes_twice_the_nominal_time():
    a, b = ORIGIN, north(210.0)
    got = hop_between(Fix(*a, NOON), Fix(*b, NOON + 60.0), NOMINAL, LEARNING)
    assert got is not None
    assert got.cell == h3.latlng_to_cell((a[0] + b[0]) / 2, a[1], LEARNING.resolution)
    assert got.hour == 12 and got.observed_s == 60.0
    assert got.nominal_s == pytest.approx(haversine_m(a, b) / 7.0)


@pytest.mark.parametrize(("meters", "dt", "why"), [
    (200.0, 0.0, "zero dt"),
    (200.0, -5.0, "clock went backwards"),
    (200.0, 1.0, "closer than min_dt: one measurement twice"),
    (2_000.0, 600.0, "a gap too long to be one straight hop"),
    (5_000.0, 30.0, "167 m/s: a GPS teleport"),
    (10.0, 30.0, "GPS jitter around a parked courier"),
    (30.0, 60.0, "0.5 m/s in a car: waiting, not travelling"),
])
def test_what_is_not_travel_makes_no_hop(meters, dt, why):
    assert hop_between(Fix(*ORIGIN, NOON), Fix(*north(meters), NOON + dt), NOMINAL, LEARNING) is None, why


def test_the_vehicle_sets_what_nominal_and_teleport_mean():
    # 15 m/s: fine for a car (7 m/s nominal), a teleport for someone walking (1.4 m/s).
    before, after = Fix(*ORIGIN, NOON, "car"), Fix(*north(450.0), NOON + 30.0, "car")
    assert hop_between(before, after, NOMINAL, LEARNING) is not None
    walking = Fix(*north(450.0), NOON + 30.0, "walk")
    assert hop_between(before, walking, NOMINAL, LEARNING) is None


def test_nothing_learned_means_the_nominal_model():
    assert SpeedTable().factor(CELL, 12, NOON) == 1.0
    model = LearnedTravelTime(NOMINAL, SpeedTable().factors_at(NOON))
    b = north(1000.0)
    assert model.seconds(ORIGIN, b) == NOMINAL.seconds(ORIGIN, b)


def test_it_learns_a_slow_cell_and_converges_to_its_real_ratio():
    table = SpeedTable()
    factors = []
    for i in range(2000):  # couriers take 1.8x the nominal time here, give or take
        table, _ = table.observed([hop(18.0 * (1.1 if i % 2 else 0.9), 10.0, NOON + i)])
        factors.append(table.factor(CELL, 12, NOON + i))
    assert factors[0] < 1.1  # one hop is not evidence
    assert factors[30] > 1.3
    assert all(abs(f - 1.8) < 0.1 for f in factors[500:])  # and stays there despite the noise
    assert factors[-1] == pytest.approx(1.8, abs=0.05)


def test_few_samples_shrink_towards_one_and_the_cells_all_day_factor():
    one_red_light, _ = SpeedTable().observed([hop(60.0, 10.0)])  # 6x slower, once
    assert 1.0 < one_red_light.factor(CELL, 12, NOON) < 1.25
    # Lots learned at noon: the evening, never seen, starts from the cell's all-day factor.
    table, _ = SpeedTable().observed([hop(20.0, 10.0, NOON + i) for i in range(300)])
    noon, evening = table.factor(CELL, 12, NOON + 300), table.factor(CELL, 19, NOON + 300)
    assert noon == pytest.approx(2.0, abs=0.05)
    assert 1.0 < evening <= noon
    assert evening == pytest.approx(table.cells[(CELL, ALL_DAY)].factor(1.0, LEARNING.prior_s))
    assert table.factor(h3.latlng_to_cell(48.85, 2.35, LEARNING.resolution), 12, NOON) == 1.0  # elsewhere


def test_old_evidence_fades_so_a_changed_street_is_relearned():
    slow, _ = SpeedTable().observed([hop(30.0, 10.0, NOON + i) for i in range(300)])
    assert slow.factor(CELL, 12, NOON + 300) > 2.8
    later = NOON + 8 * LEARNING.half_life_s  # the road works ended long ago
    fast, _ = slow.observed([hop(10.0, 10.0, later + i) for i in range(100)])
    assert fast.factor(CELL, 12, later + 100) == pytest.approx(1.0, abs=0.05)


def test_the_factor_is_clamped_to_a_sane_range():
    crawl, _ = SpeedTable().observed([hop(500.0, 10.0, NOON + i) for i in range(100)])
    assert crawl.factor(CELL, 12, NOON + 100) == LEARNING.max_factor
    rocket, _ = SpeedTable().observed([hop(1.0, 10.0, NOON + i) for i in range(100)])
    assert rocket.factor(CELL, 12, NOON + 100) == LEARNING.min_factor


def test_observing_reports_the_rows_that_changed_and_leaves_the_old_table_alone():
    before = SpeedTable()
    after, changed = before.observed([hop(20.0, 10.0)])
    assert changed == {(CELL, 12), (CELL, ALL_DAY)}
    assert before.cells == {} and after.cells[(CELL, 12)].samples == 1


def test_the_tracker_learns_hops_and_ignores_repeated_older_and_non_finite_fixes():
    tracker = HopTracker(NOMINAL, LEARNING)
    assert tracker.observe("c1", Fix(*ORIGIN, NOON)) is None  # first fix: nothing to compare with
    assert tracker.observe("c1", Fix(*ORIGIN, NOON)) is None  # the same fix read again (zero dt)
    assert tracker.observe("c1", Fix(*north(100.0), NOON - 10)) is None  # older than the last
    assert tracker.observe("c1", Fix(math.nan, ORIGIN[1], NOON + 20)) is None
    got = tracker.observe("c1", Fix(*north(140.0), NOON + 20))
    assert got is not None and got.observed_s == 20.0
    # A teleport makes no hop, but learning goes on from where the courier now is.
    assert tracker.observe("c1", Fix(*north(9000.0), NOON + 30)) is None
    assert tracker.observe("c1", Fix(*north(9140.0), NOON + 50)) is not None
    tracker.keep_only(["c2"])
    assert tracker.last == {}


def test_a_leg_pays_the_mean_factor_of_its_two_ends_and_the_vectorised_form_agrees():
    other = h3.latlng_to_cell(*north(20_000.0), LEARNING.resolution)
    model = LearnedTravelTime(NOMINAL, {CELL: 2.0, other: 1.0})
    a, b, far = ORIGIN, north(300.0), north(20_000.0)
    assert model.seconds(a, b) == pytest.approx(NOMINAL.seconds(a, b) * 2.0)
    assert model.seconds(a, far) == pytest.approx(NOMINAL.seconds(a, far) * 1.5)
    assert model.minutes(a, far) == pytest.approx(model.seconds(a, far) / 60)
    arrays = model.seconds_array([a, a], [b, far], ["car", "bicycle"])
    assert arrays.tolist() == pytest.approx([model.seconds(a, b), model.seconds(a, far, "bicycle")])


def test_hours_are_the_regions_local_hours():
    berlin = SpeedLearning(timezone="Europe/Berlin")
    assert LEARNING.hour_of(NOON) == 12
    assert berlin.hour_of(NOON) == 13  # CET in November
    with pytest.raises(ValueError):
        SpeedLearning(min_speed_ratio=1.5)
