"""Wire formats (msgspec Structs), shaped like Stripe's objects so integrators feel at home."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from kernel.fielddoc import AMOUNT, CURRENCY, HAS_MORE, LIMIT, doc
from kernel.ids import id_pattern
from kernel.pagination import id_cursor

Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Positive = Annotated[int, msgspec.Meta(ge=1, le=10**12)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100)]
# A list's cursor is the last id of the previous page, of the list's kind; a malformed one, or another
# kind's id, is 400 cursor_invalid, on every list (kernel/pagination.py).


ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
M = msgspec.Meta
CREATED = doc("When it was created, seconds since the epoch (UTC)", 1765130400)
CUSTOMER = doc("The customer's account id", f"cus_{ULID}")
PI = doc("The PaymentIntent's id", f"pi_{ULID}")
PM = doc("A saved card's id (`pm_...`), or `wallet` to pay from the customer's wallet", f"pm_{ULID}")
IP = doc("The customer's IP address, for the fraud screen", "203.0.113.7")
DEVICE = doc("The customer's device id, for the fraud screen", "ios-7F3A9C")
STARTING_AFTER = doc("The last id of the previous page: the page after it; absent for the first page",
                     f"pi_{ULID}")
LIST = doc("Always `list`", "list")


def always(name: str) -> msgspec.Meta:
    """The `object` field: what kind of object this is, Stripe's way."""
    return doc(f"Always `{name}`", name)


class CardDetails(msgspec.Struct, forbid_unknown_fields=True):
    """A card to tokenize (test numbers: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined)."""

    number: Annotated[str, M(min_length=12, max_length=23), doc("The card number; spaces and dashes are ignored",
                                                                "4242424242424242")]
    exp_month: Annotated[int, M(ge=1, le=12), doc("Expiry month, 1-12", 12)]
    exp_year: Annotated[int, M(ge=2000, le=2200), doc("Expiry year, four digits", 2030)]
    cvc: Annotated[str, M(min_length=3, max_length=4), doc("The card's security code (never stored)", "123")]

    def __repr__(self) -> str:
        return f"CardDetails(last4={self.number[-4:]!r})"


class BillingDetails(msgspec.Struct, forbid_unknown_fields=True):
    """Who the card belongs to."""

    name: Annotated[str | None, doc("The cardholder's name", "Ada Lovelace")] = None


class CreatePaymentMethod(msgspec.Struct, forbid_unknown_fields=True):
    """A card to save for the calling customer."""

    card: Annotated[CardDetails, doc("The card")]
    type: Annotated[Literal["card"], doc("Always `card`", "card")] = "card"
    billing_details: Annotated[BillingDetails | None, doc("The cardholder")] = None

    def __repr__(self) -> str:
        return "CreatePaymentMethod(card=...)"


class CardView(msgspec.Struct):
    """A saved card, without its number."""

    brand: Annotated[str, doc("The card network", "visa")]
    last4: Annotated[str, doc("The number's last four digits", "4242")]
    exp_month: Annotated[int, doc("Expiry month", 12)]
    exp_year: Annotated[int, doc("Expiry year", 2030)]
    fingerprint: Annotated[str, doc("Same for the same card number, whoever saves it", "Xt5EWLLDS7FJjR1c")]


class PaymentMethodView(msgspec.Struct):
    """A customer's saved card."""

    id: Annotated[str, doc("The payment method's id", f"pm_{ULID}")]
    customer: Annotated[str, CUSTOMER]
    card: Annotated[CardView, doc("The card")]
    billing_details: Annotated[BillingDetails, doc("The cardholder")]
    created: Annotated[int, CREATED]
    is_default: Annotated[bool, doc("Whether checkout uses it when none is named", True)]
    object: Annotated[str, always("payment_method")] = "payment_method"
    type: Annotated[str, doc("Always `card`", "card")] = "card"


class PaymentMethodList(msgspec.Struct):
    """The customer's saved cards."""

    data: Annotated[list[PaymentMethodView], doc("The cards", [])]
    has_more: Annotated[bool, HAS_MORE] = False
    object: Annotated[str, LIST] = "list"


class CreatePaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    """A payment to make: a hold on a card (manual capture) or a charge (automatic)."""

    amount: Annotated[Positive, AMOUNT]
    currency: Annotated[Currency, CURRENCY]
    payment_method: Annotated[str | None, PM] = None
    confirm: Annotated[bool, doc("Confirm at once (authorize the card) instead of with a second call", True)] = False
    capture_method: Annotated[Literal["manual", "automatic"], doc(
        "`manual`: hold the amount, capture later; `automatic`: charge at once", "manual")] = "manual"
    description: Annotated[str | None, doc("Free text shown to operators", "Order ord_123")] = None
    metadata: Annotated[dict[str, str], doc("Your own key-value pairs, returned as given", {"cart": "c-991"})] = {}
    ip: Annotated[str | None, IP] = None  # risk context, as Stripe Radar's session data
    device_id: Annotated[str | None, DEVICE] = None
    promo_code: Annotated[str | None, doc("A promo code the payment redeems, for the fraud screen",
                                          "WELCOME10")] = None
    conversion_quote: Annotated[Annotated[str, msgspec.Meta(pattern=id_pattern("cvq"))] | None, doc(
        "With payment_method \"wallet\" and confirm: the customer's conversion quote (POST "
        "/v1/conversion_quotes) for exactly this amount, accepted by this payment",
        f"cvq_{ULID}")] = None


class ConfirmPaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    """Confirm a PaymentIntent: authorize the card, or finish 3-D Secure."""

    payment_method: Annotated[str | None, PM] = None
    # The outcome of the customer's 3-D Secure challenge (test mode stands in for the issuer's page).
    authentication: Annotated[Literal["succeeded", "failed"] | None, doc(
        "The outcome of the customer's 3-D Secure challenge (test mode stands in for the issuer's page)",
        "succeeded")] = None
    ip: Annotated[str | None, IP] = None
    device_id: Annotated[str | None, DEVICE] = None


class CapturePaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    """Capture a held PaymentIntent."""

    amount_to_capture: Annotated[Positive | None, doc(
        "Minor units to capture, up to the authorized amount; left out: all of it", 2450)] = None


class CancelPaymentIntent(msgspec.Struct, forbid_unknown_fields=True):
    """Cancel a PaymentIntent, releasing its hold."""

    cancellation_reason: Annotated[Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None,
                                   doc("Why", "requested_by_customer")] = None


class LastPaymentError(msgspec.Struct):
    """Why the last attempt to pay failed."""

    type: Annotated[str, doc("The kind of error", "card_error")]
    code: Annotated[str | None, doc("The error code", "card_declined")] = None
    decline_code: Annotated[str | None, doc("The issuer's reason", "insufficient_funds")] = None
    message: Annotated[str | None, doc("Human-readable text", "Your card has insufficient funds.")] = None


class PaymentIntentView(msgspec.Struct):
    """A PaymentIntent: one payment from authorization to capture and refunds, Stripe-shaped."""

    id: Annotated[str, PI]
    amount: Annotated[int, AMOUNT]
    currency: Annotated[str, CURRENCY]
    status: Annotated[str, doc("requires_payment_method, requires_confirmation, requires_action, processing, "
                               "requires_capture, canceled or succeeded", "requires_capture")]
    customer: Annotated[str, CUSTOMER]
    payment_method: Annotated[str | None, PM]
    capture_method: Annotated[str, doc("manual or automatic", "manual")]
    amount_capturable: Annotated[int, doc("Minor units held and capturable now", 2450)]
    amount_received: Annotated[int, doc("Minor units captured", 0)]
    amount_refunded: Annotated[int, doc("Minor units refunded", 0)]
    created: Annotated[int, CREATED]
    metadata: Annotated[dict[str, Any], doc("The key-value pairs given at creation", {"cart": "c-991"})]
    next_action: Annotated[dict[str, Any] | None, doc(
        "With `requires_action`: what the customer must do (3-D Secure)",
        {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})] = None
    last_payment_error: Annotated[LastPaymentError | None, doc("Why the last attempt failed, if it did")] = None
    cancellation_reason: Annotated[str | None, doc("Why it was canceled", None)] = None
    object: Annotated[str, always("payment_intent")] = "payment_intent"


class PaymentIntentList(msgspec.Struct):
    """A page of PaymentIntents, newest first."""

    data: Annotated[list[PaymentIntentView], doc("The PaymentIntents of this page", [])]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


class CreateRefund(msgspec.Struct, forbid_unknown_fields=True):
    """A refund of a captured PaymentIntent."""

    payment_intent: Annotated[str, doc("The captured PaymentIntent to refund", f"pi_{ULID}")]
    amount: Annotated[Positive | None, doc("Minor units to refund; left out: all that is left", 500)] = None
    reason: Annotated[Literal["duplicate", "fraudulent", "requested_by_customer"] | None,
                      doc("Why", "requested_by_customer")] = None
    destination: Annotated[Literal["card", "wallet"], doc("Back to the card, or to the customer's wallet",
                                                          "card")] = "card"


class RefundView(msgspec.Struct):
    """A refund."""

    id: Annotated[str, doc("The refund's id", f"re_{ULID}")]
    payment_intent: Annotated[str, PI]
    amount: Annotated[int, AMOUNT]
    currency: Annotated[str, CURRENCY]
    status: Annotated[str, doc("pending, succeeded or failed", "succeeded")]
    reason: Annotated[str | None, doc("Why", "requested_by_customer")]
    destination: Annotated[str, doc("card or wallet", "card")]
    created: Annotated[int, CREATED]
    object: Annotated[str, always("refund")] = "refund"


class IntentListQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Paging payment intents, Stripe's way."""

    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("pi")] | None, STARTING_AFTER] = None


class PayoutListQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Paging payouts, Stripe's way."""

    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("po")] | None,
                              doc("The last payout id of the previous page", f"po_{ULID}")] = None


TenantId = Annotated[str, msgspec.Meta(pattern=id_pattern("ten")), doc(
    "Operators: the tenant whose money to read; staff: their own only (another is 404)", f"ten_{ULID}")]


class MerchantTenantQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Whose money: operators name the tenant."""

    tenant_id: TenantId | None = None


class MerchantPayoutsQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Paging the tenant's payouts."""

    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("po")] | None,
                              doc("The last payout id of the previous page", f"po_{ULID}")] = None
    tenant_id: TenantId | None = None


class Balance(msgspec.Struct):
    """One ledger account's balance."""

    account: Annotated[str, doc("The ledger account", f"customer_wallet:cus_{ULID}")]
    kind: Annotated[str, doc("customer_wallet, courier_earnings or restaurant_payable", "courier_earnings")]
    currency: Annotated[str, CURRENCY]
    available: Annotated[int, doc("Minor units available", 4200)]


class MerchantBalanceAmounts(msgspec.Struct):
    """A tenant's balance in one currency."""

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
    """The caller's tenant's balance per currency."""

    tenant_id: Annotated[str, msgspec.Meta(description="the restaurant tenant", examples=[f"ten_{ULID}"])]
    balances: Annotated[list[MerchantBalanceAmounts], msgspec.Meta(description="one entry per currency")]
    object: Annotated[str, always("merchant_balance")] = "merchant_balance"


class PayoutScheduleIn(msgspec.Struct, forbid_unknown_fields=True):
    """When the tenant is paid out."""

    every: Annotated[Literal["daily", "weekly"], msgspec.Meta(description="how often", examples=["weekly"])]
    currency: Annotated[Currency, msgspec.Meta(description="the balance paid out", examples=["EUR"])]
    minimum_amount: Annotated[int, msgspec.Meta(ge=0, le=10**12, description="pay only when at least this much "
                                                "(minor units) is available", examples=[5000])] = 0
    weekday: Annotated[Annotated[int, msgspec.Meta(ge=0, le=6)] | None, doc(
        "weekly: the day, 0 = Monday (UTC)", 0)] = None


class PayoutSchedule(msgspec.Struct):
    """The tenant's payout schedule."""

    every: Annotated[str, doc("daily or weekly", "weekly")]
    currency: Annotated[str, doc("The balance paid out", "EUR")]
    minimum_amount: Annotated[int, doc("Paid only when at least this much (minor units) is available", 5000)]
    weekday: Annotated[int | None, doc("weekly: the day, 0 = Monday (UTC)", 0)]
    next_run_at: Annotated[datetime, doc("when the next payout is made (midnight UTC)", "2026-12-14T00:00:00Z")]
    object: Annotated[str, always("payout_schedule")] = "payout_schedule"


class PayoutSettles(msgspec.Struct):
    """A statement line a payout settles."""

    order_id: Annotated[str, doc("The order", f"ord_{ULID}")]
    net: Annotated[int, msgspec.Meta(description="the order's net in the payout's period (minor units), as on "
                                     "the statement", examples=[2295])]


class MerchantPayoutView(msgspec.Struct):
    """A payout to the tenant."""

    id: Annotated[str, doc("The payout's id", f"po_{ULID}")]
    amount: Annotated[int, msgspec.Meta(description="minor units", examples=[4360])]
    currency: Annotated[str, CURRENCY]
    status: Annotated[str, msgspec.Meta(description="pending, in_transit, paid or failed", examples=["paid"])]
    failure_reason: Annotated[str | None, doc("why it failed (its money is back in the balance and the next run "
                                              "pays it again)", None)]
    created: Annotated[int, CREATED]
    settles: Annotated[list[PayoutSettles], doc("the statement lines it settles: orders whose money moved in its "
                                                "period", [{"order_id": f"ord_{ULID}", "net": 2295}])]
    held_back: Annotated[int, msgspec.Meta(description="the settled lines' nets less the amount: what the "
                                           "pending period and the refund reserve kept in the balance",
                                           examples=[230])]
    failed_at: Annotated[datetime | None, msgspec.Meta(description="when it failed (null unless failed)",
                                                       examples=["2026-12-07T09:00:00Z"])]
    retried_by: Annotated[str | None, msgspec.Meta(
        description="a failed payout's retry: the next payout of the same balance, which paid what was "
                    "available then, this one's money included (null until it is made)",
        examples=[f"po_{ULID}"])]
    next_attempt_at: Annotated[datetime | None, msgspec.Meta(
        description="a failed payout not retried yet: the payout schedule's next run in its currency, which "
                    "pays its money again with what is available then, if that reaches the minimum (null "
                    "without such a schedule: an operator's batch pays it)", examples=["2026-12-08T06:00:00Z"])]
    retry_of: Annotated[list[str], msgspec.Meta(description="the failed payouts whose money this one pays again",
                                                examples=[[f"po_{ULID}"]])]
    object: Annotated[str, always("merchant_payout")] = "merchant_payout"


class MerchantPayoutList(msgspec.Struct):
    """A page of the tenant's payouts, newest first."""

    data: Annotated[list[MerchantPayoutView], doc("The payouts of this page", [])]
    has_more: Annotated[bool, HAS_MORE]


class WalletView(msgspec.Struct):
    """An owner's balances."""

    owner: Annotated[str, doc("The owner's account id", f"cou_{ULID}")]
    balances: Annotated[list[Balance], doc("One per account kind and currency", [])]
    object: Annotated[str, always("wallet")] = "wallet"


class WalletTransaction(msgspec.Struct):
    """One movement in or out of a wallet."""

    id: Annotated[str, doc("The journal entry's id", f"je_{ULID}")]  # the journal entry
    amount: Annotated[int, doc("Minor units of `currency`: positive into the wallet, negative out of it", -450)]
    currency: Annotated[str, CURRENCY]
    kind: Annotated[str, doc("What moved the money", "payout")]
    description: Annotated[str, doc("Human-readable text", "Instant payout")]
    reference: Annotated[str | None, doc("What it refers to (an order, a payout)", f"po_{ULID}")]
    created: Annotated[datetime, doc("When (UTC)", "2026-12-07T18:00:00Z")]


class WalletTransactions(msgspec.Struct):
    """A page of wallet movements, newest first."""

    data: Annotated[list[WalletTransaction], doc("The movements of this page", [])]
    has_more: Annotated[bool, HAS_MORE]
    next_cursor: Annotated[str | None, doc("Pass as `starting_after` for the next page", f"je_{ULID}")] = None
    object: Annotated[str, LIST] = "list"


class WalletQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Which wallet history, and which page of it."""

    currency: Annotated[Currency | None, doc(
        "One currency's movements; without it, every currency's, each marked with its own", "EUR")] = None
    kind: Annotated[Literal["customer_wallet", "courier_earnings", "restaurant_payable"] | None,
                    doc("The account kind; default: customer_wallet", "courier_earnings")] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("je")] | None,  # a journal entry id
                              doc("The last journal entry id of the previous page", f"je_{ULID}")] = None


class GrantCredit(msgspec.Struct, forbid_unknown_fields=True):
    """Promotional credit for a customer's wallet."""

    customer: Annotated[str, CUSTOMER]
    amount: Annotated[Positive, AMOUNT]
    currency: Annotated[Currency, CURRENCY]
    expires_at: Annotated[datetime, doc("When what is left of it expires", "2027-01-31T23:59:59Z")]
    reason: Annotated[str, doc("Why (shown in the wallet history)", "promotional credit")] = "promotional credit"


class CreditView(msgspec.Struct):
    """A grant of wallet credit."""

    id: Annotated[str, doc("The credit's id", f"ccr_{ULID}")]
    customer: Annotated[str, CUSTOMER]
    amount: Annotated[int, AMOUNT]
    currency: Annotated[str, CURRENCY]
    expires_at: Annotated[datetime, doc("When what is left of it expires", "2027-01-31T23:59:59Z")]
    object: Annotated[str, always("customer_credit")] = "customer_credit"


class CreatePayout(msgspec.Struct, forbid_unknown_fields=True):
    """A courier cashes out."""

    amount: Annotated[Positive, AMOUNT]
    currency: Annotated[Currency, CURRENCY]
    method: Annotated[Literal["instant", "standard"], doc("`instant` (with a fee) or `standard` (next weekly batch)",
                                                          "instant")] = "instant"


class CreatePayoutBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Pay out every positive balance of a kind."""

    kind: Annotated[Literal["courier", "restaurant"], doc("Whose balances", "courier")]
    currency: Annotated[Currency, CURRENCY]


class UpdatePayout(msgspec.Struct, forbid_unknown_fields=True):
    """Move a payout along."""

    status: Annotated[Literal["in_transit", "paid", "failed"], doc("The new status", "paid")]
    failure_reason: Annotated[str | None, doc("With `failed`: why (the money returns to the balance)",
                                              "account_closed")] = None


class PayoutView(msgspec.Struct):
    """A payout of a courier's or a restaurant's balance."""

    id: Annotated[str, doc("The payout's id", f"po_{ULID}")]
    owner: Annotated[str, doc("Whose balance it pays out", f"cou_{ULID}")]
    kind: Annotated[str, doc("courier or restaurant", "courier")]
    amount: Annotated[int, AMOUNT]
    fee: Annotated[int, doc("The instant payout fee, in minor units", 50)]
    currency: Annotated[str, CURRENCY]
    status: Annotated[str, doc("pending, in_transit, paid or failed", "pending")]
    method: Annotated[str, doc("instant or standard", "instant")]
    batch: Annotated[str | None, doc("The batch that made it, if any", None)]
    failure_reason: Annotated[str | None, doc("Why it failed", None)]
    created: Annotated[int, CREATED]
    object: Annotated[str, always("payout")] = "payout"


class PayoutBatchView(msgspec.Struct):
    """A batch of payouts."""

    id: Annotated[str, doc("The batch's id", f"pob_{ULID}")]
    kind: Annotated[str, doc("courier or restaurant", "courier")]
    currency: Annotated[str, CURRENCY]
    payouts: Annotated[list[PayoutView], doc("The payouts made", [])]
    object: Annotated[str, always("payout_batch")] = "payout_batch"


class PayoutList(msgspec.Struct):
    """A page of payouts, newest first."""

    data: Annotated[list[PayoutView], doc("The payouts of this page", [])]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


class FraudDecisionView(msgspec.Struct):
    """A fraud screening of a payment."""

    id: Annotated[str, doc("The decision's id", f"frd_{ULID}")]
    payment_intent: Annotated[str | None, doc("The PaymentIntent screened", f"pi_{ULID}")]
    customer: Annotated[str, CUSTOMER]
    score: Annotated[int, doc("Risk score, 0-100", 12)]
    level: Annotated[str, doc("normal, elevated or highest", "normal")]
    action: Annotated[str, doc("allow, require_authentication or block", "allow")]
    reasons: Annotated[list[str], doc("What raised the score", ["new_device"])]
    created: Annotated[datetime, doc("When (UTC)", "2026-12-07T18:00:00Z")]


class FraudDecisionList(msgspec.Struct):
    """A page of fraud decisions, newest first."""

    data: Annotated[list[FraudDecisionView], doc("The decisions of this page", [])]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, LIST] = "list"


class FraudQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Filtering and paging fraud decisions."""

    level: Annotated[Literal["normal", "elevated", "highest"] | None, doc("Only this level", "elevated")] = None
    payment_intent: Annotated[str | None, doc("Only this PaymentIntent's", f"pi_{ULID}")] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("frd")] | None,  # a fraud decision id
                              doc("The last decision id of the previous page", f"frd_{ULID}")] = None


class ReconciliationRun(msgspec.Struct, forbid_unknown_fields=True):
    """The day to reconcile."""

    day: Annotated[str, doc("The day, YYYY-MM-DD (UTC)", "2026-12-06")]  # YYYY-MM-DD


class Mismatch(msgspec.Struct):
    """A difference between the processor's settlement report and the ledger."""

    kind: Annotated[str, doc("missing, extra or amount_differs", "amount_differs")]  # missing | extra | amount_differs
    ref: Annotated[str, doc("The processor's reference", "py_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    type: Annotated[str, doc("The movement's type", "capture")]
    ledger_amount: Annotated[int | None, doc("What the ledger says, in minor units", 2450)]
    processor_amount: Annotated[int | None, doc("What the processor says, in minor units", 2400)]
    currency: Annotated[str, CURRENCY]
    entry_id: Annotated[str | None, doc("The ledger's journal entry", f"je_{ULID}")] = None


class ReconciliationReport(msgspec.Struct):
    """A day's reconciliation."""

    day: Annotated[str, doc("The day, YYYY-MM-DD (UTC)", "2026-12-06")]
    matched: Annotated[int, doc("Movements that agree", 412)]
    mismatches: Annotated[list[Mismatch], doc("Movements that do not", [])]
    object: Annotated[str, always("reconciliation_report")] = "reconciliation_report"


class CreateWebhookEndpoint(msgspec.Struct, forbid_unknown_fields=True):
    """A URL to receive payment events."""

    url: Annotated[str, msgspec.Meta(pattern="^https?://"), doc("https, a public address",
                                                                "https://hooks.example.com/payments")]
    enabled_events: Annotated[list[str], doc("Event types, or `*` for all", ["payment_intent.succeeded"])] = (
        msgspec.field(default_factory=lambda: ["*"]))


class WebhookEndpointView(msgspec.Struct):
    """A payments webhook endpoint."""

    id: Annotated[str, doc("The endpoint's id", f"we_{ULID}")]
    url: Annotated[str, doc("Where events are POSTed", "https://hooks.example.com/payments")]
    enabled_events: Annotated[list[str], doc("Event types sent, `*` for all", ["*"])]
    secret: Annotated[str | None, doc("The signing secret; shown once, at creation",  # shown once, at creation
                                      "whsec_3f9a1c0e7b")] = None
    object: Annotated[str, always("webhook_endpoint")] = "webhook_endpoint"
