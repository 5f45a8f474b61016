"""Payments errors in Stripe's shape: `type`, `code`, `decline_code`, `param`.
The one error middleware renders them; a decline is 402."""

from __future__ import annotations

from typing import Any

from kernel.errors import Conflict, DomainError, NotFound, ValidationFailed


class PaymentDeclined(DomainError):
    """The card (or wallet) was declined; `decline_code` says why."""

    status = 402
    code = "card_declined"

    def __init__(self, message: str, *, decline_code: str, code: str | None = None,
                 payment_intent: str | None = None, param: str | None = None) -> None:
        extra: dict[str, Any] = {"type": "card_error", "decline_code": decline_code}
        if payment_intent:
            extra["payment_intent"] = payment_intent
        super().__init__(message, code=code, param=param, extra=extra)
        self.decline_code = decline_code
        self.payment_intent = payment_intent


class PaymentRequiresAction(DomainError):
    """The customer must authenticate (3-D Secure) before the hold exists."""

    status = 402
    code = "authentication_required"

    def __init__(self, payment_intent: str, next_action: dict[str, Any] | None = None) -> None:
        super().__init__(
            "The payment requires authentication; confirm the PaymentIntent after the customer authenticates.",
            extra={"type": "card_error", "decline_code": "authentication_required",
                   "payment_intent": payment_intent, "next_action": next_action or {}},
        )
        self.payment_intent = payment_intent


class InsufficientBalance(DomainError):
    status = 402
    code = "balance_insufficient"

    def __init__(self, message: str, *, account: str | None = None) -> None:
        super().__init__(message, extra={"type": "invalid_request_error", "account": account})


class ProcessorUnavailable(DomainError):
    """The processor could not be reached; the operation is safe to retry."""

    status = 503
    code = "processor_unavailable"

    def __init__(self, message: str = "the payment processor is unavailable; retry later") -> None:
        super().__init__(message, extra={"type": "api_error"}, headers={"Retry-After": "5"})


class ProcessorError(DomainError):
    """The processor answered and refused the operation (`processor_code`: `resource_missing` when
    it does not know the charge, e.g. one made before its records began). Retrying the same call
    will not help; an operator looks at the payment."""

    status = 502
    code = "processor_error"

    def __init__(self, message: str, *, processor_code: str, payment_intent: str | None = None) -> None:
        extra: dict[str, Any] = {"type": "api_error", "processor_code": processor_code}
        if payment_intent:
            extra["payment_intent"] = payment_intent
        super().__init__(f"the payment processor refused: {message}", extra=extra)
        self.processor_code = processor_code


class ResourceMissing(NotFound):
    """Stripe's `resource_missing`, with Stripe's `type` besides (every 404 of this API has the code)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, extra={"type": "invalid_request_error"})


class IntentUnexpectedState(Conflict):
    """The PaymentIntent is not in a state this operation accepts (Stripe's code), or it
    already pays for an order (`payment_intent_already_used`)."""

    code = "payment_intent_unexpected_state"

    def __init__(self, message: str, *, payment_intent: str, status: str, code: str | None = None) -> None:
        super().__init__(message, code=code, param="payment_intent",
                         extra={"type": "invalid_request_error", "payment_intent": payment_intent,
                                "payment_intent_status": status})


class IntentAmountMismatch(ValidationFailed):
    """The PaymentIntent's amount or currency is not the amount it is asked to pay."""

    code = "payment_intent_amount_mismatch"

    def __init__(self, message: str, *, payment_intent: str) -> None:
        super().__init__(message, param="payment_intent",
                         extra={"type": "invalid_request_error", "payment_intent": payment_intent})


class IdempotencyMismatch(Conflict):
    code = "idempotency_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, extra={"type": "idempotency_error"})


class CurrencyMismatch(Conflict):
    """Money in one currency asked to pay in another with no conversion accepted: a GBP order from a
    wallet that holds EUR. `POST /v1/conversion_quotes`, then pay with the quote."""

    code = "currency_mismatch"

    def __init__(self, message: str, *, currency: str, held: list[str], param: str | None = None) -> None:
        super().__init__(message, param=param, extra={"type": "invalid_request_error", "currency": currency,
                                                      "wallet_currencies": held})


class ExchangeRateMissing(Conflict):
    """No exchange rate loaded for the pair (recent enough, where that matters)."""

    code = "exchange_rate_missing"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, extra={"type": "invalid_request_error"})


class ConversionQuoteUnusable(Conflict):
    """A conversion quote that has expired (`conversion_quote_expired`), was used already
    (`conversion_quote_used`) or is for another amount (`conversion_quote_mismatch`)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code, param="conversion_quote", extra={"type": "invalid_request_error"})
