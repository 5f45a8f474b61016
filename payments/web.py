"""HTTP handlers, Stripe-shaped. Thin: decode, call the service, encode."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.http import (
    CUSTOMER,
    OPERATOR,
    STAFF,
    ErrorDeclaration,
    decode_body,
    decode_query,
    endpoint,
    idempotency_key,
    json_response,
    principal,
)
from kernel.money import Money, is_known_currency
from payments import messages as m
from payments import model, store
from payments.errors import (
    CurrencyMismatch,
    IdempotencyMismatch,
    IntentAmountMismatch,
    IntentUnexpectedState,
    PaymentDeclined,
    PaymentRequiresAction,
    ProcessorError,
    ProcessorUnavailable,
    ResourceMissing,
)
from payments.service import PaymentsService, RiskContext
from payments.store import Intent

PAYMENTS = web.AppKey("payments", PaymentsService)
routes = web.RouteTableDef()
TAGS = ("payments",)


def _service(request: web.Request) -> PaymentsService:
    return request.app[PAYMENTS]


# The answers routes below give besides every route's (fooddispatch/openapi.py lists them per operation).
INVALID_CURRENCY: tuple[int, str] = (ValidationFailed.status, "invalid_currency")
# Paying from the wallet in another currency than it holds (see `payments.exchange`).
WALLET_CURRENCY: list[Any] = [CurrencyMismatch, (404, "resource_missing"), (409, "conversion_quote_used"),
                              (409, "conversion_quote_expired"), (409, "conversion_quote_mismatch")]
CARD_INVALID: list[ErrorDeclaration] = [(ValidationFailed.status, code) for code in (
    "incorrect_number", "invalid_expiry_month", "invalid_expiry_year", "invalid_cvc")]  # payments/model.py
# Confirming, capturing or cancelling an intent in a state that does not allow it, or one an order manages.
INTENT_STATE: list[ErrorDeclaration] = [IntentUnexpectedState,
                                        (IntentUnexpectedState.status, "payment_intent_managed_by_order")]
DECLINES: list[ErrorDeclaration] = [PaymentDeclined, PaymentRequiresAction,
                                    (PaymentDeclined.status, "payment_intent_authentication_failure"),
                                    (PaymentDeclined.status, IntentUnexpectedState.code)]  # a canceled intent
PROCESSOR: list[ErrorDeclaration] = [ProcessorError, ProcessorUnavailable]


def _currency(code: str) -> str:
    if not is_known_currency(code):
        raise ValidationFailed(f"unknown currency {code}", param="currency", code=INVALID_CURRENCY[1])
    return code


def pm_view(row: asyncpg.Record) -> m.PaymentMethodView:
    return m.PaymentMethodView(
        id=row["id"], customer=row["customer_id"],
        card=m.CardView(brand=row["brand"], last4=row["last4"], exp_month=row["exp_month"],
                        exp_year=row["exp_year"], fingerprint=row["fingerprint"]),
        billing_details=m.BillingDetails(name=row["holder_name"]), created=int(row["created_at"].timestamp()),
        is_default=row["is_default"],
    )


def intent_view(intent: Intent) -> m.PaymentIntentView:
    err = intent.last_error
    return m.PaymentIntentView(
        id=intent.id, amount=intent.amount.amount, currency=intent.amount.currency, status=intent.status,
        customer=intent.customer_id, payment_method=intent.payment_method_id, capture_method=intent.capture_method,
        amount_capturable=intent.amount_capturable, amount_received=intent.amount_captured,
        amount_refunded=intent.amount_refunded, created=int(intent.created_at.timestamp()),
        metadata=intent.metadata, next_action=intent.next_action,
        last_payment_error=m.LastPaymentError(type=err.get("type", "card_error"), code=err.get("code"),
                                              decline_code=err.get("decline_code"), message=err.get("message"))
        if err else None,
        cancellation_reason=intent.cancellation_reason,
    )


def _visible(request: web.Request, customer_id: str, what: str, ident: str, tenant_id: str | None = None,
             store_id: str | None = None) -> None:
    """Customers see only their own objects, restaurant staff only the payments of their tenant's
    orders (`tenant_id`, `store_id`: the checkout writes them into the intent's metadata), a store's
    key only its store's; others' are reported missing, not forbidden."""
    who = principal(request)
    if ((who.role == CUSTOMER and who.account_id != customer_id)
            or (who.role == STAFF and (not who.tenant_id or who.tenant_id != tenant_id
                                       or not who.may_act_for_store(store_id or "")))):
        raise ResourceMissing(f"No such {what}: '{ident}'", param="id")


def _intent_or_raise(intent: Intent) -> web.Response:
    """A decline is 402 with the error and the intent, as Stripe answers a failed confirm."""
    if intent.status == model.REQUIRES_PAYMENT_METHOD and intent.last_error:
        from payments.errors import PaymentDeclined

        err = intent.last_error
        raise PaymentDeclined(err.get("message") or "Your card was declined.",
                              decline_code=err.get("decline_code") or "generic_decline",
                              code=err.get("code") or "card_declined", payment_intent=intent.id)
    return json_response(intent_view(intent))


# ------------------------------------------------------------ payment methods


@routes.post("/v1/payment_methods")
@endpoint(roles={CUSTOMER}, idempotent=True, body=m.CreatePaymentMethod, response=m.PaymentMethodView,
          status=200, tags=TAGS, errors=[PaymentDeclined, *CARD_INVALID])
async def create_payment_method(request: web.Request) -> web.Response:
    """Tokenize a card for the calling customer; the number goes to the vault, the CVC nowhere."""
    body = await decode_body(request, m.CreatePaymentMethod)
    card = model.CardInput(model.normalize_number(body.card.number), body.card.exp_month, body.card.exp_year,
                           body.card.cvc)
    name = body.billing_details.name if body.billing_details else None
    row = await _service(request).add_card(principal(request).account_id, card, name)
    return json_response(pm_view(row))


@routes.get("/v1/payment_methods")
@endpoint(roles={CUSTOMER}, response=m.PaymentMethodList, tags=TAGS)
async def list_payment_methods(request: web.Request) -> web.Response:
    """The calling customer's saved cards."""
    async with _service(request).pool.acquire() as conn:
        rows = await store.list_payment_methods(conn, principal(request).account_id)
    return json_response(m.PaymentMethodList(data=[pm_view(r) for r in rows]))


@routes.post("/v1/payment_methods/{id}/detach")
@endpoint(roles={CUSTOMER}, idempotent=True, response=m.PaymentMethodView, tags=TAGS, errors=[404])
async def detach_payment_method(request: web.Request) -> web.Response:
    """Remove a saved card; its encrypted number is erased."""
    async with _service(request).pool.acquire() as conn:
        row = await store.detach_payment_method(conn, request.match_info["id"], principal(request).account_id)
    if row is None:
        raise ResourceMissing(f"No such PaymentMethod: '{request.match_info['id']}'", param="id")
    return json_response(pm_view(row))


@routes.post("/v1/payment_methods/{id}/default")
@endpoint(roles={CUSTOMER}, idempotent=True, response=m.PaymentMethodView, tags=TAGS, errors=[404])
async def set_default_payment_method(request: web.Request) -> web.Response:
    """Make a saved card the customer's default."""
    async with _service(request).pool.acquire() as conn:
        row = await store.set_default_payment_method(conn, request.match_info["id"], principal(request).account_id)
    if row is None:
        raise ResourceMissing(f"No such PaymentMethod: '{request.match_info['id']}'", param="id")
    return json_response(pm_view(row))


# ------------------------------------------------------------ payment intents


@routes.post("/v1/payment_intents")
@endpoint(roles={CUSTOMER}, idempotent=True, body=m.CreatePaymentIntent, response=m.PaymentIntentView, tags=TAGS,
          errors=[*DECLINES, 404, INVALID_CURRENCY, IdempotencyMismatch, *WALLET_CURRENCY])
async def create_payment_intent(request: web.Request) -> web.Response:
    """Create (and with `confirm: true`, confirm) a PaymentIntent for the calling customer."""
    body = await decode_body(request, m.CreatePaymentIntent)
    intent = await _service(request).create_intent(
        customer_id=principal(request).account_id, amount=Money(body.amount, _currency(body.currency)),
        payment_method_id=body.payment_method, confirm=body.confirm, capture_method=body.capture_method,
        metadata=dict(body.metadata), idempotency_key=idempotency_key(request),
        risk=RiskContext(ip=body.ip or request.remote, device_id=body.device_id, promo_code=body.promo_code),
        conversion_quote=body.conversion_quote,
    )
    return _intent_or_raise(intent)


@routes.get("/v1/payment_intents")
@endpoint(roles={CUSTOMER, OPERATOR}, query=m.IntentListQuery, response=m.PaymentIntentList, tags=TAGS)
async def list_payment_intents(request: web.Request) -> web.Response:
    """PaymentIntents, newest first: a customer's own, or all for operators."""
    q = decode_query(request, m.IntentListQuery)
    who = principal(request)
    async with _service(request).pool.acquire() as conn:
        intents = await store.list_intents(conn, who.account_id if who.role == CUSTOMER else None,
                                           q.starting_after, q.limit + 1)
    return json_response(m.PaymentIntentList(data=[intent_view(i) for i in intents[: q.limit]],
                                             has_more=len(intents) > q.limit))


@routes.get("/v1/payment_intents/{id}")
@endpoint(roles={CUSTOMER, OPERATOR, STAFF}, response=m.PaymentIntentView, tags=TAGS, errors=[404])
async def get_payment_intent(request: web.Request) -> web.Response:
    """One PaymentIntent."""
    intent = await _service(request).get_intent(request.match_info["id"])
    _visible(request, intent.customer_id, "payment_intent", intent.id, intent.metadata.get("tenant_id"),
             intent.metadata.get("store_id"))
    return json_response(intent_view(intent))


@routes.post("/v1/payment_intents/{id}/confirm")
@endpoint(roles={CUSTOMER}, idempotent=True, body=m.ConfirmPaymentIntent, response=m.PaymentIntentView, tags=TAGS,
          errors=[*DECLINES, 404, *INTENT_STATE, IntentAmountMismatch, IdempotencyMismatch, CurrencyMismatch])
async def confirm_payment_intent(request: web.Request) -> web.Response:
    """Confirm: authorize the card, or finish 3-D Secure with `authentication`."""
    body = await decode_body(request, m.ConfirmPaymentIntent)
    service = _service(request)
    intent = await service.get_intent(request.match_info["id"])
    _visible(request, intent.customer_id, "payment_intent", intent.id)
    intent = await service.confirm_intent(
        intent.id, payment_method_id=body.payment_method, authentication=body.authentication,
        risk=RiskContext(ip=body.ip or request.remote, device_id=body.device_id), actor=principal(request).account_id,
    )
    return _intent_or_raise(intent)


@routes.post("/v1/payment_intents/{id}/capture")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.CapturePaymentIntent, response=m.PaymentIntentView, tags=TAGS,
          errors=[404, *INTENT_STATE, (ValidationFailed.status, "amount_too_large"), *PROCESSOR])
async def capture_payment_intent(request: web.Request) -> web.Response:
    """Capture up to the authorized amount; the rest of the hold is released."""
    body = await decode_body(request, m.CapturePaymentIntent)
    intent = await _service(request).capture_intent(request.match_info["id"], body.amount_to_capture,
                                                    principal(request).account_id)
    return json_response(intent_view(intent))


@routes.post("/v1/payment_intents/{id}/cancel")
@endpoint(roles={CUSTOMER, OPERATOR}, idempotent=True, body=m.CancelPaymentIntent, response=m.PaymentIntentView,
          tags=TAGS, errors=[404, *INTENT_STATE, *PROCESSOR])
async def cancel_payment_intent(request: web.Request) -> web.Response:
    """Cancel a PaymentIntent that is not yet captured, releasing its hold."""
    body = await decode_body(request, m.CancelPaymentIntent)
    service = _service(request)
    intent = await service.get_intent(request.match_info["id"])
    _visible(request, intent.customer_id, "payment_intent", intent.id)
    intent = await service.cancel_intent(intent.id, body.cancellation_reason, principal(request).account_id)
    return json_response(intent_view(intent))


# ------------------------------------------------------------ refunds


def refund_view(row: Any) -> m.RefundView:
    return m.RefundView(id=row["id"], payment_intent=row["payment_intent_id"], amount=row["amount"],
                        currency=row["currency"], status=row["status"], reason=row["reason"],
                        destination=row["destination"], created=int(row["created_at"].timestamp()))


@routes.post("/v1/refunds")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.CreateRefund, response=m.RefundView, tags=TAGS,
          errors=[404, (InvalidTransition.status, "charge_not_refundable"),
                  (ValidationFailed.status, "amount_too_large"), *PROCESSOR])
async def create_refund(request: web.Request) -> web.Response:
    """Refund part or all of a captured PaymentIntent (several refunds may follow one another)."""
    body = await decode_body(request, m.CreateRefund)
    service = _service(request)
    intent = await service.get_intent(body.payment_intent)
    amount = Money(body.amount or (intent.amount_captured - intent.amount_refunded), intent.amount.currency)
    async with service.pool.acquire() as conn:
        refund_id = await service.refund(conn, intent.id, amount, body.reason or "requested_by_customer",
                                         destination=body.destination, idempotency_key=idempotency_key(request),
                                         actor=principal(request).account_id)
        row = await store.get_refund(conn, refund_id)
    return json_response(refund_view(row))


@routes.get("/v1/refunds/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, response=m.RefundView, tags=TAGS, errors=[404])
async def get_refund(request: web.Request) -> web.Response:
    """One refund."""
    async with _service(request).pool.acquire() as conn:
        row = await store.get_refund(conn, request.match_info["id"])
    if row is None:
        raise ResourceMissing(f"No such refund: '{request.match_info['id']}'", param="id")
    _visible(request, row["customer_id"], "refund", row["id"])
    return json_response(refund_view(row))


def setup(app: web.Application) -> None:
    from payments import web_fx, web_merchant, web_money

    app.router.add_routes(routes)
    app.router.add_routes(web_money.routes)
    app.router.add_routes(web_merchant.routes)
    app.router.add_routes(web_fx.routes)
