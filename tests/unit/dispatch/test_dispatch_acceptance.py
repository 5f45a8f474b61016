"""Deciding with what the world taught: who accepts offers (dispatch/acceptance.py, priced in the one
cost function), when food is really ready (dispatch/readiness.py), and how long legs really take
(geo/speeds.py learning from whole legs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from dispatch_factories import TRAVEL, courier, order

from dispatch.acceptance import AcceptanceBook, AcceptanceLearning, offer_band
from dispatch.core import decide
from dispatch.cost import OFFER_BANDS_S, DispatchConfig, route_driving_s
from dispatch.readiness import ReadyLearning, ReadyTimes, ready_quantile
from geo.eta import MdrpTravelTime
from geo.speeds import LearnedTravelTime, SpeedTable, leg_hops

CONFIG = DispatchConfig()


def test_an_unknown_courier_gets_the_fleets_rate_and_its_own_answers_pull_it_away() -> None:
    book = AcceptanceBook(AcceptanceLearning(prior_offers=10, courier_weight=4, band_weight=4))
    assert book.acceptance("c1") == ()  # nobody ever declined: no risk priced at all
    for i in range(20):
        book.observe(f"steady{i}", 600.0, accepted=True)
    book.observe("c1", 600.0, accepted=False)
    fleet = (20 + 10) / (21 + 10)
    assert book.fleet_rate() == pytest.approx(fleet)
    assert book.acceptance("newcomer") == pytest.approx((fleet,) * 3)
    one_decline = book.acceptance("c1")
    assert one_decline[0] < fleet and one_decline[0] > 0.5  # one early decline does not brand a courier
    for _ in range(9):
        book.observe("c1", 600.0, accepted=False)
    assert book.acceptance("c1")[0] < 0.2  # ten in a row does


def test_a_courier_who_takes_short_trips_but_not_long_ones_shows_in_its_bands() -> None:
    book = AcceptanceBook()
    short, long = OFFER_BANDS_S[0] / 2, OFFER_BANDS_S[-1] * 2
    for _ in range(12):
        book.observe("picky", short, accepted=True)
        book.observe("picky", long, accepted=False)
    bands = book.acceptance("picky")
    assert offer_band(short) == 0 and offer_band(long) == len(OFFER_BANDS_S)
    assert bands[0] > 0.8 and bands[-1] < 0.3
    assert bands[0] > bands[1] > bands[-1]  # the medium band, never seen, sits at the courier's own rate
    with pytest.raises(ValueError):
        AcceptanceBook.from_counts([("c1", 0, 3, 4)])


def test_an_order_is_not_offered_to_a_likely_decliner_when_a_near_equal_courier_exists() -> None:
    o = order("o1", ready=0.0)
    shaky = replace(courier("shaky", (0.0, 0.0)), acceptance=(0.3,))
    steady = courier("steady", (600.0, 0.0))  # one minute further from the counter
    # Shaky's offer lapses seven times in ten, and its order then waits a round (60 s) for the next
    # offer: 2.0 x 0.7 x 60 = 84 against steady's extra minute of food waiting and driving (60 + 15).
    decision = decide([o], [shaky, steady], TRAVEL, 0.0, CONFIG)
    assert [a.courier_id for a in decision.assignments] == ["steady"]
    # The perfect fleet: the nearer courier, as before.
    decision = decide([o], [replace(shaky, acceptance=()), steady], TRAVEL, 0.0, CONFIG)
    assert [a.courier_id for a in decision.assignments] == ["shaky"]
    # Not near-equal: the likely decliner is still far better than a courier 20 minutes out.
    far = courier("far", (12000.0, 0.0))
    decision = decide([order("o2", ready=25.0)], [shaky, far], TRAVEL, 0.0, CONFIG)
    assert [a.courier_id for a in decision.assignments] in (["shaky"], [])  # held or the near one, never far


def test_a_courier_who_declines_often_stops_getting_offers_when_a_near_equal_one_exists() -> None:
    book = AcceptanceBook()
    for _ in range(30):
        book.observe("steady", 600.0, accepted=True)
    o = order("o1", ready=0.0)
    couriers = [courier("shaky", (0.0, 0.0)), courier("steady", (600.0, 0.0))]
    offered: list[str] = []
    for round_no in range(6):
        priced = [replace(c, acceptance=book.acceptance(c.courier_id)) for c in couriers]
        chosen = decide([replace(o, order_id=f"o{round_no}")], priced, TRAVEL, 0.0, CONFIG).assignments[0]
        offered.append(chosen.courier_id)
        book.observe(chosen.courier_id, route_driving_s(chosen.route), accepted=chosen.courier_id != "shaky")
    assert offered[0] == "shaky"  # nearest, and nothing known against it yet
    assert offered[-3:] == ["steady"] * 3  # after its declines the near-equal courier gets the offers


def test_after_a_decline_the_order_goes_to_someone_else_not_the_same_courier() -> None:
    o = replace(order("o1", ready=0.0), excluded_couriers=frozenset({"near"}))
    decision = decide([o], [courier("near", (0.0, 0.0)), courier("next", (1200.0, 0.0))], TRAVEL, 0.0, CONFIG)
    assert [a.courier_id for a in decision.assignments] == ["next"]


def test_the_planned_ready_time_aims_at_the_cost_weights_quantile_of_what_kitchens_did() -> None:
    q = ready_quantile(CONFIG.weights)
    assert q == pytest.approx(0.25 / 1.25)  # a courier's wait costs a quarter of the food's
    ready = ReadyTimes(ReadyLearning(alpha=0.2, quantile=q))
    assert ready.planned_prep_s("r1", 600.0) == 600.0  # nothing seen: the stated prep time
    late_by = [60.0 * k for k in range(1, 11)]  # one to ten minutes late, at one store after another
    for i, late in enumerate(late_by):
        ready.observe(f"r{i}", 600.0, 600.0 + late)
    # An unseen store: the stated time, moved to the 20th percentile of the misses (stated + 2.8 min).
    assert ready.planned_prep_s("new", 600.0) == pytest.approx(600.0 + 60.0 * 2.8)
    # One store, late by 1 to 10 minutes in turn: the plan sits below the learned expectation (food
    # later than planned costs a courier's wait, earlier costs the food's), above the stated time.
    one = ReadyTimes(ReadyLearning(alpha=0.2, quantile=q))
    for late in late_by * 3:
        one.observe("r1", 600.0, 600.0 + late)
    assert 600.0 < one.planned_prep_s("r1", 600.0) < one.expected_prep_s("r1", 600.0)
    assert one.planned_prep_s("r1", 600.0) == pytest.approx(
        one.expected_prep_s("r1", 600.0) + float(np.quantile(list(one.misses), q)))


def test_legs_slower_than_the_rule_teach_their_cells_a_factor() -> None:
    base = MdrpTravelTime(600.0)
    table = SpeedTable()
    hops = [hop for i in range(12) for hop in leg_hops("cellA", "cellB", 12, 1.5 * 600.0, 600.0, 43_200.0 + i)]
    table = table.observed(hops)[0]
    cells = {(0.0, 0.0): "cellA", (6000.0, 0.0): "cellB", (0.0, 6000.0): "cellC"}
    learned = LearnedTravelTime(base, table.factors_at(43_200.0), cell_of=cells.__getitem__)
    slowed = learned.seconds((0.0, 0.0), (6000.0, 0.0))
    assert 1.3 * 600.0 < slowed < 1.5 * 600.0  # close to the observed 1.5, shrunk a little towards 1
    unseen_to_a = learned.seconds((0.0, 6000.0), (0.0, 0.0))
    assert unseen_to_a == pytest.approx(600.0 * (1.0 + learned.factor_at((0.0, 0.0))) / 2)
