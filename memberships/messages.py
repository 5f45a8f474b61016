"""Wire formats (msgspec Structs), shaped like Stripe's plans, subscriptions and invoices. Times are unix
seconds, as Stripe's; amounts integer minor units. Every field carries its description and an example
(`kernel.fielddoc.doc`), so the OpenAPI document is the reference an app developer builds from."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.fielddoc import CURRENCY, HAS_MORE, LIMIT, doc
from kernel.ids import id_pattern
from kernel.pagination import id_cursor
from memberships.model import Invoice, InvoiceStatus, Plan, Subscription

Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Positive = Annotated[int, msgspec.Meta(ge=1, le=10**10)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
Region = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern="^[A-Za-z0-9_.-]+$")]
PlanId = Annotated[str, msgspec.Meta(pattern=id_pattern("plan"))]
SubscriptionId = Annotated[str, msgspec.Meta(pattern=id_pattern("sub"))]
PaymentMethodId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AccountId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]

ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
PLAN_ID = f"plan_{ULID}"
SUB_ID = f"sub_{ULID}"
INVOICE_ID = f"in_{ULID}"
CUSTOMER_ID = f"cus_{ULID}"
PM_ID = f"pm_{ULID}"
CREATED = doc("When it was created, seconds since the epoch (UTC)", 1765130400)
CUSTOMER = doc("The customer's account id", CUSTOMER_ID)
REGION = doc("The region the plan is offered in (the dispatch region's name)", "berlin")
FREE_DELIVERY = doc("Members pay no delivery fee on a food subtotal of at least this many minor units; "
                    "null: no free delivery", 1500)
FEE_DISCOUNT = doc("Basis points off the service fee for members (10000: all of it)", 5000)
PAYMENT_METHOD = doc("A saved card of the customer (`pm_...`)", PM_ID)
CUSTOMER_FILTER = doc("Operators only: one customer's (a customer always sees their own only)", CUSTOMER_ID)
LIST = doc("Always `list`", "list")

# A list's cursor (Stripe's `starting_after`): the last id of the previous page, of the list's own kind; a
# malformed one, or another kind's id, is 400 cursor_invalid (kernel/pagination.py).
PlanCursor = Annotated[Annotated[str, id_cursor("plan")] | None, doc(
    "The last plan id of the previous page: the page after it; absent for the first page", PLAN_ID)]
SubscriptionCursor = Annotated[Annotated[str, id_cursor("sub")] | None, doc(
    "The last subscription id of the previous page: the page after it; absent for the first page", SUB_ID)]
InvoiceCursor = Annotated[Annotated[str, id_cursor("in")] | None, doc(
    "The last invoice id of the previous page: the page after it; absent for the first page", INVOICE_ID)]


def always(name: str) -> msgspec.Meta:
    """The `object` field: what kind of object this is, Stripe's way."""
    return doc(f"Always `{name}`", name)


class BenefitsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What members of the plan get at quote time, in the plan's currency."""

    free_delivery_min_subtotal: Annotated[Annotated[int, msgspec.Meta(ge=0, le=10**10)] | None,
                                          FREE_DELIVERY] = None
    service_fee_discount_bps: Annotated[int, msgspec.Meta(ge=0, le=10_000), FEE_DISCOUNT] = 0


class CreatePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A membership plan: its price per interval, a trial and the benefits its members get."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200), doc("The plan's name", "DashPass Berlin")]
    region: Annotated[Region, REGION]
    amount: Annotated[Positive, doc("The price per interval in integer minor units of `currency`", 999)]
    currency: Annotated[Currency, CURRENCY]
    interval: Annotated[Literal["month", "year"], doc("How often it is charged: `month` or `year`", "month")]
    trial_days: Annotated[int, msgspec.Meta(ge=0, le=730),
                          doc("Free days before the first charge (0: charged at once)", 14)] = 0
    benefits: Annotated[BenefitsIn, doc("What members get at quote time")] = BenefitsIn()


class UpdatePlan(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Retire a plan or offer it again (price and benefits never change: make a new plan)."""

    active: Annotated[bool, doc("false: no new subscriptions (its subscriptions renew on); true: offered again",
                                False)]


class PlanQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which plans to list."""

    region: Annotated[Region | None, doc("Only the plans of this region", "berlin")] = None
    currency: Annotated[Currency | None, doc("Only the plans in this ISO 4217 currency", "EUR")] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: PlanCursor = None


class BenefitsView(msgspec.Struct, frozen=True):
    """What members of the plan get at quote time, in the plan's currency."""

    free_delivery_min_subtotal: Annotated[int | None, FREE_DELIVERY]
    service_fee_discount_bps: Annotated[int, FEE_DISCOUNT]


class PlanView(msgspec.Struct, frozen=True):
    """A membership plan."""

    id: Annotated[str, doc("The plan's id", PLAN_ID)]
    name: Annotated[str, doc("The plan's name", "DashPass Berlin")]
    region: Annotated[str, REGION]
    amount: Annotated[int, doc("The price per interval in integer minor units of `currency`", 999)]
    currency: Annotated[str, CURRENCY]
    interval: Annotated[str, doc("How often it is charged: `month` or `year`", "month")]
    trial_days: Annotated[int, doc("Free days before the first charge", 14)]
    benefits: Annotated[BenefitsView, doc("What members get at quote time")]
    active: Annotated[bool, doc("Whether it takes new subscriptions", True)]
    created: Annotated[int, CREATED]
    object: Annotated[str, always("plan")] = "plan"


class PlanList(msgspec.Struct, frozen=True):
    """Plans, newest first."""

    data: Annotated[list[PlanView], doc("The plans of this page")]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


class CreateSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Subscribe the calling customer to a plan, paid with a saved card."""

    plan: Annotated[PlanId, doc("The plan to subscribe to", PLAN_ID)]
    payment_method: Annotated[PaymentMethodId, doc("The saved card that pays each period", PM_ID)]


class UpdateSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Stripe's update: `cancel_at_period_end` (true: it ends when the period does; false: it renews
    again) and/or the card the next charges use."""

    cancel_at_period_end: Annotated[bool | None, doc("true: it ends when the current period does; false: it "
                                                     "renews again; absent: unchanged", True)] = None
    payment_method: Annotated[PaymentMethodId | None, doc("The saved card the next charges use; absent: unchanged",
                                                          PM_ID)] = None


class CancelSubscription(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancel now. `refund`: give back the unused share of the current period (pro rata by the seconds
    left, floored to whole minor units)."""

    refund: Annotated[bool, doc("Give back the unused share of the current period, pro rata", False)] = False


class SubscriptionQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which subscriptions to list."""

    customer: Annotated[AccountId | None, CUSTOMER_FILTER] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: SubscriptionCursor = None


class SubscriptionView(msgspec.Struct, frozen=True):
    """A customer's subscription to a plan."""

    id: Annotated[str, doc("The subscription's id", SUB_ID)]
    customer: Annotated[str, CUSTOMER]
    plan: Annotated[str, doc("The plan's id", PLAN_ID)]
    status: Annotated[str, doc("trialing, active (also while a failed renewal is retried), past_due (benefits "
                               "stop until its invoice is paid) or canceled", "active")]
    default_payment_method: Annotated[str, doc("The saved card the charges use", PM_ID)]
    current_period_start: Annotated[int, doc("Start of the current period, seconds since the epoch (UTC)",
                                             1765130400)]
    current_period_end: Annotated[int, doc("End of the current period (the next renewal), seconds since the "
                                           "epoch (UTC)", 1767808800)]
    trial_end: Annotated[int | None, doc("When the trial ends (or ended); null: no trial", 1766340000)]
    cancel_at_period_end: Annotated[bool, doc("Whether it ends when the current period does", False)]
    canceled_at: Annotated[int | None, doc("When it was canceled, seconds since the epoch (UTC); null: not "
                                           "canceled", None)]
    cancellation_reason: Annotated[str | None, doc("Why it ended: requested, period_end or payment_failed; "
                                                   "null: not canceled", None)]
    latest_invoice: Annotated[str | None, doc("The open invoice (a renewal in dunning), if any", INVOICE_ID)]
    next_payment_attempt: Annotated[int | None, doc("When the open invoice is charged again, seconds since the "
                                                    "epoch (UTC); null: no open invoice", None)]
    created: Annotated[int, CREATED]
    object: Annotated[str, always("subscription")] = "subscription"


class SubscriptionList(msgspec.Struct, frozen=True):
    """Subscriptions, newest first."""

    data: Annotated[list[SubscriptionView], doc("The subscriptions of this page")]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


class InvoiceQuery(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which invoices to list."""

    subscription: Annotated[SubscriptionId | None, doc("Only the invoices of this subscription", SUB_ID)] = None
    customer: Annotated[AccountId | None, CUSTOMER_FILTER] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: InvoiceCursor = None


class PayInvoice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Pay an open invoice now, with the subscription's card or `payment_method` (which the subscription
    uses from then on)."""

    payment_method: Annotated[PaymentMethodId | None, doc("A saved card to pay with, which the subscription keeps; "
                                                          "absent: the subscription's card", PM_ID)] = None


class InvoiceError(msgspec.Struct, frozen=True):
    """Why the last charge of an invoice failed."""

    code: Annotated[str, doc("The error's code", "card_declined")]
    decline_code: Annotated[str | None, doc("The card issuer's reason, for a decline", "insufficient_funds")]
    message: Annotated[str | None, doc("A message for the customer", "Your card has insufficient funds.")]


class InvoiceView(msgspec.Struct, frozen=True):
    """The bill of one period of a subscription."""

    id: Annotated[str, doc("The invoice's id", INVOICE_ID)]
    subscription: Annotated[str, doc("The subscription it bills", SUB_ID)]
    customer: Annotated[str, CUSTOMER]
    status: Annotated[str, doc("open (being collected), paid, void or uncollectible", "paid")]
    amount_due: Annotated[int, doc("What the period costs, in integer minor units of `currency`", 999)]
    amount_paid: Annotated[int, doc("What was paid, in minor units (0 until paid)", 999)]
    amount_refunded: Annotated[int, doc("What was refunded on cancellation, in minor units", 0)]
    currency: Annotated[str, CURRENCY]
    period_start: Annotated[int, doc("Start of the period billed, seconds since the epoch (UTC)", 1765130400)]
    period_end: Annotated[int, doc("End of the period billed, seconds since the epoch (UTC)", 1767808800)]
    attempt_count: Annotated[int, doc("How many times it was charged", 1)]
    payment_intent: Annotated[str | None, doc("The PaymentIntent of the last charge", f"pi_{ULID}")]
    last_payment_error: Annotated[InvoiceError | None, doc("Why the last charge failed, if it did")]
    created: Annotated[int, CREATED]
    paid_at: Annotated[int | None, doc("When it was paid, seconds since the epoch (UTC); null: not paid",
                                       1765130400)]
    object: Annotated[str, always("invoice")] = "invoice"


class InvoiceList(msgspec.Struct, frozen=True):
    """Invoices, newest first."""

    data: Annotated[list[InvoiceView], doc("The invoices of this page")]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


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
