"""The orders package's errors, each with a stable `code` and HTTP status."""

from __future__ import annotations

from kernel.errors import Conflict, DomainError, NotFound, ValidationFailed


class OrderNotFound(NotFound):
    """Unknown order, or one the caller may not see. Every 404 says `resource_missing`; `param` says which."""

    default_param = "order_id"


class QuoteNotFound(NotFound):
    """Unknown quote, or another customer's."""

    default_param = "quote_id"


class QuoteExpired(Conflict):
    """The quote is older than its validity; `extra["quote"]` carries a fresh one."""

    code = "quote_expired"


class QuoteAlreadyUsed(Conflict):
    """The quote paid for an order already (a quote is good for one order); `extra["order_id"]`
    names it."""

    code = "quote_already_used"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"this quote was ordered already, as {order_id}; ask for a new quote to order again",
                         param="quote_id", extra={"order_id": order_id})


class PriceChanged(Conflict):
    """The menu or fees moved since the quote; `extra["quote"]` carries the new price."""

    code = "price_changed"


class PromoRejected(ValidationFailed):
    code = "promo_rejected"


class StoreUnavailable(Conflict):
    code = "store_unavailable"


class NotDeliverable(ValidationFailed):
    code = "not_deliverable"


class TipNotChangeable(Conflict):
    code = "tip_not_changeable"


class AlreadyRated(Conflict):
    code = "already_rated"


class WebhookEndpointNotFound(NotFound):
    """Unknown endpoint, or another tenant's."""

    default_param = "endpoint_id"


class PromoCodeTaken(Conflict):
    code = "promo_code_taken"


class InvalidWebhookUrl(ValidationFailed):
    code = "invalid_webhook_url"


__all__ = [
    "AlreadyRated",
    "DomainError",
    "InvalidWebhookUrl",
    "OrderNotFound",
    "PriceChanged",
    "PromoCodeTaken",
    "PromoRejected",
    "QuoteAlreadyUsed",
    "QuoteExpired",
    "QuoteNotFound",
    "StoreUnavailable",
    "TipNotChangeable",
    "WebhookEndpointNotFound",
]


class TrackingLinkInvalid(NotFound):
    """A tracking link whose signature does not check, or that names another order: the same
    answer as an unknown one (`resource_missing`, `param` "token")."""


class TrackingLinkGone(DomainError):
    """A tracking link that expired or was revoked (`code` says which)."""

    status = 410
    code = "tracking_link_expired"


class EventNotFound(NotFound):
    """Unknown event, one past its retention, or another tenant's."""

    default_param = "event_id"


class EndpointDisabled(Conflict):
    """A manual redelivery to an endpoint that is disabled: enable it first."""

    code = "webhook_endpoint_disabled"
