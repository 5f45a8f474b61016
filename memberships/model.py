"""The pure memberships domain: plans, the subscription state machine, billing periods, the dunning
schedule and proration. No I/O, no asyncio.

Billing periods are counted from the subscription's `anchor` (the trial's end, or the moment it was
paid for first): period `k` is `[period_end(anchor, k - 1), period_end(anchor, k))`, calendar months
(or years) later, the day clamped to the month's length (31 January, 28 February, 31 March), so the
day of the month never drifts.

Dunning (a renewal that fails or needs 3-D Secure, which off-session cannot give): the invoice stays
open and the charge is retried `RETRY_DAYS` after the renewal was due (1, 3, 5 and 7 days). Meanwhile
the subscription stays `active` (a grace period: its benefits go on). When the last retry fails it
becomes `past_due` (benefits stop) and `PAST_DUE_DAYS` later `canceled`, its invoice `uncollectible`,
unless the customer pays it first (`POST /v1/invoices/{id}/pay`), which makes it `active` again.

Proration (a refund of the current period on request): the amount paid for the period times the
seconds remaining over the period's seconds, floored to whole minor units (round half down / floor:
a refund never exceeds the unused share; the fraction of a minor unit stays with the platform).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.money import Money


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class Status(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


# Which status may follow which: a trial ends paid (active), in dunning (active, grace) or canceled.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.TRIALING: frozenset({Status.ACTIVE, Status.CANCELED}),
    Status.ACTIVE: frozenset({Status.ACTIVE, Status.PAST_DUE, Status.CANCELED}),
    Status.PAST_DUE: frozenset({Status.ACTIVE, Status.CANCELED}),
    Status.CANCELED: frozenset(),
}
LIVE = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE)  # not ended: the renewal job looks at these
BENEFITS = (Status.TRIALING, Status.ACTIVE)  # the statuses whose benefits apply at quote time

RETRY_DAYS: tuple[int, ...] = (1, 3, 5, 7)  # retries of a failed renewal, days after it was due
PAST_DUE_DAYS = 7  # days past_due (after the last retry failed) before the subscription is canceled
MAX_TRIAL_DAYS = 730


def transition(current: Status, target: Status) -> Status:
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"a subscription cannot go from {current} to {target}",
                                code="subscription_unexpected_state")
    return target


def has_benefits(status: Status) -> bool:
    return status in BENEFITS


# ---------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class Benefits:
    """What a member gets at quote time: no delivery fee on a food subtotal of at least
    `free_delivery_min_subtotal` (None: no free delivery), and `service_fee_discount_bps` off the
    service fee (10,000: all of it). Minor units of the plan's currency."""

    currency: str
    free_delivery_min_subtotal: int | None = None
    service_fee_discount_bps: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    region: str
    price: Money
    interval: Interval
    trial_days: int
    benefits: Benefits
    active: bool
    created_at: datetime


def check_plan(price: Money, trial_days: int, benefits: Benefits) -> None:
    """An operator's plan: a positive price, a trial of 0 to 730 days, benefits in the plan's currency."""
    if price.amount <= 0:
        raise ValidationFailed("a plan's price must be positive", param="amount")
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise ValidationFailed(f"trial_days must be between 0 and {MAX_TRIAL_DAYS}", param="trial_days")
    if benefits.currency != price.currency:
        raise ValidationFailed("benefits are in the plan's currency", param="currency")
    if benefits.free_delivery_min_subtotal is not None and benefits.free_delivery_min_subtotal < 0:
        raise ValidationFailed("the free delivery minimum cannot be negative",
                               param="benefits.free_delivery_min_subtotal")
    if not 0 <= benefits.service_fee_discount_bps <= 10_000:
        raise ValidationFailed("service_fee_discount_bps must be between 0 and 10000",
                               param="benefits.service_fee_discount_bps")


def trial_days(had_trial: bool, plan_trial_days: int) -> int:
    """The free days a new subscription starts with: the plan's trial, unless the customer has had a trial
    before (any subscription of theirs that started trialing, on any plan): one trial per customer, ever;
    a second subscription is charged for its first period at once (0: no trial)."""
    return 0 if had_trial else plan_trial_days


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    customer_id: str
    plan_id: str
    status: Status
    payment_method_id: str
    anchor: datetime
    period_index: int  # 0: the trial; k >= 1: the k-th paid period
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    cancel_reason: str | None
    next_action_at: datetime | None
    open_invoice_id: str | None
    dunning_attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    subscription_id: str
    customer_id: str
    period_index: int
    period_start: datetime
    period_end: datetime
    amount: Money
    status: InvoiceStatus
    attempts: int
    payment_intent_id: str | None
    last_error: dict[str, str] | None
    amount_refunded: int
    refund_id: str | None
    created_at: datetime
    paid_at: datetime | None


# ---------------------------------------------------------------- periods


def period_end(anchor: datetime, interval: Interval, n: int) -> datetime:
    """The end of period `n` counted from `anchor` (period 0 ends at the anchor itself): `n` months
    (or years) later, on the anchor's day, clamped to the length of the month."""
    months = n * (12 if interval is Interval.YEAR else 1)
    total = anchor.month - 1 + months
    year, month = anchor.year + total // 12, total % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period(anchor: datetime, interval: Interval, n: int) -> tuple[datetime, datetime]:
    """Period `n` (≥ 1) as [start, end)."""
    return period_end(anchor, interval, n - 1), period_end(anchor, interval, n)


# ---------------------------------------------------------------- proration


def unused_share(amount_paid: int, start: datetime, end: datetime, now: datetime) -> int:
    """What a refund of the rest of the period [start, end) gives back at `now`: `amount_paid` times
    the whole seconds remaining over the period's seconds, floored (see the module docstring)."""
    if amount_paid < 0:
        raise ValueError("an amount paid cannot be negative")
    total = (end - start) // timedelta(seconds=1)
    if total <= 0 or now >= end:
        return 0
    remaining = min(total, (end - now) // timedelta(seconds=1))
    return amount_paid * remaining // total


# ---------------------------------------------------------------- the renewal job's decisions


class Due(StrEnum):
    """What the renewal job does with a subscription whose `next_action_at` has come."""

    RENEW = "renew"  # charge the next period
    RETRY = "retry"  # charge the open invoice again (dunning)
    END = "end"  # cancel_at_period_end: the period is over, cancel
    EXPIRE = "expire"  # past_due too long: cancel, the invoice uncollectible


def due_action(status: Status, open_invoice: bool, cancel_at_period_end: bool) -> Due:
    if status is Status.PAST_DUE:
        return Due.EXPIRE
    if open_invoice:
        return Due.RETRY
    if cancel_at_period_end:
        return Due.END
    return Due.RENEW


@dataclass(frozen=True, slots=True)
class AfterFailure:
    status: Status
    next_action_at: datetime  # the next retry, or (past_due) when the subscription is canceled
    final: bool  # the last retry failed: past_due now


def after_failure(status: Status, failed_attempts: int, due_at: datetime, now: datetime) -> AfterFailure:
    """Where a subscription goes when the `failed_attempts`-th charge of the invoice due at `due_at`
    failed (1: the renewal itself): the next retry `RETRY_DAYS` after `due_at`, in grace (`active`),
    or after the last one `past_due` until `PAST_DUE_DAYS` later."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts from 1")
    if failed_attempts <= len(RETRY_DAYS):
        target = Status.ACTIVE if status is Status.TRIALING else status
        return AfterFailure(transition(status, target), due_at + timedelta(days=RETRY_DAYS[failed_attempts - 1]),
                            False)
    return AfterFailure(transition(status, Status.PAST_DUE), now + timedelta(days=PAST_DUE_DAYS), True)


def renewal_key(subscription_id: str, period_index: int, attempt: int) -> str:
    """The payments idempotency key of one charge attempt of a subscription's period: named by what the
    charge is for, not by the invoice row (a worker that rolled back makes a new one), so a retry of the
    same attempt reaches the same charge at the processor; the next attempt is a new one."""
    return f"membership:{subscription_id}:{period_index}:{attempt}"
