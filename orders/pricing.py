"""Pricing, promos, tax, tips, cancellation fees and the delivery split. Pure.

Every amount is `Money` in minor units; every fraction becomes minor units
through `kernel.money.round_half_even` (directly or via `Money.times/percent`),
so an order is priced the same way in a quote, at checkout and in the ledger.

The fixed amounts of `FeePolicy` (the service fee's floor and cap, the small-order threshold and
fee) are minor units of a two-decimal currency such as EUR; a store in another currency uses its row
of `FIXED_FEES` (¥150, not ¥99, for a JPY store; 0.300 KWD for a KWD store) or, for a currency without
a row, the same face value in its own minor units (`FixedFees.scaled_to`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction

from kernel.errors import ValidationFailed
from kernel.money import Money, currency_exponent, is_known_currency, round_half_even
from orders.errors import PromoRejected
from orders.model import Actor, Status

ONE = Fraction(1)


@dataclass(frozen=True, slots=True)
class FixedFees:
    """The policy's fixed amounts in minor units of one currency."""

    service_fee_min: int
    service_fee_max: int
    small_order_threshold: int
    small_order_fee_max: int

    def scaled_to(self, currency: str) -> FixedFees:
        """These two-decimal amounts at the same face value in `currency`'s minor units (rounded once)."""
        factor = Fraction(10 ** currency_exponent(currency), 100)
        return FixedFees(*(round_half_even(v * factor) for v in (
            self.service_fee_min, self.service_fee_max, self.small_order_threshold, self.small_order_fee_max)))


# Fixed amounts where the face value of the two-decimal default would be wrong for the currency.
FIXED_FEES: tuple[tuple[str, FixedFees], ...] = (
    ("JPY", FixedFees(150, 800, 1500, 500)),
    ("KRW", FixedFees(1500, 7000, 15000, 4000)),
    ("KWD", FixedFees(300, 1500, 3000, 1000)),
    ("BHD", FixedFees(400, 2000, 4000, 1200)),
)


@dataclass(frozen=True, slots=True)
class FeePolicy:
    service_fee_bps: int = 1000  # 10 % of the food subtotal...
    service_fee_min: int = 99  # ...but at least this...
    service_fee_max: int = 499  # ...and at most this
    small_order_threshold: int = 1000  # below this food subtotal...
    small_order_fee_max: int = 300  # ...the gap is charged, up to this
    commission_bps: int = 1500  # the platform's share of the restaurant's net food sales
    max_surge: Fraction = Fraction(3)  # never multiply a delivery fee by more than this
    cancel_fee_accepted_bps: int = 5000  # customer cancels after acceptance: half the food
    cancel_fee_ready_bps: int = 10_000  # food is ready: all of it
    quote_ttl_seconds: int = 300
    pickup_buffer_seconds: int = 300  # courier arrival, parking, handover
    courier_speed_mps: float = 5.0
    window_before_seconds: int = 300
    window_after_seconds: int = 600
    # Restaurant tenants whose contract sets another commission than `commission_bps`: (tenant id, bps).
    commission_overrides: tuple[tuple[str, int], ...] = field(default=())
    fixed_fees: tuple[tuple[str, FixedFees], ...] = FIXED_FEES

    def fixed_for(self, currency: str) -> FixedFees:
        """The fixed amounts in minor units of `currency` (see the module's docstring)."""
        for code, fees in self.fixed_fees:
            if code == currency:
                return fees
        return FixedFees(self.service_fee_min, self.service_fee_max, self.small_order_threshold,
                         self.small_order_fee_max).scaled_to(currency)

    def for_tenant(self, tenant_id: str) -> FeePolicy:
        """This policy with the tenant's commission (its override, else `commission_bps`)."""
        bps = dict(self.commission_overrides).get(tenant_id, self.commission_bps)
        return self if bps == self.commission_bps else replace(self, commission_bps=bps)


class PromoKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


@dataclass(frozen=True, slots=True)
class Promo:
    id: str
    code: str
    kind: PromoKind
    percent_bps: int = 0  # PERCENT: 1 bp = 0.01 %
    amount: int = 0  # FIXED: minor units of `currency`
    currency: str | None = None
    max_discount: int | None = None  # PERCENT: cap in minor units
    min_subtotal: int = 0
    first_order_only: bool = False
    per_customer_limit: int | None = None
    budget: int | None = None  # total discount this promo may give, minor units
    budget_used: int = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    store_id: str | None = None  # None: any store (of `tenant_id`, when set)
    active: bool = True
    tenant_id: str | None = None  # the restaurant tenant the promo belongs to; None: platform-wide


@dataclass(frozen=True, slots=True)
class PromoUsage:
    """What the customer did before, as far as promo rules care."""

    redemptions_by_customer: int = 0
    customer_has_orders: bool = False


def promo_discount(promo: Promo, *, subtotal: Money, store_id: str, usage: PromoUsage, now: datetime) -> Money:
    """The discount `promo` gives on a food subtotal, or `PromoRejected` with the reason as code."""

    def reject(reason: str, message: str) -> PromoRejected:
        return PromoRejected(message, param="promo_code", code=f"promo_{reason}")

    if not promo.active:
        raise reject("inactive", "this promo code is no longer active")
    if promo.valid_from is not None and now < promo.valid_from:
        raise reject("not_started", "this promo code is not valid yet")
    if promo.valid_until is not None and now >= promo.valid_until:
        raise reject("expired", "this promo code has expired")
    if promo.store_id is not None and promo.store_id != store_id:
        raise reject("wrong_store", "this promo code is not valid at this store")
    if (promo.kind is PromoKind.FIXED or promo.currency is not None) and promo.currency != subtotal.currency:
        raise reject("wrong_currency", "this promo code is for another currency")
    if subtotal.amount < promo.min_subtotal:
        raise reject("minimum_not_met", f"this promo code needs a subtotal of at least {promo.min_subtotal}")
    if promo.first_order_only and usage.customer_has_orders:
        raise reject("first_order_only", "this promo code is for a first order only")
    if promo.per_customer_limit is not None and usage.redemptions_by_customer >= promo.per_customer_limit:
        raise reject("limit_reached", "you have already used this promo code as often as allowed")
    if promo.kind is PromoKind.PERCENT:
        amount = subtotal.percent(promo.percent_bps).amount
        if promo.max_discount is not None:
            amount = min(amount, promo.max_discount)
    else:
        amount = promo.amount
    amount = max(0, min(amount, subtotal.amount))  # a discount never makes the food negative
    if promo.budget is not None and promo.budget_used + amount > promo.budget:
        raise reject("budget_exhausted", "this promo code has run out")
    return Money(amount, subtotal.currency)


def check_promo_currency(kind: str, currency: str | None, *, amount: int, max_discount: int | None,
                         min_subtotal: int, budget: int | None) -> None:
    """A promo that names an amount (a fixed discount, a cap, a minimum, a budget) names its currency:
    minor units mean nothing without one (500 is €5.00, ¥500 or 0.500 KWD), and it then applies only
    to orders in that currency."""
    if currency is not None:
        if not is_known_currency(currency):
            raise ValidationFailed(f"unknown currency {currency}", param="currency", code="invalid_currency")
        return
    if kind == PromoKind.FIXED or amount or max_discount is not None or min_subtotal or budget is not None:
        raise ValidationFailed("a promo with an amount (fixed, max_discount, min_subtotal or budget) needs the "
                               "currency it is in", param="currency")


def service_fee(subtotal: Money, policy: FeePolicy) -> Money:
    raw = subtotal.percent(policy.service_fee_bps).amount
    fixed = policy.fixed_for(subtotal.currency)
    return Money(min(max(raw, fixed.service_fee_min), fixed.service_fee_max), subtotal.currency)


def small_order_fee(subtotal: Money, policy: FeePolicy) -> Money:
    fixed = policy.fixed_for(subtotal.currency)
    gap = fixed.small_order_threshold - subtotal.amount
    return Money(max(0, min(gap, fixed.small_order_fee_max)), subtotal.currency)


def surged_delivery_fee(band_fee: Money, multiplier: Fraction, policy: FeePolicy) -> tuple[Money, Money]:
    """(base fee, "busy area" surcharge): the band fee times the surge multiplier of the
    pickup's H3 cell, clamped to [1, max_surge], the extra shown as its own line."""
    m = min(max(Fraction(multiplier), ONE), policy.max_surge)
    total = band_fee.times(m)
    return band_fee, total - band_fee


def tax_amount(taxable: Money, rate_bps: int, inclusive: bool) -> Money:
    """Tax on `taxable` under the store's rule, rounded once with round_half_even.

    Inclusive prices already contain the tax: it is the part rate/(1+rate) of them.
    """
    rate = Fraction(rate_bps, 10_000)
    share = rate / (1 + rate) if inclusive else rate
    return Money(round_half_even(Fraction(taxable.amount) * share), taxable.currency)


@dataclass(frozen=True, slots=True)
class MemberBenefit:
    """What the customer's membership (memberships/, through `ports.Memberships`) takes off a bill: the
    delivery fee when the food subtotal is at least `free_delivery_min_subtotal` (None: never), and
    `service_fee_discount_bps` of the service fee. Minor units of the store's currency."""

    free_delivery_min_subtotal: int | None = None
    service_fee_discount_bps: int = 0


def member_discount(subtotal: Money, delivery_fee: Money, service: Money, member: MemberBenefit | None) -> Money:
    """What a member saves: the delivery fee (not the busy-area surcharge) above the minimum food
    subtotal (before any promo), plus the share off the service fee (rounded half to even, once). The
    platform funds it: the courier's delivery fee and the restaurant's share are those of any bill."""
    zero = Money.zero(subtotal.currency)
    if member is None:
        return zero
    minimum = member.free_delivery_min_subtotal
    waived = delivery_fee if minimum is not None and subtotal.amount >= minimum else zero
    return waived + service.percent(member.service_fee_discount_bps)


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    currency: str
    subtotal: Money  # food, as listed (tax included when the store is tax-inclusive)
    discount: Money
    delivery_fee: Money
    busy_area_fee: Money
    service_fee: Money
    small_order_fee: Money
    tax: Money
    tax_inclusive: bool
    tip: Money
    total: Money
    surge_multiplier: Fraction
    tax_rate_bps: int
    member_discount: Money | None = None  # what the customer's membership took off (None: no membership)


def price(
    subtotal: Money,
    *,
    band_fee: Money,
    surge: Fraction,
    tax_rate_bps: int,
    tax_inclusive: bool,
    discount: Money,
    tip: Money,
    policy: FeePolicy,
    member: MemberBenefit | None = None,
) -> PriceBreakdown:
    """The whole bill. Tax applies to the food after the discount; fees are not taxed. A member's
    discount (`member_discount`) comes off the total, not off the fee lines."""
    cur = subtotal.currency
    for m in (band_fee, discount, tip):
        if m.currency != cur:
            raise ValueError(f"{m} is not in {cur}")
    if tip.amount < 0:
        raise ValueError("a tip cannot be negative")
    base, busy = surged_delivery_fee(band_fee, surge, policy)
    svc = service_fee(subtotal, policy)
    small = small_order_fee(subtotal, policy)
    tax = tax_amount(subtotal - discount, tax_rate_bps, tax_inclusive)
    saved = member_discount(subtotal, base, svc, member)
    total = subtotal - discount + base + busy + svc + small + tip - saved
    if not tax_inclusive:
        total = total + tax
    return PriceBreakdown(
        currency=cur, subtotal=subtotal, discount=discount, delivery_fee=base, busy_area_fee=busy,
        service_fee=svc, small_order_fee=small, tax=tax, tax_inclusive=tax_inclusive, tip=tip, total=total,
        surge_multiplier=min(max(Fraction(surge), ONE), policy.max_surge), tax_rate_bps=tax_rate_bps,
        member_discount=saved if member is not None else None,
    )


def with_tip(b: PriceBreakdown, tip: Money) -> PriceBreakdown:
    if tip.amount < 0:
        raise ValueError("a tip cannot be negative")
    return replace(b, tip=tip, total=b.total - b.tip + tip)


@dataclass(frozen=True, slots=True)
class Refund:
    food: Money  # the food part (tax included when the store is tax-inclusive)
    tax: Money  # tax given back on top (tax-exclusive stores only)

    @property
    def total(self) -> Money:
        return self.food + self.tax


def missing_item_refund(line_value: Money, b: PriceBreakdown, earlier: list[Refund]) -> Refund:
    """What a missing item gives back: its food value (never more food than the customer paid
    for after the discount), plus, where tax was added on top, the tax that food no longer
    bears. Computed against `earlier` refunds so the sum of refunds never exceeds the bill."""
    cur = b.currency
    already = sum(r.food.amount for r in earlier)
    paid_food = b.subtotal.amount - b.discount.amount - already
    food = Money(max(0, min(line_value.amount, paid_food)), cur)
    if b.tax_inclusive:
        return Refund(food, Money.zero(cur))
    before = tax_amount(Money(paid_food, cur), b.tax_rate_bps, False)
    after = tax_amount(Money(paid_food - food.amount, cur), b.tax_rate_bps, False)
    return Refund(food, before - after)


def cancellation_fee(status: Status, actor: Actor, b: PriceBreakdown, policy: FeePolicy) -> Money:
    """What a cancelling customer pays: nothing before acceptance, part of the food once the
    kitchen has started, all of it once the food is ready. Restaurants and operators
    cancelling never charge the customer. Cancelling after pickup is not allowed at all."""
    zero = Money.zero(b.currency)
    if actor is not Actor.CUSTOMER:
        return zero
    food = b.subtotal - b.discount
    if status in (Status.ACCEPTED, Status.PREPARING):
        return food.percent(policy.cancel_fee_accepted_bps)
    if status is Status.READY:
        return food.percent(policy.cancel_fee_ready_bps)
    return zero


@dataclass(frozen=True, slots=True)
class SplitAmounts:
    """Where the customer's money goes; the four parts always add up to `customer_charged`."""

    customer_charged: Money
    restaurant_payable: Money
    courier_earnings: Money
    platform_revenue: Money
    tax_payable: Money
    # What a merchant's statement shows of it (not postings): the commission the platform took from
    # the restaurant's food sales at `commission_bps`, and the tip passed through to the courier.
    commission: Money | None = None
    commission_bps: int = 0
    tip: Money | None = None
    # A member's discount (PriceBreakdown.member_discount), which the platform funds on top of
    # `customer_charged` (payments' `platform_promotions`): the other parts are those of the bill without it.
    platform_funded: Money | None = None


def delivery_split(b: PriceBreakdown, refunds: list[Refund], policy: FeePolicy) -> SplitAmounts:
    """The split at delivery: the restaurant gets its net food sales minus commission, the
    courier the delivery fee (surge included) and the tip, the tax authority the tax; the
    platform keeps the rest (service and small-order fees plus commission, minus the
    discount it funded). Missing-item refunds come out of the restaurant's food and tax."""
    cur = b.currency
    refunded_food = Money(sum(r.food.amount for r in refunds), cur)
    refunded_tax = Money(sum(r.tax.amount for r in refunds), cur)
    charged = b.total - refunded_food - refunded_tax
    food = b.subtotal - refunded_food
    if b.tax_inclusive:
        tax = tax_amount(food - b.discount, b.tax_rate_bps, True)
        food_net = food - tax
    else:
        tax = b.tax - refunded_tax
        food_net = food
    commission = food_net.percent(policy.commission_bps)
    restaurant = food_net - commission
    courier = b.delivery_fee + b.busy_area_fee + b.tip
    funded = b.member_discount or Money.zero(cur)
    platform = charged + funded - restaurant - courier - tax
    if platform.amount < 0:
        # A discount larger than the platform's take is funded by the restaurant (the ledger
        # has no negative legs). charged >= courier + tax always, so this never goes below zero.
        restaurant, platform = restaurant + platform, Money.zero(cur)
    return SplitAmounts(charged, restaurant, courier, platform, tax, commission, policy.commission_bps, b.tip,
                        platform_funded=b.member_discount)


def cancellation_split(fee: Money, policy: FeePolicy) -> SplitAmounts:
    """A cancellation fee compensates the restaurant, minus commission."""
    zero = Money.zero(fee.currency)
    commission = fee.percent(policy.commission_bps)
    restaurant = fee - commission
    return SplitAmounts(fee, restaurant, zero, commission, zero, commission, policy.commission_bps, zero)


def promised_window(
    start_at: datetime, prep_time_s: int, distance_m: float, policy: FeePolicy
) -> tuple[datetime, datetime]:
    """The delivery window promised to the customer, from when the kitchen can start."""
    travel = distance_m / policy.courier_speed_mps
    eta = start_at + timedelta(seconds=prep_time_s + travel + policy.pickup_buffer_seconds)
    return (eta - timedelta(seconds=policy.window_before_seconds), eta + timedelta(seconds=policy.window_after_seconds))


def breakdown_to_dict(b: PriceBreakdown) -> dict:
    """The stored form (orders.pricing, quotes): minor units, the multiplier as "p/q"."""
    out: dict = {"currency": b.currency, "tax_inclusive": b.tax_inclusive, "tax_rate_bps": b.tax_rate_bps,
                 "surge_multiplier": str(b.surge_multiplier)}
    for name in ("subtotal", "discount", "delivery_fee", "busy_area_fee", "service_fee", "small_order_fee",
                 "tax", "tip", "total"):
        out[name] = getattr(b, name).amount
    if b.member_discount is not None:  # left out otherwise: the stored form of a bill without a membership is as before
        out["member_discount"] = b.member_discount.amount
    return out


def breakdown_from_dict(d: dict) -> PriceBreakdown:
    cur = d["currency"]
    money = {name: Money(d[name], cur) for name in (
        "subtotal", "discount", "delivery_fee", "busy_area_fee", "service_fee", "small_order_fee", "tax", "tip",
        "total")}
    member = d.get("member_discount")
    return PriceBreakdown(currency=cur, tax_inclusive=d["tax_inclusive"], tax_rate_bps=d["tax_rate_bps"],
                          surge_multiplier=Fraction(d["surge_multiplier"]),
                          member_discount=None if member is None else Money(member, cur), **money)
