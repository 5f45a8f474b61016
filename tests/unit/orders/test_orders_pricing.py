"""Pricing: every fee, the rounding rule, promo rules, cancellation fees and the delivery split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.money import Money
from orders.errors import PromoRejected
from orders.model import Actor, Status
from orders.pricing import (
    FeePolicy,
    Promo,
    PromoKind,
    PromoUsage,
    cancellation_fee,
    cancellation_split,
    delivery_split,
    missing_item_refund,
    price,
    promo_discount,
    service_fee,
    small_order_fee,
    surged_delivery_fee,
    tax_amount,
    with_tip,
)

P = FeePolicy()
NOW = datetime(2025, 3, 1, 18, tzinfo=UTC)


def eur(amount: int) -> Money:
    return Money(amount, "EUR")


def test_service_fee_is_a_percentage_clamped_to_min_and_max() -> None:
    assert service_fee(eur(2000), P) == eur(200)
    assert service_fee(eur(500), P) == eur(99)  # 50 -> minimum
    assert service_fee(eur(10_000), P) == eur(499)  # 1000 -> maximum


def test_small_order_fee_charges_the_gap_up_to_its_cap() -> None:
    assert small_order_fee(eur(1000), P) == eur(0)
    assert small_order_fee(eur(900), P) == eur(100)
    assert small_order_fee(eur(200), P) == eur(300)


def test_surge_multiplies_the_band_fee_and_shows_the_extra_as_busy_area() -> None:
    assert surged_delivery_fee(eur(299), Fraction(1), P) == (eur(299), eur(0))
    assert surged_delivery_fee(eur(300), Fraction(3, 2), P) == (eur(300), eur(150))
    assert surged_delivery_fee(eur(300), Fraction(1, 2), P) == (eur(300), eur(0))  # never a discount
    assert surged_delivery_fee(eur(100), Fraction(10), P) == (eur(100), eur(200))  # capped at max_surge


def test_surge_rounding_is_half_even() -> None:
    # 125 * 1.5 = 187.5 -> 188 (8 is even); 135 * 1.5 = 202.5 -> 202 (2 is even)
    assert surged_delivery_fee(eur(125), Fraction(3, 2), P)[1] == eur(63)
    assert surged_delivery_fee(eur(135), Fraction(3, 2), P)[1] == eur(67)


def test_tax_exclusive_and_inclusive_round_half_even() -> None:
    assert tax_amount(eur(1000), 1900, False) == eur(190)
    assert tax_amount(eur(1190), 1900, True) == eur(190)
    # 250 * 10 % = 25 exact; 125 * 10 % = 12.5 -> 12 (half to even), 135 * 10 % = 13.5 -> 14
    assert tax_amount(eur(125), 1000, False) == eur(12)
    assert tax_amount(eur(135), 1000, False) == eur(14)
    assert tax_amount(Money(1000, "JPY"), 1000, True) == Money(91, "JPY")  # 90.909...


def test_total_adds_every_line_for_a_tax_exclusive_store() -> None:
    b = price(eur(1500), band_fee=eur(299), surge=Fraction(6, 5), tax_rate_bps=1000, tax_inclusive=False,
              discount=eur(300), tip=eur(200), policy=P)
    assert b.delivery_fee == eur(299)
    assert b.busy_area_fee == eur(60)  # 59.8 -> 60
    assert b.service_fee == eur(150)
    assert b.small_order_fee == eur(0)
    assert b.tax == eur(120)  # on food after discount: 1200 * 10 %
    assert b.total == eur(1500 - 300 + 299 + 60 + 150 + 120 + 200)


def test_tax_inclusive_store_does_not_add_tax_to_the_total() -> None:
    b = price(eur(1100), band_fee=eur(200), surge=Fraction(1), tax_rate_bps=1000, tax_inclusive=True,
              discount=eur(0), tip=eur(0), policy=P)
    assert b.tax == eur(100)
    assert b.total == eur(1100 + 200 + 110)


def test_tip_change_moves_the_total_by_the_difference() -> None:
    b = price(eur(1500), band_fee=eur(299), surge=Fraction(1), tax_rate_bps=0, tax_inclusive=False,
              discount=eur(0), tip=eur(100), policy=P)
    assert with_tip(b, eur(500)).total == b.total + eur(400)
    with pytest.raises(ValueError):
        with_tip(b, eur(-1))


def test_mixed_currencies_are_refused() -> None:
    with pytest.raises(ValueError):
        price(eur(1000), band_fee=Money(100, "USD"), surge=Fraction(1), tax_rate_bps=0, tax_inclusive=False,
              discount=eur(0), tip=eur(0), policy=P)


def promo(**kw) -> Promo:
    base = {"id": "pro_1", "code": "SAVE", "kind": PromoKind.PERCENT, "percent_bps": 2000}
    base.update(kw)
    return Promo(**base)


def discount(p: Promo, subtotal: int = 2000, usage: PromoUsage | None = None, store: str = "sto_1",
             now: datetime = NOW) -> Money:
    return promo_discount(p, subtotal=eur(subtotal), store_id=store, usage=usage or PromoUsage(), now=now)


def test_percent_promo_rounds_half_even_and_respects_its_cap() -> None:
    assert discount(promo(percent_bps=1250), subtotal=1004) == eur(126)  # 125.5 -> 126
    assert discount(promo(percent_bps=1250), subtotal=1012) == eur(126)  # 126.5 -> 126
    assert discount(promo(max_discount=150)) == eur(150)


def test_fixed_promo_never_exceeds_the_subtotal() -> None:
    p = promo(kind=PromoKind.FIXED, amount=500, currency="EUR")
    assert discount(p, subtotal=2000) == eur(500)
    assert discount(p, subtotal=300) == eur(300)


@pytest.mark.parametrize(
    ("kw", "call", "code"),
    [
        ({"active": False}, {}, "promo_inactive"),
        ({"valid_from": NOW + timedelta(hours=1)}, {}, "promo_not_started"),
        ({"valid_until": NOW}, {}, "promo_expired"),
        ({"store_id": "sto_other"}, {}, "promo_wrong_store"),
        ({"kind": PromoKind.FIXED, "amount": 100, "currency": "USD"}, {}, "promo_wrong_currency"),
        ({"min_subtotal": 2500}, {}, "promo_minimum_not_met"),
        ({"first_order_only": True}, {"usage": PromoUsage(customer_has_orders=True)}, "promo_first_order_only"),
        ({"per_customer_limit": 2}, {"usage": PromoUsage(redemptions_by_customer=2)}, "promo_limit_reached"),
        ({"budget": 1000, "budget_used": 900}, {}, "promo_budget_exhausted"),
    ],
)
def test_promo_rules_refuse_with_a_reason_code(kw: dict, call: dict, code: str) -> None:
    with pytest.raises(PromoRejected) as info:
        discount(promo(**kw), **call)
    assert info.value.code == code
    assert info.value.param == "promo_code"
    assert info.value.status == 422


def test_promo_within_every_rule_applies() -> None:
    p = promo(store_id="sto_1", min_subtotal=2000, first_order_only=True, per_customer_limit=1, budget=400,
              budget_used=0, valid_from=NOW - timedelta(days=1), valid_until=NOW + timedelta(days=1))
    assert discount(p) == eur(400)


def test_cancellation_fee_by_state_and_actor() -> None:
    b = price(eur(2000), band_fee=eur(300), surge=Fraction(1), tax_rate_bps=0, tax_inclusive=False,
              discount=eur(200), tip=eur(0), policy=P)
    assert cancellation_fee(Status.PLACED, Actor.CUSTOMER, b, P) == eur(0)
    assert cancellation_fee(Status.ACCEPTED, Actor.CUSTOMER, b, P) == eur(900)
    assert cancellation_fee(Status.PREPARING, Actor.CUSTOMER, b, P) == eur(900)
    assert cancellation_fee(Status.READY, Actor.CUSTOMER, b, P) == eur(1800)
    assert cancellation_fee(Status.READY, Actor.RESTAURANT, b, P) == eur(0)
    assert cancellation_fee(Status.ACCEPTED, Actor.OPERATOR, b, P) == eur(0)
    split = cancellation_split(eur(900), P)
    assert split.restaurant_payable == eur(765)
    assert split.platform_revenue == eur(135)


def test_delivery_split_pays_each_party_and_balances() -> None:
    b = price(eur(2000), band_fee=eur(300), surge=Fraction(3, 2), tax_rate_bps=1000, tax_inclusive=False,
              discount=eur(200), tip=eur(150), policy=P)
    s = delivery_split(b, [], P)
    assert s.customer_charged == b.total
    assert s.tax_payable == eur(180)
    assert s.restaurant_payable == eur(1700)  # 2000 - 15 %
    assert s.courier_earnings == eur(300 + 150 + 150)
    assert s.platform_revenue == eur(200 + 300 - 200)  # service fee + commission - discount
    assert (s.restaurant_payable + s.courier_earnings + s.platform_revenue + s.tax_payable) == s.customer_charged


def test_missing_item_refund_comes_out_of_the_restaurant_share_with_its_tax() -> None:
    b = price(eur(2000), band_fee=eur(300), surge=Fraction(1), tax_rate_bps=1000, tax_inclusive=False,
              discount=eur(0), tip=eur(0), policy=P)
    refund = missing_item_refund(eur(500), b, [])
    assert refund.total == eur(550)
    s = delivery_split(b, [refund], P)
    assert s.customer_charged == b.total - eur(550)
    assert s.tax_payable == eur(150)
    assert s.restaurant_payable == eur(1275)


@given(
    subtotal=st.integers(1, 500_000), band=st.integers(0, 2_000), surge_pct=st.integers(100, 400),
    rate=st.integers(0, 3_000), inclusive=st.booleans(), disc=st.integers(0, 500_000), tip=st.integers(0, 10_000),
    missing=st.integers(0, 500_000),
)
def test_delivery_split_always_balances(subtotal, band, surge_pct, rate, inclusive, disc, tip, missing) -> None:
    b = price(eur(subtotal), band_fee=eur(band), surge=Fraction(surge_pct, 100), tax_rate_bps=rate,
              tax_inclusive=inclusive, discount=eur(min(disc, subtotal)), tip=eur(tip), policy=P)
    first = missing_item_refund(eur(missing), b, [])
    refunds = [first, missing_item_refund(eur(missing), b, [first])]
    s = delivery_split(b, refunds, P)
    parts = s.restaurant_payable + s.courier_earnings + s.platform_revenue + s.tax_payable
    assert parts == s.customer_charged
    assert s.courier_earnings.amount >= tip
    assert min(p.amount for p in (s.restaurant_payable, s.courier_earnings, s.platform_revenue, s.tax_payable)) >= 0


def test_a_discount_bigger_than_the_platform_take_is_funded_by_the_restaurant() -> None:
    b = price(eur(1000), band_fee=eur(300), surge=Fraction(1), tax_rate_bps=0, tax_inclusive=False,
              discount=eur(900), tip=eur(0), policy=P)
    s = delivery_split(b, [], P)
    assert s.platform_revenue == eur(0)
    assert s.restaurant_payable == eur(850 + 100 + 150 - 900)  # net - commission + fees - discount
    assert s.customer_charged == b.total


def test_breakdown_round_trips_through_its_stored_form() -> None:
    from orders.pricing import breakdown_from_dict, breakdown_to_dict

    b = price(eur(1234), band_fee=eur(299), surge=Fraction(7, 5), tax_rate_bps=700, tax_inclusive=True,
              discount=eur(100), tip=eur(50), policy=P)
    assert breakdown_from_dict(breakdown_to_dict(b)) == b


def test_fixed_fees_are_set_per_currency_not_read_as_cents_everywhere() -> None:
    # A JPY store: ¥150 to ¥800, not ¥99 to ¥499; a KWD store: 0.300 to 1.500 KWD, not 0.099 to 0.499.
    assert service_fee(Money(500, "JPY"), P) == Money(150, "JPY")
    assert service_fee(Money(100_000, "JPY"), P) == Money(800, "JPY")
    assert service_fee(Money(1000, "KWD"), P) == Money(300, "KWD")
    assert service_fee(Money(5000, "KWD"), P) == Money(500, "KWD")  # 10 %, between the bounds
    assert small_order_fee(Money(1200, "JPY"), P) == Money(300, "JPY")
    assert small_order_fee(Money(2000, "KWD"), P) == Money(1000, "KWD")
    # A currency without a row of its own keeps the default's face value in its minor units.
    assert P.fixed_for("GBP").service_fee_min == 99
    assert P.fixed_for("OMR").service_fee_min == 990  # 0.99 OMR, three decimals
    assert P.fixed_for("VND").service_fee_min == 1  # ₫0.99 rounds half-even to ₫1


def test_a_promo_with_an_amount_names_its_currency_and_applies_only_in_it() -> None:
    from kernel.errors import ValidationFailed
    from orders.pricing import check_promo_currency

    check_promo_currency("percent", None, amount=0, max_discount=None, min_subtotal=0, budget=None)
    check_promo_currency("percent", "JPY", amount=0, max_discount=500, min_subtotal=1000, budget=None)
    for kw in ({"amount": 500}, {"max_discount": 500}, {"min_subtotal": 1000}, {"budget": 10_000}):
        args = {"amount": 0, "max_discount": None, "min_subtotal": 0, "budget": None, **kw}
        with pytest.raises(ValidationFailed) as err:
            check_promo_currency("fixed" if "amount" in kw else "percent", None, **args)
        assert err.value.param == "currency"
    with pytest.raises(ValidationFailed):
        check_promo_currency("fixed", "XYZ", amount=500, max_discount=None, min_subtotal=0, budget=None)
    capped = Promo("p", "TEN", PromoKind.PERCENT, percent_bps=1000, max_discount=500, currency="JPY")
    with pytest.raises(PromoRejected) as rejected:
        promo_discount(capped, subtotal=eur(5000), store_id="s", usage=PromoUsage(), now=NOW)
    assert rejected.value.code == "promo_wrong_currency"
    assert promo_discount(capped, subtotal=Money(8000, "JPY"), store_id="s", usage=PromoUsage(),
                          now=NOW) == Money(500, "JPY")
