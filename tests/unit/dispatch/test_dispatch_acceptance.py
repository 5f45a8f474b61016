"""Deciding with what the world taught: who accepts offers (dispatch/acceptance.py, priced in the one
cost function), when food is really ready (dispatch/readiness.py), and how long legs really take
(geo/speeds.py learning from whole legs)."""

from __future__ import annotations

from dataclasses import replace

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
    ready = ReadyTimes(ReadyLearning(quantile=q, store_weight=20.0))
    assert ready.planned_prep_s("r1", 600.0) == 600.0  # nothing seen: the stated prep time
    late_by = [60.0 * k for k in range(1, 11)]  # one to ten minutes late, at one store after another
    for i, late in enumerate(late_by):
        ready.observe(f"r{i}", 600.0, 600.0 + late)
    # An unseen store: the stated time, moved to the 20th percentile of the pool (stated + 2.8 min).
    assert ready.planned_prep_s("new", 600.0) == pytest.approx(600.0 + 60.0 * 2.8)
    # r9 was ten minutes late once, 4.5 beyond the pool's mean: one order moves it by 1/21 of that.
    assert ready.planned_prep_s("r9", 600.0) == pytest.approx(600.0 + 60.0 * 2.8 + 60.0 * 4.5 / 21)


def test_a_store_that_is_always_late_is_planned_late_and_one_unlucky_order_barely_moves_a_punctual_one() -> None:
    ready = ReadyTimes(ReadyLearning(quantile=0.2, store_weight=20.0))
    noise = [0.0, 60.0, 120.0, 180.0, 240.0]  # every kitchen: 0-4 min late, order by order
    for k in range(200):
        ready.observe(f"s{k % 40}", 600.0, 600.0 + noise[k % 5])
    base = ready.planned_prep_s("s0", 600.0)
    for _ in range(60):
        ready.observe("slow", 600.0, 600.0 + 600.0)  # ten minutes late, every order
    ready.observe("s1", 600.0, 600.0 + 900.0)  # one order a quarter of an hour late
    slow, s1 = ready.planned_prep_s("slow", 600.0), ready.planned_prep_s("s1", 600.0)
    unseen = ready.planned_prep_s("new", 600.0)
    pool_mean = (200 * 120.0 + 60 * 600.0 + 900.0) / 261  # slow's orders are in the pool too
    # Slow's steady lateness beyond the pool, shrunk by 20 pseudo-orders against its 60: over 4 min later ...
    assert slow == pytest.approx(unseen + 60 * (600.0 - pool_mean) / 80)
    assert slow - unseen > 240.0
    # ... while s1's one bad order among five (0-4 min late) moves its plan by well under a minute.
    assert abs(s1 - unseen) < 60.0
    assert base >= 600.0
    with pytest.raises(ValueError):
        ReadyLearning(quantile=1.0)


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
