from dataclasses import replace

from dispatch_factories import MIN, TRAVEL, courier, order

from dispatch.core import decide
from dispatch.cost import DispatchConfig

CONFIG = DispatchConfig()


def two_orders_one_near_courier():
    orders = [order("a", to=(1200, 0), ready=10), order("b", to=(1800, 0), ready=10)]
    couriers = [courier("near", (0, 0)), courier("far", (18000, 0))]  # far: 30 minutes away
    return orders, couriers


def test_a_far_second_courier_loses_to_one_courier_carrying_both():
    orders, couriers = two_orders_one_near_courier()
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert [(x.courier_id, set(x.bundle.order_ids)) for x in decision.assignments] == [("near", {"a", "b"})]


def test_without_the_merge_step_each_order_takes_its_own_courier():
    orders, couriers = two_orders_one_near_courier()
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, replace(CONFIG, merge_after_matching=False))
    assert sorted(len(x.bundle.order_ids) for x in decision.assignments) == [1, 1]


def test_with_two_near_couriers_nobody_waits_for_a_second_drop_off():
    orders, _ = two_orders_one_near_courier()
    couriers = [courier("near", (0, 0)), courier("also_near", (600, 0))]
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert sorted(len(x.bundle.order_ids) for x in decision.assignments) == [1, 1]


def test_orders_of_different_restaurants_are_never_merged():
    orders = [order("a", to=(1200, 0), ready=10),
              order("b", store="r2", store_at=(60, 0), to=(1800, 0), ready=10)]
    couriers = [courier("near", (0, 0)), courier("far", (18000, 0))]
    decision = decide(orders, couriers, TRAVEL, 8 * MIN, CONFIG)
    assert all(len(x.bundle.order_ids) == 1 for x in decision.assignments)


def one_pair_saving(host, guest, match_of, travel, now, config):
    """The saving and cost merge._best_merge's one-pair path computes for (host, guest), with the
    scalar pricing (`price_match`, `not_now_cost`); None if not a merge."""
    from dispatch.assign import not_now_cost, price_match
    from dispatch.bundling import breaks_promise, plan_bundle
    from dispatch.merge_pairs import PairMerge

    host_match = match_of[id(host)]
    courier = host_match.courier
    approach = host_match.arrive_at - max(now, courier.free_at)
    merged = plan_bundle([*host.orders, *guest.orders], travel, config)
    if breaks_promise(merged, now, config):
        return None
    cost = price_match(merged, courier, approach, now, config)
    if cost is None:
        return None
    guest_match = match_of.get(id(guest))
    saving = host_match.cost + (guest_match.cost if guest_match else not_now_cost(guest, now, config)) - cost
    return PairMerge(saving, cost) if saving > 0 else None


def test_pairs_of_single_orders_priced_all_at_once_choose_the_merges_planning_each_pair_would():
    import random
    from collections import defaultdict

    from dispatch.assign import candidate_couriers, match_bundles
    from dispatch.bundling import build_bundles
    from dispatch.merge import _best_merge
    from dispatch.merge_pairs import single_pair_savings
    from dispatch.model import Courier, OpenOrder
    from geo.eta import HaversineTravelTime, MdrpTravelTime

    rng = random.Random(11)
    merges = 0
    for round_no in range(150):
        haversine = round_no % 2 == 0
        travel = HaversineTravelTime() if haversine else MdrpTravelTime(320.0)

        def point(spread: float, haversine: bool = haversine) -> tuple[float, float]:
            if haversine:
                return 52.5 + rng.uniform(-spread, spread) / 111_000, 13.4 + rng.uniform(-spread, spread) / 68_000
            return rng.uniform(-spread, spread), rng.uniform(-spread, spread)

        now = 36_000.0
        stores = [point(3000) for _ in range(4)]
        orders = []
        for i in range(rng.randrange(6, 16)):
            s = rng.randrange(len(stores))
            orders.append(OpenOrder(f"o{i}", f"r{s}", stores[s], point(4000), now - rng.uniform(0, 1800),
                                    now + rng.uniform(-300, 900), now + rng.uniform(-600, 2700),
                                    frozenset({f"c{rng.randrange(8)}"}) if rng.random() < 0.3 else frozenset()))
        couriers = [Courier(f"c{j}", point(5000), now + rng.choice((0.0, 0.0, 300.0)),
                            shift_end=now + rng.uniform(300, 7200) if rng.random() < 0.3 else None,
                            delivered_count=rng.randrange(4), acceptance=rng.choice(((), (0.8,), (1.0, 0.6, 0.3))))
                    for j in range(rng.randrange(2, 8))]
        config = replace(CONFIG, pickup_service_s=rng.choice((120.0, 240.0)), max_bundle_size=rng.choice((2, 3)))
        pool = candidate_couriers(couriers, now, config)
        plans = build_bundles(orders, rng.choice((1, 1, 2)), travel, now, config)
        matches = match_bundles(plans, pool, travel, now, config)
        match_of = {id(m.plan): m for m in matches}
        groups: dict[str, list] = defaultdict(list)
        for plan in plans:
            groups[plan.bundle.store_id].append(plan)
        known = single_pair_savings(groups.values(), match_of, travel, now, config)
        for (host_id, guest_id), found in known.items():  # each saving and cost, to the last bit
            host = next(p for p in plans if id(p) == host_id)
            guest = next(p for p in plans if id(p) == guest_id)
            assert found == one_pair_saving(host, guest, match_of, travel, now, config)
        for group in groups.values():
            fast = _best_merge(group, match_of, travel, now, config, known)
            slow = _best_merge(group, match_of, travel, now, config)
            assert fast == slow
            merges += fast is not None
    assert merges >= 10  # the comparison covered real merges, not only "nothing to merge"


def test_the_all_at_once_saving_follows_a_pair_dropped_off_far_order_first():
    # b is nearly late, so the merged trip drops b (further away) before a: the sequence the
    # pair-at-once arithmetic must get right, down to the last bit.
    from dispatch.assign import Match, price_match
    from dispatch.bundling import plan_bundle
    from dispatch.cost import CostWeights
    from dispatch.merge_pairs import single_pair_savings

    config = replace(CONFIG, promise_margin_s=3600.0, weights=CostWeights(lateness=10.0))
    a = order("a", to=(600, 0), ready=0, promise=40)
    b = order("b", to=(6000, 0), ready=0, promise=5)
    host, guest = plan_bundle([a], TRAVEL, config), plan_bundle([b], TRAVEL, config)
    merged = plan_bundle([a, b], TRAVEL, config)
    assert merged.bundle.order_ids == ("b", "a")
    near = courier("near", (600, 0))
    cost = price_match(host, near, 60.0, 0.0, config)
    match_of = {id(host): Match(host, near, 0.0, 60.0, cost, config.pickup_service_s, config.dropoff_service_s)}
    known = single_pair_savings([[host, guest]], match_of, TRAVEL, 0.0, config)
    expected = one_pair_saving(host, guest, match_of, TRAVEL, 0.0, config)
    assert expected is not None and known == {(id(host), id(guest)): expected}
