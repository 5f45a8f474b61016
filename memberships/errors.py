"""Memberships' errors, each with a stable `code` and HTTP status (the one error middleware renders them)."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, ValidationFailed


class PlanMissing(NotFound):
    code = "plan_not_found"


class SubscriptionMissing(NotFound):
    code = "subscription_not_found"


class InvoiceMissing(NotFound):
    code = "invoice_not_found"


class PlanInactive(Conflict):
    code = "plan_inactive"


class AlreadySubscribed(Conflict):
    """The customer has a subscription that has not ended (one at a time)."""

    code = "subscription_exists"


class SubscriptionEnded(Conflict):
    code = "subscription_canceled"


class InvoiceNotOpen(Conflict):
    code = "invoice_not_open"


class PaymentMethodUnusable(ValidationFailed):
    code = "payment_method_unusable"
