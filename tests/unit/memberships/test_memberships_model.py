"""The pure memberships rules: billing periods, proration, the dunning schedule and the state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.money import Money
from memberships import model
from memberships.model import Benefits, Due, Interval, Status

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_monthly_periods_keep_the_anchor_day_clamped_to_the_month() -> None:
    ends = [model.period_end(T0, Interval.MONTH, n) for n in range(5)]
    assert [e.date().isoformat() for e in ends] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30",
                                                    "2026-05-31"]
    assert model.period(T0, Interval.MONTH, 2) == (ends[1], ends[2])


def test_yearly_period_from_29_february_ends_on_28_february() -> None:
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert model.period_end(leap, Interval.YEAR, 1) == datetime(2029, 2, 28, tzinfo=UTC)
    assert model.period_end(leap, Interval.YEAR, 4) == datetime(2032, 2, 29, tzinfo=UTC)


def test_unused_share_floors_to_whole_minor_units() -> None:
    start, end = T0, T0 + timedelta(seconds=3)
    # 1000 * 2/3 = 666.67: floor gives 666, never rounds up to 667
    assert model.unused_share(1000, start, end, start + timedelta(seconds=1)) == 666
    # 999 * 1/2 = 499.5: round half down
    assert model.unused_share(999, start, start + timedelta(seconds=2), start + timedelta(seconds=1)) == 499


def test_unused_share_is_all_before_the_period_and_nothing_after() -> None:
    start, end = model.period(T0, Interval.MONTH, 1)
    assert model.unused_share(999, start, end, start) == 999
    assert model.unused_share(999, start, end, start - timedelta(days=1)) == 999
    assert model.unused_share(999, start, end, end) == 0
    assert model.unused_share(999, start, end, end + timedelta(seconds=1)) == 0


def test_unused_share_counts_whole_seconds_remaining() -> None:
    start, end = T0, T0 + timedelta(seconds=100)
    # 10.9 s used: 89 whole seconds remain (89.1 floored), so 89 % of 100
    assert model.unused_share(100, start, end, start + timedelta(seconds=10.9)) == 89


@given(amount=st.integers(0, 10**9), used=st.integers(0, 40 * 86400), length=st.integers(1, 40 * 86400))
def test_unused_share_is_between_zero_and_the_amount_paid_and_never_grows(amount: int, used: int,
                                                                           length: int) -> None:
    start, end = T0, T0 + timedelta(seconds=length)
    share = model.unused_share(amount, start, end, start + timedelta(seconds=used))
    later = model.unused_share(amount, start, end, start + timedelta(seconds=used + 1))
    assert 0 <= later <= share <= amount


def test_dunning_retries_after_one_three_five_and_seven_days_then_past_due() -> None:
    due = T0
    now = due
    steps = []
    status = Status.ACTIVE
    for attempt in range(1, 6):
        after = model.after_failure(status, attempt, due, now)
        steps.append((after.status, after.next_action_at - due, after.final))
        status, now = after.status, after.next_action_at
    assert steps == [
        (Status.ACTIVE, timedelta(days=1), False),
        (Status.ACTIVE, timedelta(days=3), False),
        (Status.ACTIVE, timedelta(days=5), False),
        (Status.ACTIVE, timedelta(days=7), False),
        (Status.PAST_DUE, timedelta(days=7 + model.PAST_DUE_DAYS), True),
    ]
    assert model.due_action(Status.PAST_DUE, True, False) is Due.EXPIRE


def test_a_trial_that_ends_unpaid_goes_into_grace_as_active() -> None:
    after = model.after_failure(Status.TRIALING, 1, T0, T0)
    assert after.status is Status.ACTIVE and after.next_action_at == T0 + timedelta(days=1)


def test_due_action_renews_retries_or_ends() -> None:
    assert model.due_action(Status.ACTIVE, False, False) is Due.RENEW
    assert model.due_action(Status.TRIALING, False, False) is Due.RENEW
    assert model.due_action(Status.ACTIVE, True, False) is Due.RETRY
    assert model.due_action(Status.ACTIVE, True, True) is Due.RETRY  # an unpaid period is collected first
    assert model.due_action(Status.ACTIVE, False, True) is Due.END


def test_a_canceled_subscription_goes_nowhere() -> None:
    for target in Status:
        with pytest.raises(InvalidTransition):
            model.transition(Status.CANCELED, target)
    with pytest.raises(InvalidTransition):
        model.transition(Status.TRIALING, Status.PAST_DUE)


def test_benefits_apply_only_while_trialing_or_active() -> None:
    assert [s for s in Status if model.has_benefits(s)] == [Status.TRIALING, Status.ACTIVE]


def test_a_plan_needs_a_positive_price_a_sane_trial_and_benefits_in_its_currency() -> None:
    ok = Benefits("USD", 1500, 5000)
    model.check_plan(Money(999, "USD"), 30, ok)
    for price, trial, benefits, param in [
        (Money(0, "USD"), 0, ok, "amount"),
        (Money(999, "USD"), -1, ok, "trial_days"),
        (Money(999, "USD"), 0, Benefits("EUR"), "currency"),
        (Money(999, "USD"), 0, Benefits("USD", service_fee_discount_bps=10_001), "benefits.service_fee_discount_bps"),
    ]:
        with pytest.raises(ValidationFailed) as err:
            model.check_plan(price, trial, benefits)
        assert err.value.param == param


def test_each_attempt_of_a_period_has_its_own_payments_key_and_a_retry_the_same() -> None:
    assert model.renewal_key("sub_1", 3, 1) != model.renewal_key("sub_1", 3, 2) == model.renewal_key("sub_1", 3, 2)
    assert model.renewal_key("sub_1", 3, 1) != model.renewal_key("sub_1", 4, 1)


@given(st.integers(min_value=0, max_value=model.MAX_TRIAL_DAYS))
def test_one_trial_per_customer_a_customer_who_had_one_gets_none_on_any_plan(plan_trial_days: int) -> None:
    assert model.trial_days(False, plan_trial_days) == plan_trial_days
    assert model.trial_days(True, plan_trial_days) == 0
