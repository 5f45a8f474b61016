"""A member's bill: free delivery above the plan's minimum food subtotal and a share off the service
fee, taken off the total (not off the courier's delivery fee), and stored so it reads back the same."""

from __future__ import annotations

from fractions import Fraction

from kernel.money import Money
from orders.pricing import (
    FeePolicy,
    MemberBenefit,
    breakdown_from_dict,
    breakdown_to_dict,
    delivery_split,
    price,
)

EUR = "EUR"
PLUS = MemberBenefit(free_delivery_min_subtotal=1500, service_fee_discount_bps=5000)


def bill(subtotal: int, member: MemberBenefit | None, surge: Fraction = Fraction(1)):
    return price(Money(subtotal, EUR), band_fee=Money(299, EUR), surge=surge, tax_rate_bps=700, tax_inclusive=True,
                 discount=Money.zero(EUR), tip=Money(100, EUR), policy=FeePolicy(), member=member)


def test_a_member_above_the_minimum_pays_no_delivery_fee_and_half_the_service_fee() -> None:
    plain, member = bill(2000, None), bill(2000, PLUS)
    assert plain.member_discount is None
    assert member.service_fee == plain.service_fee == Money(200, EUR)  # the fee lines are the same...
    assert member.member_discount == Money(299 + 100, EUR)  # ...the membership takes delivery and half the service off
    assert member.total == plain.total - Money(399, EUR)


def test_below_the_minimum_only_the_service_fee_share_is_taken_off() -> None:
    member = bill(1499, PLUS)
    assert member.member_discount == Money(member.service_fee.amount // 2, EUR)


def test_the_busy_area_surcharge_is_not_waived() -> None:
    member = bill(2000, PLUS, surge=Fraction(3, 2))
    assert member.busy_area_fee.amount > 0
    assert member.member_discount == Money(299 + 100, EUR)


def test_the_courier_keeps_the_delivery_fee_the_platform_funds_the_saving() -> None:
    plain, member = bill(4000, None), bill(4000, PLUS)
    a, b = delivery_split(plain, [], FeePolicy()), delivery_split(member, [], FeePolicy())
    assert b.courier_earnings == a.courier_earnings and b.restaurant_payable == a.restaurant_payable
    assert b.platform_revenue == a.platform_revenue and b.tax_payable == a.tax_payable
    assert b.platform_funded == member.member_discount and a.platform_funded is None
    assert b.customer_charged + b.platform_funded == a.customer_charged  # type: ignore[operator]


def test_the_stored_form_keeps_the_member_discount_and_a_plain_bill_is_stored_as_before() -> None:
    member, plain = bill(2000, PLUS), bill(2000, None)
    assert breakdown_from_dict(breakdown_to_dict(member)) == member
    assert "member_discount" not in breakdown_to_dict(plain)
    assert breakdown_from_dict(breakdown_to_dict(plain)) == plain
