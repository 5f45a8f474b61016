"""Wire formats (msgspec Structs), shaped like Stripe's plans, subscriptions and invoices. Times are unix
seconds, as Stripe's; amounts integer minor units."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.ids import id_pattern
from memberships.model import Invoice, InvoiceStatus, Plan, Subscription

Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Positive = Annotated[int, msgspec.Meta(ge=1, le=10**10)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Region = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.-]+$")]
PlanId = Annotated[str, msgspec.Meta(pattern=id_pattern("plan"))]
PaymentMethodId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class BenefitsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    free_delivery_min_subtotal: Annotated[int, msgspec.Meta(ge=0, le=10**10)] | None = None
    service_fee_discount_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 0


class CreatePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    region: Region
    amount: Positive
    currency: Currency
    interval: Literal["month", "year"]
    trial_days: Annotated[int, msgspec.Meta(ge=0, le=730)] = 0
    benefits: BenefitsIn = BenefitsIn()


class UpdatePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    active: bool


class PlanQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    region: Region | None = None
    currency: Currency | None = None
    limit: Limit = 20


class BenefitsView(msgspec.Struct, frozen=True):
    free_delivery_min_subtotal: int | None
    service_fee_discount_bps: int


class PlanView(msgspec.Struct, frozen=True):
    id: str
    name: str
    region: str
    amount: int
    currency: str
    interval: str
    trial_days: int
    benefits: BenefitsView
    active: bool
    created: int
    object: str = "plan"


class PlanList(msgspec.Struct, frozen=True):
    data: list[PlanView]
    object: str = "list"


class CreateSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    plan: PlanId
    payment_method: PaymentMethodId


class UpdateSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Stripe's update: `cancel_at_period_end` (true: it ends when the period does; false: it renews
    again) and/or the card the next charges use."""

    cancel_at_period_end: bool | None = None
    payment_method: PaymentMethodId | None = None


class CancelSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancel now. `refund`: give back the unused share of the current period (pro rata by the seconds
    left, floored to whole minor units)."""

    refund: bool = False


class SubscriptionQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    limit: Limit = 20


class SubscriptionView(msgspec.Struct, frozen=True):
    id: str
    customer: str
    plan: str
    status: str
    default_payment_method: str
    current_period_start: int
    current_period_end: int
    trial_end: int | None
    cancel_at_period_end: bool
    canceled_at: int | None
    cancellation_reason: str | None
    latest_invoice: str | None  # the open one (in dunning), if any
    next_payment_attempt: int | None
    created: int
    object: str = "subscription"


class SubscriptionList(msgspec.Struct, frozen=True):
    data: list[SubscriptionView]
    object: str = "list"


class InvoiceQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subscription: Annotated[str, msgspec.Meta(pattern=id_pattern("sub"))] | None = None
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    limit: Limit = 20


class PayInvoice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Pay an open invoice now, with the subscription's card or `payment_method` (which the subscription
    uses from then on)."""

    payment_method: PaymentMethodId | None = None


class InvoiceError(msgspec.Struct, frozen=True):
    code: str
    decline_code: str | None
    message: str | None


class InvoiceView(msgspec.Struct, frozen=True):
    id: str
    subscription: str
    customer: str
    status: str
    amount_due: int
    amount_paid: int
    amount_refunded: int
    currency: str
    period_start: int
    period_end: int
    attempt_count: int
    payment_intent: str | None
    last_payment_error: InvoiceError | None
    created: int
    paid_at: int | None
    object: str = "invoice"


class InvoiceList(msgspec.Struct, frozen=True):
    data: list[InvoiceView]
    object: str = "list"


# ---------------------------------------------------------------- views of the model's values


def _unix(at: datetime | None) -> int | None:
    return None if at is None else int(at.timestamp())


def plan_view(plan: Plan) -> PlanView:
    return PlanView(id=plan.id, name=plan.name, region=plan.region, amount=plan.price.amount,
                    currency=plan.price.currency, interval=plan.interval.value, trial_days=plan.trial_days,
                    benefits=BenefitsView(plan.benefits.free_delivery_min_subtotal,
                                          plan.benefits.service_fee_discount_bps),
                    active=plan.active, created=int(plan.created_at.timestamp()))


def subscription_view(sub: Subscription) -> SubscriptionView:
    return SubscriptionView(
        id=sub.id, customer=sub.customer_id, plan=sub.plan_id, status=sub.status.value,
        default_payment_method=sub.payment_method_id, current_period_start=int(sub.current_period_start.timestamp()),
        current_period_end=int(sub.current_period_end.timestamp()), trial_end=_unix(sub.trial_end),
        cancel_at_period_end=sub.cancel_at_period_end, canceled_at=_unix(sub.canceled_at),
        cancellation_reason=sub.cancel_reason, latest_invoice=sub.open_invoice_id,
        next_payment_attempt=_unix(sub.next_action_at) if sub.open_invoice_id else None,
        created=int(sub.created_at.timestamp()))


def invoice_view(inv: Invoice) -> InvoiceView:
    err = inv.last_error
    return InvoiceView(
        id=inv.id, subscription=inv.subscription_id, customer=inv.customer_id, status=inv.status.value,
        amount_due=inv.amount.amount, amount_paid=inv.amount.amount if inv.status is InvoiceStatus.PAID else 0,
        amount_refunded=inv.amount_refunded, currency=inv.amount.currency,
        period_start=int(inv.period_start.timestamp()), period_end=int(inv.period_end.timestamp()),
        attempt_count=inv.attempts, payment_intent=inv.payment_intent_id,
        last_payment_error=InvoiceError(err.get("code", "card_declined"), err.get("decline_code"),
                                        err.get("message")) if err else None,
        created=int(inv.created_at.timestamp()), paid_at=_unix(inv.paid_at))
