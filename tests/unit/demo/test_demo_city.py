"""The demo city generator: reproducible, valid zones, menus the catalog accepts."""

from __future__ import annotations

import msgspec
import pytest
from shapely.geometry import Point, shape

from catalog.messages import HoursIn, MenuIn, StoreCreate, ZonesIn
from fooddispatch.demo.city import BBOX, CARD_OK, VEHICLE_SPEED, generate_city, inside_bbox


def test_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    assert generate_city(7, 12, 20, 60) == generate_city(7, 12, 20, 60)
    assert generate_city(7, 12, 20, 60) != generate_city(8, 12, 20, 60)


@pytest.mark.parametrize("restaurants", [1, 5, 12, 40])
def test_store_count_is_what_was_asked_and_tenants_have_several_stores(restaurants: int) -> None:
    city = generate_city(3, restaurants, 5, 10)
    assert len(city.stores) == restaurants
    if restaurants >= 12:
        assert any(len(t.stores) > 1 for t in city.tenants)


def test_zones_are_valid_polygons_around_their_store_inside_the_metro() -> None:
    city = generate_city(1, 30, 5, 10)
    for store in city.stores:
        assert inside_bbox(store.lat, store.lng)
        zone = msgspec.convert({"zones": [store.zone], "max_delivery_m": store.max_delivery_m,
                                "fee_bands": store.fee_bands}, ZonesIn)
        polygon = shape(zone.zones[0])
        assert polygon.is_valid and not polygon.is_empty
        assert polygon.contains(Point(store.lng, store.lat))  # GeoJSON order: lng, lat
        ring = store.zone["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) >= 4


def test_zones_pass_the_catalogs_own_zone_validation() -> None:
    zones = pytest.importorskip("geo.zones")
    for store in generate_city(2, 10, 5, 10).stores:
        zones.parse_zone(store.zone)


def test_menus_decode_as_the_catalogs_menu_and_obey_modifier_rules() -> None:
    city = generate_city(1, 12, 5, 10)

    def check_groups(groups, depth: int) -> int:  # type: ignore[no-untyped-def]
        deepest = depth
        for group in groups:
            assert 0 <= group.min <= group.max <= len(group.options)
            for option in group.options:
                assert option.price >= 0
                deepest = max(deepest, check_groups(option.modifier_groups, depth + 1))
        return deepest

    for tenant in city.tenants:
        menu = msgspec.convert(tenant.menu, MenuIn)
        items = [item for cat in menu.categories for item in cat.items]
        assert len(items) >= 10 and all(item.price > 0 for item in items)
        assert max(check_groups(item.modifier_groups, 1) for item in items) >= 3  # nesting three levels deep
        for store in tenant.stores:
            msgspec.convert({"periods": store.hours}, HoursIn)
            msgspec.convert({"name": store.name, "lat": store.lat, "lng": store.lng, "timezone": "Europe/Berlin",
                             "currency": "EUR", "prep_time_default_s": store.prep_time_s}, StoreCreate)


def test_customers_and_couriers_are_in_the_city_with_a_mix_of_cards_and_vehicles() -> None:
    city = generate_city(1, 12, 40, 300)
    assert all(inside_bbox(c.lat, c.lng, BBOX) for c in [*city.customers, *city.couriers])
    cards = {c.card for c in city.customers}
    assert CARD_OK in cards and len(cards) >= 3  # some decline, need 3-D Secure or trip fraud rules
    assert {c.vehicle for c in city.couriers} <= set(VEHICLE_SPEED) and len({c.vehicle for c in city.couriers}) >= 2
    assert len({c.email for c in city.customers}) == len(city.customers)
    assert any(s.closed_today for s in city.stores)
    assert all(c.shift_minutes > 0 for c in city.couriers)


@pytest.mark.parametrize("seed", range(1, 8))
@pytest.mark.parametrize("restaurants", [12, 40, 200])
def test_every_store_and_every_courier_has_its_own_name(seed: int, restaurants: int) -> None:
    city = generate_city(seed, restaurants, restaurants * 2, 10)
    for names in ([store.name for store in city.stores], [courier.name for courier in city.couriers]):
        assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("seed", range(1, 8))
def test_every_customer_lives_in_the_zone_of_a_store_open_today(seed: int) -> None:
    city = generate_city(seed, 6, 5, 60)
    zones = [shape(store.zone) for store in city.stores if not store.closed_today]
    assert all(any(zone.contains(Point(c.lng, c.lat)) for zone in zones) for c in city.customers)
