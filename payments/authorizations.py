"""The commands on a payment intent: a checkout's hold (`authorize`, `attach_authorized`,
`capture`, taking the caller's connection so they join the orders transaction) and the REST
flows, which open their own (create, confirm, capture, cancel, read). One command = one
transaction (a savepoint inside the caller's).

The processor is called inside the transaction, with the intent row locked; its
idempotency key names the authorization attempt (`processor_key`: the caller's key for
the first, the intent id and attempt number for a confirmation after a decline), so a
rolled-back caller that retries reaches the same charge, never a second one.

`Authorizations` is a collaborator of the `PaymentsService` facade (see `service`), built with
the pool, the clock, the `Confirmations` that screen, authorize and record, and the `Holds`
that cancel.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from kernel.clock import Clock
from kernel.errors import ValidationFailed
from kernel.ids import new_id
from kernel.money import Money
from payments import model, store
from payments.confirm import Confirmations, locked_intent
from payments.errors import (
    IdempotencyMismatch,
    IntentAmountMismatch,
    IntentUnexpectedState,
    PaymentDeclined,
    PaymentRequiresAction,
    ResourceMissing,
)
from payments.exchange import Exchange
from payments.holds import Holds
from payments.intents import WALLET, Authorization, RiskContext
from payments.store import Intent


class Authorizations:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, confirmations: Confirmations, holds: Holds,
                 exchange: Exchange) -> None:
        self.pool = pool
        self.clock = clock
        self.confirmations = confirmations
        self.holds = holds
        self.exchange = exchange

    # ------------------------------------------------------------ a checkout's hold (the caller's transaction)

    async def authorize(self, conn: asyncpg.Connection, *, customer_id: str, payment_method_id: str, amount: Money,
                        reference: str, idempotency_key: str, metadata: dict[str, Any] | None = None,
                        risk: RiskContext | None = None, conversion_quote: str | None = None) -> Authorization:
        """Place a hold. From the wallet, in the wallet's currency only: `conversion_quote` converts
        the amount first, else money held in another currency is 409 `currency_mismatch`. The same
        idempotency key returns the same intent (never a second
        hold). Raises PaymentDeclined (402) or PaymentRequiresAction (402, 3-D Secure).

        Two round trips: the payment method (with its vault row, and any intent this key already
        made), then, once the screen and the processor have answered, the intent in its final
        state with its event and webhooks, written by one statement (so no savepoint is needed
        for all-or-nothing). The processor's idempotency key comes from the caller's key, so a
        concurrent twin or a retry after a rollback reaches the same charge, and the second insert
        of a key returns the first one's intent."""
        # Inside the caller's transaction, a rollback (orders refusing the checkout after a
        # decline) must not take the fraud decision with it, nor the intent its 402 names (one
        # that waits for 3-D Secure, or the declined one): they are written apart from it (see
        # `Confirmations._change`), so a decline costs a round trip on a connection of its own.
        caller_owns_transaction = conn.is_in_transaction()
        found = await store.method_and_intent(conn, payment_method_id, customer_id, idempotency_key)
        if found["existing_intent"] is not None:
            intent = await store.get_intent(conn, found["existing_intent"])
            assert intent is not None
            if intent.amount != amount or intent.payment_method_id != payment_method_id:
                raise IdempotencyMismatch("this idempotency key was used for a different authorization")
            if intent.reference is None and intent.status == model.REQUIRES_CAPTURE:
                # Written apart for 3-D Secure and confirmed since: this retry's reference takes it.
                return await self.attach_authorized(conn, intent_id=intent.id, customer_id=customer_id,
                                                    amount=amount, reference=reference, metadata=metadata)
            return outcome(intent)
        draft = self._draft(customer_id=customer_id, payment_method_id=payment_method_id, amount=amount,
                            capture_method="manual", reference=reference, idempotency_key=idempotency_key,
                            metadata=metadata)
        pm = found if found["id"] is not None else None
        if payment_method_id == WALLET:
            async with conn.transaction():  # the wallet hold is a ledger entry of its own
                await self.exchange.wallet_pays(conn, customer_id, amount, conversion_quote, reference=draft.id)
                intent = await self.confirmations.confirm(conn, draft, risk or RiskContext(), actor=customer_id,
                                                          apart=caller_owns_transaction, new=True)
        else:
            intent = await self.confirmations.confirm(conn, draft, risk or RiskContext(), actor=customer_id, pm=pm,
                                                      apart=caller_owns_transaction, new=True)
        return outcome(intent)

    async def attach_authorized(self, conn: asyncpg.Connection, *, intent_id: str, customer_id: str, amount: Money,
                                reference: str, metadata: dict[str, Any] | None = None) -> Authorization:
        """Let an authorized hold the customer confirmed apart (after 3-D Secure) pay for `reference`,
        in the caller's transaction: the intent is locked, must be the customer's, `requires_capture`
        with manual capture, for exactly `amount`, and pay for nothing yet. Its reference (and
        `metadata`, merged) are set, so a second attach finds it used, and it awaits no order any
        more (the unused-hold sweeper leaves it; the order captures or voids it). Another customer's
        intent is reported missing, as the API does."""
        intent = await store.get_intent(conn, intent_id, lock=True)
        if intent is None or intent.customer_id != customer_id:
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="payment_intent")
        if intent.reference is not None:
            raise IntentUnexpectedState("this PaymentIntent already pays for an order", payment_intent=intent.id,
                                        status=intent.status, code="payment_intent_already_used")
        if intent.status != model.REQUIRES_CAPTURE or intent.capture_method != "manual":
            raise IntentUnexpectedState(
                f"the PaymentIntent is {intent.status}; only an authorized hold (requires_capture, manual "
                "capture) can pay for an order", payment_intent=intent.id, status=intent.status)
        if intent.amount != amount:
            raise IntentAmountMismatch(
                f"the PaymentIntent holds {intent.amount.amount} {intent.amount.currency}; this order needs "
                f"{amount.amount} {amount.currency}", payment_intent=intent.id)
        intent = await store.attach_intent(conn, intent.id, reference, metadata or {})
        return Authorization(intent.id, intent.status, intent.amount, intent.payment_method_id)

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money, *, actor: str = "system") -> None:
        """Capture `amount` (≤ authorized); the rest of the hold is released."""
        async with conn.transaction():
            intent = await locked_intent(conn, intent_id)
            if intent.status == model.SUCCEEDED and intent.amount_captured == amount.amount:
                return  # a replay of the same capture
            await self.confirmations.capture_locked(conn, intent, amount, actor)

    def _draft(self, *, customer_id: str, payment_method_id: str | None, amount: Money, capture_method: str,
               reference: str | None, idempotency_key: str | None, metadata: dict[str, Any] | None) -> Intent:
        """A new intent awaiting confirmation, not written yet (its confirmation writes it)."""
        return Intent(
            id=new_id("pi"), customer_id=customer_id, payment_method_id=payment_method_id, amount=amount,
            capture_method=capture_method, status=model.REQUIRES_CONFIRMATION, amount_capturable=0,
            amount_captured=0, amount_refunded=0, hold=model.HOLD_NONE, reference=reference,
            idempotency_key=idempotency_key, processor_ref=None, next_action=None, last_error=None,
            cancellation_reason=None, metadata=metadata or {}, created_at=self.clock.now(),
        )

    # ------------------------------------------------------------ REST flows (own transactions)

    async def create_intent(self, *, customer_id: str, amount: Money, payment_method_id: str | None, confirm: bool,
                            capture_method: str, metadata: dict[str, Any], idempotency_key: str | None,
                            risk: RiskContext, conversion_quote: str | None = None) -> Intent:
        if conversion_quote is not None and not confirm:
            raise ValidationFailed("a conversion quote is accepted by confirming a wallet payment (confirm: true)",
                                   param="conversion_quote")
        async with self.pool.acquire() as conn:
            if not confirm or payment_method_id is None:
                if confirm:
                    raise ResourceMissing("confirm needs a payment_method", param="payment_method")
                status = model.REQUIRES_CONFIRMATION if payment_method_id else model.REQUIRES_PAYMENT_METHOD
                intent, _ = await store.claim_intent(
                    conn, customer_id=customer_id, payment_method_id=payment_method_id, amount=amount,
                    status=status, capture_method=capture_method, reference=None, idempotency_key=idempotency_key,
                    metadata=metadata,
                )
                return intent
            # Create and confirm: read the method, screen, authorize, then write the intent in its
            # final state in one statement (no transaction needed), as `authorize` does.
            found = await store.method_and_intent(conn, payment_method_id, customer_id, idempotency_key)
            if idempotency_key is not None and found["existing_intent"] is not None:
                existing = await store.get_intent(conn, found["existing_intent"])
                assert existing is not None
                return existing
            draft = self._draft(customer_id=customer_id, payment_method_id=payment_method_id, amount=amount,
                                capture_method=capture_method, reference=None, idempotency_key=idempotency_key,
                                metadata=metadata)
            _conversion_from_wallet(payment_method_id, conversion_quote)
            pm = found if found["id"] is not None else None
            if capture_method == "automatic" or payment_method_id == WALLET:  # more than one write: one transaction
                async with conn.transaction():
                    if payment_method_id == WALLET:
                        await self.exchange.wallet_pays(conn, customer_id, amount, conversion_quote,
                                                        reference=draft.id)
                    return await self.confirmations.confirm(conn, draft, risk, actor=customer_id, pm=pm, new=True)
            return await self.confirmations.confirm(conn, draft, risk, actor=customer_id, pm=pm, new=True)

    async def confirm_intent(self, intent_id: str, *, payment_method_id: str | None, authentication: str | None,
                             risk: RiskContext, actor: str) -> Intent:
        async with self.pool.acquire() as conn, conn.transaction():
            intent = await locked_intent(conn, intent_id)
            if payment_method_id and intent.status in (model.REQUIRES_PAYMENT_METHOD, model.REQUIRES_CONFIRMATION):
                changes: dict[str, Any] = {"payment_method_id": payment_method_id,
                                           "status": model.REQUIRES_CONFIRMATION, "last_error": None}
                if model.starts_new_attempt(intent.status, intent.last_error):
                    # Confirmed again after a decline (Stripe allows it, with another method or the same):
                    # a new authorization under a processor key of its own (the last one's would replay its
                    # decline), stored with the state it reaches, so the resolver of an outage during it
                    # asks with that key. The failed attempt's charge is not this attempt's.
                    changes |= {"authorization_attempt": intent.authorization_attempt + 1, "processor_ref": None,
                                "next_action": None}
                intent = await store.update_intent(conn, intent.id, **changes)
            if intent.status == model.REQUIRES_CONFIRMATION and intent.payment_method_id == WALLET:
                await self.exchange.wallet_pays(conn, intent.customer_id, intent.amount, None, reference=intent.id)
            if intent.status == model.REQUIRES_ACTION:
                intent = await self.confirmations.authenticate(conn, intent, authentication == "succeeded", actor)
            elif intent.status == model.REQUIRES_CONFIRMATION:
                intent = await self.confirmations.confirm(conn, intent, risk, actor=actor)
            else:
                model.transition(intent.status, model.PROCESSING)
        return intent

    async def capture_intent(self, intent_id: str, amount: int | None, actor: str) -> Intent:
        async with self.pool.acquire() as conn, conn.transaction():
            intent = await locked_intent(conn, intent_id)
            _not_an_orders(intent, "captured")
            return await self.confirmations.capture_locked(
                conn, intent, Money(amount or intent.amount_capturable, intent.amount.currency), actor)

    async def cancel_intent(self, intent_id: str, reason: str | None, actor: str) -> Intent:
        async with self.pool.acquire() as conn, conn.transaction():
            _not_an_orders(await locked_intent(conn, intent_id), "canceled")
            await self.holds.void(conn, intent_id, reason or "requested_by_customer", actor=actor)
            intent = await store.get_intent(conn, intent_id)
        assert intent is not None
        return intent

    async def get_intent(self, intent_id: str) -> Intent:
        async with self.pool.acquire() as conn:
            intent = await store.get_intent(conn, intent_id)
        if intent is None:
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="id")
        return intent


def _conversion_from_wallet(payment_method_id: str | None, conversion_quote: str | None) -> None:
    if conversion_quote is not None and payment_method_id != WALLET:
        raise ValidationFailed("a conversion quote converts wallet money: pay with the wallet",
                               param="conversion_quote")


def _not_an_orders(intent: Intent, done: str) -> None:
    """An intent that pays for an order (it has a reference) is captured at delivery and voided
    when the order ends, by the order, which alone knows what is due (tips, missing items, a
    cancellation fee): captured or canceled through the API, the order's money would no longer
    be what the order says. Operators cancel the order, or refund (`POST /v1/refunds`, which
    the order follows through `payment.refunded`)."""
    if intent.reference is not None:
        raise IntentUnexpectedState(
            f"this PaymentIntent pays for {intent.reference!r}: it is {done} by the order (delivery "
            "captures it, a cancel voids it); cancel the order or refund instead",
            payment_intent=intent.id, status=intent.status, code="payment_intent_managed_by_order")


def outcome(intent: Intent) -> Authorization:
    """The result of an authorization attempt, or the error that describes it."""
    if intent.status in (model.REQUIRES_CAPTURE, model.SUCCEEDED, model.PROCESSING):
        return Authorization(intent.id, intent.status, intent.amount, intent.payment_method_id)
    if intent.status == model.REQUIRES_ACTION:
        raise PaymentRequiresAction(intent.id, intent.next_action)
    err = intent.last_error or {}
    if intent.status == model.CANCELED:
        raise PaymentDeclined("The PaymentIntent was canceled.", decline_code="canceled",
                              code="payment_intent_unexpected_state", payment_intent=intent.id)
    raise PaymentDeclined(err.get("message") or "Your card was declined.",
                          decline_code=err.get("decline_code") or "generic_decline",
                          code=err.get("code") or "card_declined", payment_intent=intent.id)
