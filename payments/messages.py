"""Wire formats (msgspec Structs), shaped like Stripe's objects so integrators feel at home."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from kernel.ids import id_pattern
from kernel.pagination import id_cursor

Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Positive = Annotated[int, msgspec.Meta(ge=1, le=10**12)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
# A list's cursor is the last id of the previous page, of the list's kind; a malformed one, or another
# kind's id, is 400 cursor_invalid, on every list (kernel/pagination.py).


class CardDetails(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[str, msgspec.Meta(min_length=12, max_length=23)]
    exp_month: Annotated[int, msgspec.Meta(ge=1, le=12)]
    exp_year: Annotated[int, msgspec.Meta(ge=2000, le=2200)]
    cvc: Annotated[str, msgspec.Meta(min_length=3, max_length=4)]

    def __repr__(self) -> str:
        return f"CardDetails(last4={self.number[-4:]!r})"


class BillingDetails(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None


class CreatePaymentMethod(msgspec.Struct, forbid_unknown_fields=True):
    card: CardDetails
    type: Literal["card"] = "card"
    billing_details: BillingDetails | None = None

    def __repr__(self) -> str:
        return "CreatePaymentMethod(card=...)"


class CardView(msgspec.Struct):
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


class PaymentMethodView(msgspec.Struct):
    id: str
    customer: str
    card: CardView
    billing_details: BillingDetails
    created: int
    is_default: bool
    object: str = "payment_method"
    type: str = "card"


class PaymentMethodList(msgspec.Struct):
    data: list[PaymentMethodView]
    has_more: bool = False
    object: str = "list"


class CreatePaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    amount: Positive
    currency: Currency
    payment_method: str | None = None
    confirm: bool = False
    capture_method: Literal["manual", "automatic"] = "manual"
    description: str | None = None
    metadata: dict[str, str] = {}
    ip: str | None = None  # risk context, as Stripe Radar's session data
    device_id: str | None = None
    promo_code: str | None = None


class ConfirmPaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    payment_method: str | None = None
    # The outcome of the customer's 3-D Secure challenge (test mode stands in for the issuer's page).
    authentication: Literal["succeeded", "failed"] | None = None
    ip: str | None = None
    device_id: str | None = None


class CapturePaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    amount_to_capture: Positive | None = None


class CancelPaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    cancellation_reason: Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None = None


class LastPaymentError(msgspec.Struct):
    type: str
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class PaymentIntentView(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str
    customer: str
    payment_method: str | None
    capture_method: str
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    created: int
    metadata: dict[str, Any]
    next_action: dict[str, Any] | None = None
    last_payment_error: LastPaymentError | None = None
    cancellation_reason: str | None = None
    object: str = "payment_intent"


class PaymentIntentList(msgspec.Struct):
    data: list[PaymentIntentView]
    has_more: bool
    object: str = "list"


class CreateRefund(msgspec.Struct, forbid_unknown_fields=True):
    payment_intent: str
    amount: Positive | None = None
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    destination: Literal["card", "wallet"] = "card"


class RefundView(msgspec.Struct):
    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str
    reason: str | None
    destination: str
    created: int
    object: str = "refund"


class IntentListQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("pi", "the last payment intent id of the previous page")] | None = None


class PayoutListQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("po", "the last payout id of the previous page")] | None = None


TenantId = Annotated[str, msgspec.Meta(pattern=id_pattern("ten"), description="operators: the tenant whose money "
                                       "to read; staff: their own only (another is 404)")]


class MerchantTenantQuery(msgspec.Struct, forbid_unknown_fields=True):
    tenant_id: TenantId | None = None


class MerchantPayoutsQuery(msgspec.Struct, forbid_unknown_fields=True):
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("po", "the last payout id of the previous page")] | None = None
    tenant_id: TenantId | None = None


class Balance(msgspec.Struct):
    account: str
    kind: str
    currency: str
    available: int


class MerchantBalanceAmounts(msgspec.Struct):
    currency: Annotated[str, msgspec.Meta(description="ISO 4217 code", examples=["EUR"])]
    available: Annotated[int, msgspec.Meta(description="may be paid out now (minor units)", examples=[5000])]
    pending: Annotated[int, msgspec.Meta(
        description="credited by orders delivered within the pending period, not payable yet", examples=[2295])]
    reserved_for_refunds: Annotated[int, msgspec.Meta(
        description="held back for refunds the restaurant bears: a share of what the refund window's orders "
                    "credited", examples=[115])]
    total: Annotated[int, msgspec.Meta(
        description="the ledger balance of the restaurant's payable account: available + pending + reserved",
        examples=[7410])]


class MerchantBalance(msgspec.Struct):
    tenant_id: Annotated[str, msgspec.Meta(description="the restaurant tenant", examples=["ten_01hx"])]
    balances: Annotated[list[MerchantBalanceAmounts], msgspec.Meta(description="one entry per currency")]
    object: str = "merchant_balance"


class PayoutScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    every: Annotated[Literal["daily", "weekly"], msgspec.Meta(description="how often", examples=["weekly"])]
    currency: Annotated[Currency, msgspec.Meta(description="the balance paid out", examples=["EUR"])]
    minimum_amount: Annotated[int, msgspec.Meta(ge=0, le=10**12, description="pay only when at least this much "
                                                "(minor units) is available", examples=[5000])] = 0
    weekday: Annotated[int, msgspec.Meta(ge=0, le=6, description="weekly: the day, 0 = Monday (UTC)",
                                         examples=[0])] | None = None


class PayoutSchedule(msgspec.Struct):
    every: Annotated[str, msgspec.Meta(examples=["weekly"])]
    currency: Annotated[str, msgspec.Meta(examples=["EUR"])]
    minimum_amount: Annotated[int, msgspec.Meta(examples=[5000])]
    weekday: Annotated[int | None, msgspec.Meta(examples=[0])]
    next_run_at: Annotated[datetime, msgspec.Meta(description="when the next payout is made (midnight UTC)")]
    object: str = "payout_schedule"


class PayoutSettles(msgspec.Struct):
    order_id: Annotated[str, msgspec.Meta(examples=["ord_01hx"])]
    net: Annotated[int, msgspec.Meta(description="the order's net in the payout's period (minor units), as on "
                                     "the statement", examples=[2295])]


class MerchantPayoutView(msgspec.Struct):
    id: Annotated[str, msgspec.Meta(examples=["po_01hx"])]
    amount: Annotated[int, msgspec.Meta(description="minor units", examples=[4360])]
    currency: Annotated[str, msgspec.Meta(examples=["EUR"])]
    status: Annotated[str, msgspec.Meta(description="pending, in_transit, paid or failed", examples=["paid"])]
    failure_reason: Annotated[str | None, msgspec.Meta(description="why it failed (its money is back in the "
                                                       "balance and the next run pays it again)")]
    created: Annotated[int, msgspec.Meta(description="unix seconds")]
    settles: Annotated[list[PayoutSettles], msgspec.Meta(description="the statement lines it settles: orders "
                                                         "whose money moved in its period")]
    held_back: Annotated[int, msgspec.Meta(description="the settled lines' nets less the amount: what the "
                                           "pending period and the refund reserve kept in the balance",
                                           examples=[230])]
    failed_at: Annotated[datetime | None, msgspec.Meta(description="when it failed (null unless failed)")]
    retried_by: Annotated[str | None, msgspec.Meta(
        description="a failed payout's retry: the next payout of the same balance, which paid what was "
                    "available then, this one's money included (null until it is made)", examples=["po_01hy"])]
    next_attempt_at: Annotated[datetime | None, msgspec.Meta(
        description="a failed payout not retried yet: the payout schedule's next run in its currency, which "
                    "pays its money again with what is available then, if that reaches the minimum (null "
                    "without such a schedule: an operator's batch pays it)")]
    retry_of: Annotated[list[str], msgspec.Meta(description="the failed payouts whose money this one pays again")]
    object: str = "merchant_payout"


class MerchantPayoutList(msgspec.Struct):
    data: list[MerchantPayoutView]
    has_more: bool


class WalletView(msgspec.Struct):
    owner: str
    balances: list[Balance]
    object: str = "wallet"


class WalletTransaction(msgspec.Struct):
    id: str  # the journal entry
    amount: int  # + into the wallet, - out of it
    kind: str
    description: str
    reference: str | None
    created: datetime


class WalletTransactions(msgspec.Struct):
    data: list[WalletTransaction]
    has_more: bool
    next_cursor: str | None = None
    object: str = "list"


class WalletQuery(msgspec.Struct, forbid_unknown_fields=True):
    currency: Currency = "EUR"
    kind: Literal["customer_wallet", "courier_earnings", "restaurant_payable"] | None = None
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("je", "the last journal entry id of the previous page")] | None = None


class GrantCredit(msgspec.Struct, forbid_unknown_fields=True):
    customer: str
    amount: Positive
    currency: Currency
    expires_at: datetime
    reason: str = "promotional credit"


class CreditView(msgspec.Struct):
    id: str
    customer: str
    amount: int
    currency: str
    expires_at: datetime
    object: str = "customer_credit"


class CreatePayout(msgspec.Struct, forbid_unknown_fields=True):
    amount: Positive
    currency: Currency
    method: Literal["instant", "standard"] = "instant"


class CreatePayoutBatch(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["courier", "restaurant"]
    currency: Currency


class UpdatePayout(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["in_transit", "paid", "failed"]
    failure_reason: str | None = None


class PayoutView(msgspec.Struct):
    id: str
    owner: str
    kind: str
    amount: int
    fee: int
    currency: str
    status: str
    method: str
    batch: str | None
    failure_reason: str | None
    created: int
    object: str = "payout"


class PayoutBatchView(msgspec.Struct):
    id: str
    kind: str
    currency: str
    payouts: list[PayoutView]
    object: str = "payout_batch"


class PayoutList(msgspec.Struct):
    data: list[PayoutView]
    has_more: bool
    object: str = "list"


class FraudDecisionView(msgspec.Struct):
    id: str
    payment_intent: str | None
    customer: str
    score: int
    level: str
    action: str
    reasons: list[str]
    created: datetime


class FraudDecisionList(msgspec.Struct):
    data: list[FraudDecisionView]
    has_more: bool
    object: str = "list"


class FraudQuery(msgspec.Struct, forbid_unknown_fields=True):
    level: Literal["normal", "elevated", "highest"] | None = None
    payment_intent: str | None = None
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("frd", "the last fraud decision id of the previous page")] | None = None


class ReconciliationRun(msgspec.Struct, forbid_unknown_fields=True):
    day: str  # YYYY-MM-DD


class Mismatch(msgspec.Struct):
    kind: str  # missing | extra | amount_differs
    ref: str
    type: str
    ledger_amount: int | None
    processor_amount: int | None
    currency: str
    entry_id: str | None = None


class ReconciliationReport(msgspec.Struct):
    day: str
    matched: int
    mismatches: list[Mismatch]
    object: str = "reconciliation_report"


class CreateWebhookEndpoint(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(pattern="^https?://")]
    enabled_events: list[str] = msgspec.field(default_factory=lambda: ["*"])


class WebhookEndpointView(msgspec.Struct):
    id: str
    url: str
    enabled_events: list[str]
    secret: str | None = None  # shown once, at creation
    object: str = "webhook_endpoint"
