"""Pure rules of the live dispatcher: judging answers, exclusion, the lease value and fencing
order, payouts, and the region-wide round over per-store candidates."""

from __future__ import annotations

import pytest

from dispatch.cost import DispatchConfig
from dispatch.model import Courier, OpenOrder
from dispatch.offers import (
    OfferStatus,
    OfferView,
    PayoutRule,
    Verdict,
    is_newer_fence,
    judge_response,
    lease_value,
    parse_lease,
    with_excluded,
)
from dispatch.planner import plan_round
from dispatch.surge import SurgeConfig
from dispatch.surge_live import samples_at
from geo.eta import HaversineTravelTime

PENDING = OfferView("ofr_1", "cou_a", OfferStatus.PENDING, expires_at=1030.0)


@pytest.mark.parametrize(("offer", "courier", "accepted", "at", "verdict"), [
    (PENDING, "cou_a", True, 1010.0, Verdict.ACCEPT),
    (PENDING, "cou_a", False, 1010.0, Verdict.DECLINE),
    (PENDING, "cou_a", True, 1030.0, Verdict.ACCEPT),  # on the deadline still counts
    (PENDING, "cou_a", True, 1030.5, Verdict.EXPIRED),
    (PENDING, "cou_b", True, 1010.0, Verdict.NOT_YOURS),
    (None, "cou_a", True, 1010.0, Verdict.UNKNOWN),
    (OfferView("ofr_1", "cou_a", OfferStatus.EXPIRED, 1030.0), "cou_a", True, 1010.0, Verdict.EXPIRED),
    (OfferView("ofr_1", "cou_a", OfferStatus.ACCEPTED, 1030.0), "cou_a", False, 1010.0, Verdict.EXPIRED),
    (OfferView("ofr_1", "cou_a", OfferStatus.CANCELLED, 1030.0), "cou_a", True, 1010.0, Verdict.EXPIRED),
])
def test_only_the_offers_courier_answering_a_pending_offer_in_time_changes_it(offer, courier, accepted, at,
                                                                                verdict):
    assert judge_response(offer, courier, accepted, at) is verdict


def test_wrong_courier_is_reported_before_expiry_so_a_stranger_learns_nothing_about_the_offer():
    lapsed = OfferView("ofr_1", "cou_a", OfferStatus.EXPIRED, 1000.0)
    assert judge_response(lapsed, "cou_b", True, 2000.0) is Verdict.NOT_YOURS


def test_a_declining_courier_is_excluded_once_and_earlier_exclusions_stay():
    assert with_excluded([], "cou_a") == ["cou_a"]
    assert with_excluded(["cou_a", "cou_b"], "cou_a") == ["cou_a", "cou_b"]
    assert with_excluded(["cou_b"], "cou_a") == ["cou_b", "cou_a"]


def test_lease_value_round_trips_and_rejects_garbage():
    assert parse_lease(lease_value(42, "host-1:99")) == (42, "host-1:99")
    assert parse_lease(b"7:proc") == (7, "proc")
    assert parse_lease(None) is None
    assert parse_lease("proc-without-token") is None
    assert parse_lease("x:proc") is None


def test_a_write_under_an_older_token_than_the_last_written_is_refused():
    assert is_newer_fence(5, None)
    assert is_newer_fence(5, 5)  # the same holder writing again
    assert is_newer_fence(6, 5)
    assert not is_newer_fence(4, 5)


def order(oid: str, store: str, pickup: tuple[float, float], now: float = 1000.0,
          excluded: frozenset[str] = frozenset()) -> OpenOrder:
    return OpenOrder(oid, store, pickup, (pickup[0] + 0.01, pickup[1]), now - 600, now, now + 1800, excluded)


def test_a_courier_near_two_stores_is_given_to_only_one_of_them():
    now = 1000.0
    orders = [order("o1", "s1", (52.52, 13.40)), order("o2", "s2", (52.521, 13.40))]
    couriers = {"c1": Courier("c1", (52.5205, 13.40), now)}
    plan = plan_round(orders, {"s1": ["c1"], "s2": ["c1"]}, couriers, HaversineTravelTime(), now,
                      DispatchConfig(step_s=5.0))
    assert [a.courier_id for a in plan.assignments] == ["c1"]
    assert len(plan.held) == 1


def test_an_excluded_courier_is_never_offered_the_order_again():
    now = 1000.0
    orders = [order("o1", "s1", (52.52, 13.40), excluded=frozenset({"c_near"}))]
    couriers = {"c_near": Courier("c_near", (52.52, 13.40), now), "c_far": Courier("c_far", (52.53, 13.41), now)}
    plan = plan_round(orders, {"s1": ["c_near", "c_far"]}, couriers, HaversineTravelTime(), now,
                      DispatchConfig(step_s=5.0))
    assert [a.courier_id for a in plan.assignments] == ["c_far"]


def test_one_region_wide_matching_gives_a_shared_courier_to_the_store_only_it_can_serve():
    # s1 is the most urgent store and c1 its nearest courier, but c1 is also the only candidate of
    # s2. Store by store, s1 would take c1 and s2 would wait; one matching for the whole region
    # sends c2 to s1 and c1 to s2.
    now = 1000.0
    orders = [order("o1", "s1", (52.52, 13.40)), order("o2", "s2", (52.53, 13.40))]
    orders[0] = OpenOrder("o1", "s1", (52.52, 13.40), (52.53, 13.40), now - 900, now, now + 1200)
    couriers = {"c1": Courier("c1", (52.524, 13.40), now), "c2": Courier("c2", (52.515, 13.40), now)}
    plan = plan_round(orders, {"s1": ["c1", "c2"], "s2": ["c1"]}, couriers, HaversineTravelTime(), now,
                      DispatchConfig(step_s=5.0))
    assert sorted((a.bundle.store_id, a.courier_id) for a in plan.assignments) == [("s1", "c2"), ("s2", "c1")]


def test_a_store_without_candidates_holds_its_orders():
    now = 1000.0
    orders = [order("o1", "s1", (52.52, 13.40)), order("o2", "s2", (52.60, 13.40))]
    couriers = {"c1": Courier("c1", (52.52, 13.40), now)}
    plan = plan_round(orders, {"s1": ["c1"], "s2": ["c_gone"]}, couriers, HaversineTravelTime(), now,
                      DispatchConfig(step_s=5.0))
    assert [a.bundle.order_ids for a in plan.assignments] == [("o1",)]
    assert plan.held == ["o2"]


def test_payout_pays_per_order_and_per_km_with_a_floor():
    now = 1000.0
    plan = plan_round([order("o1", "s1", (52.52, 13.40))], {"s1": ["c1"]},
                      {"c1": Courier("c1", (52.52, 13.40), now)}, HaversineTravelTime(), now,
                      DispatchConfig(step_s=5.0))
    route = plan.assignments[0].route
    assert PayoutRule(per_order=250, per_km=60, minimum=0).payout(route) == 250 + round(60 * 1.112)
    assert PayoutRule(per_order=0, per_km=0, minimum=350).payout(route) == 350


def test_surge_samples_sum_fine_courier_cells_into_their_res7_parent():
    import h3

    parent = h3.latlng_to_cell(52.52, 13.40, 7)
    fine = sorted(h3.cell_to_children(parent, 9))[:2]
    elsewhere = h3.latlng_to_cell(48.85, 2.35, 9)
    samples = samples_at([(52.52, 13.40)] * 3, {fine[0]: 2, fine[1]: 1, elsewhere: 4}, 10.0, SurgeConfig())
    by_cell = {s.cell: (s.open_orders, s.available_couriers) for s in samples}
    assert by_cell[parent] == (3, 3)
    assert by_cell[h3.cell_to_parent(elsewhere, 7)] == (0, 4)
