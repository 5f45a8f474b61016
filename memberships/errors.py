"""Memberships' errors, each with a stable `code` and HTTP status (the one error middleware renders them)."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, ValidationFailed


class PlanMissing(NotFound):
    """No such plan. (Every 404 of the API has NotFound's one code; `param` names the id.)"""


class SubscriptionMissing(NotFound):
    """No such subscription, or another customer's."""


class InvoiceMissing(NotFound):
    """No such invoice, or another customer's."""


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
