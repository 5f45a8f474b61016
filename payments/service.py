"""Payment use cases. The methods `orders/` calls take the caller's connection so
the hold, capture, refund and split join the orders transaction; the REST flows
open their own. One command = one transaction (a savepoint inside the caller's).

The processor is called inside the transaction, with the intent row locked; its
idempotency key names the authorization attempt (`processor_key`: the caller's key for
the first, the intent id and attempt number for a confirmation after a decline) or the
refund id, so a rolled-back caller that retries reaches the same charge, never a second one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from kernel.clock import Clock
from kernel.ids import new_id
from kernel.money import Money
from kernel.outbox import make_event, write_event
from payments import ledger, model, store
from payments.errors import (
    IdempotencyMismatch,
    IntentAmountMismatch,
    IntentUnexpectedState,
    PaymentDeclined,
    PaymentRequiresAction,
    ProcessorUnavailable,
    ResourceMissing,
)
from payments.live import FraudScreen
from payments.model import Account, Split, credit, debit
from payments.processor import AuthorizationResult, CardForProcessor, Processor, ProcessorUnavailableError
from payments.store import FraudDecision, Intent
from payments.vault import Vault
from payments.wallets import Wallets

log = structlog.get_logger("payments")

WALLET = "wallet"  # as a payment_method_id: pay from the customer's wallet balance
ABANDONED = "abandoned"  # the cancellation_reason of a checkout hold the sweeper voids (Stripe's value)
APART_ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a connection to write an intent apart (see `_change`)
# The states a new intent leaves authorize in with a 402 that names it: written apart from the caller.
_NAMED_BY_A_402 = frozenset({model.REQUIRES_ACTION, model.REQUIRES_PAYMENT_METHOD})


@dataclass(frozen=True, slots=True)
class Authorization:
    intent_id: str
    status: str  # requires_capture on success; processing while the processor is unreachable
    amount: Money
    payment_method_id: str | None = None


@dataclass(frozen=True, slots=True)
class RiskContext:
    ip: str | None = None
    device_id: str | None = None
    first_order: bool = False
    promo_code: str | None = None


def webhook_intent(intent: Intent) -> dict[str, Any]:
    """The PaymentIntent object as webhooks and the API show it."""
    return {
        "id": intent.id, "object": "payment_intent", "amount": intent.amount.amount,
        "currency": intent.amount.currency, "status": intent.status, "customer": intent.customer_id,
        "payment_method": intent.payment_method_id, "capture_method": intent.capture_method,
        "amount_capturable": intent.amount_capturable, "amount_received": intent.amount_captured,
        "amount_refunded": intent.amount_refunded, "created": int(intent.created_at.timestamp()),
        "metadata": intent.metadata, "next_action": intent.next_action,
        "last_payment_error": intent.last_error, "cancellation_reason": intent.cancellation_reason,
    }


class PaymentsService:
    def __init__(self, pool: asyncpg.Pool, *, vault: Vault, processor: Processor, fraud: FraudScreen,
                 clock: Clock) -> None:
        self.pool = pool
        self.vault = vault
        self.processor = processor
        self.fraud = fraud
        self.clock = clock
        self.wallets = Wallets(pool, clock, self._webhook)
        self._apart: list[FraudDecision] = []  # fraud decisions to write apart from their caller's transaction
        self._writer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ payment methods

    async def add_card(self, customer_id: str, card: model.CardInput, holder_name: str | None) -> asyncpg.Record:
        facts = model.validate_card(card, self.clock.now().date())
        pm_id = new_id("pm")
        sealed = self.vault.seal(card.number, pm_id)
        async with self.pool.acquire() as conn:
            row = await store.insert_payment_method(
                conn, id=pm_id, customer_id=customer_id, brand=facts.brand, last4=facts.last4,
                exp_month=facts.exp_month, exp_year=facts.exp_year, fingerprint=self.vault.fingerprint(card.number),
                holder_name=holder_name, sealed=sealed,
            )
        log.info("payment_method.created", payment_method=pm_id, customer=customer_id, brand=facts.brand,
                 last4=facts.last4)
        return row

    # ------------------------------------------------------------ the interface orders/ uses

    async def authorize(self, conn: asyncpg.Connection, *, customer_id: str, payment_method_id: str, amount: Money,
                        reference: str, idempotency_key: str, metadata: dict[str, Any] | None = None,
                        risk: RiskContext | None = None) -> Authorization:
        """Place a hold. The same idempotency key returns the same intent (never a second
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
        # `_change`), so a decline costs a round trip on a connection of its own.
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
            return self.outcome(intent)
        draft = self._draft(customer_id=customer_id, payment_method_id=payment_method_id, amount=amount,
                            capture_method="manual", reference=reference, idempotency_key=idempotency_key,
                            metadata=metadata)
        pm = found if found["id"] is not None else None
        if payment_method_id == WALLET:
            async with conn.transaction():  # the wallet hold is a ledger entry of its own
                intent = await self._confirm(conn, draft, risk or RiskContext(), actor=customer_id,
                                             apart=caller_owns_transaction, new=True)
        else:
            intent = await self._confirm(conn, draft, risk or RiskContext(), actor=customer_id, pm=pm,
                                         apart=caller_owns_transaction, new=True)
        return self.outcome(intent)

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

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money, *, actor: str = "system") -> None:
        """Capture `amount` (≤ authorized); the rest of the hold is released."""
        async with conn.transaction():
            intent = await self._locked(conn, intent_id)
            if intent.status == model.SUCCEEDED and intent.amount_captured == amount.amount:
                return  # a replay of the same capture
            await self._capture_locked(conn, intent, amount, actor)

    async def void(self, conn: asyncpg.Connection, intent_id: str, reason: str, *, actor: str = "system") -> None:
        """Cancel the intent and release its hold; voiding a canceled intent is a no-op."""
        async with conn.transaction():
            intent = await self._locked(conn, intent_id)
            if intent.status == model.CANCELED:
                return
            model.transition(intent.status, model.CANCELED)
            if intent.payment_method_id == WALLET:
                if intent.hold == model.HOLD_HELD:
                    await ledger.post(conn, model.entry(
                        "wallet_release", intent.amount.currency,
                        [debit(Account("wallet_holds", intent.amount.currency), intent.amount_capturable),
                         credit(Account("customer_wallet", intent.amount.currency, intent.customer_id),
                                intent.amount_capturable)],
                        actor=actor, reason=reason, intent_id=intent.id, reference=intent.reference,
                        idempotency_key=f"release:{intent.id}"))
            else:
                try:
                    charge = intent.processor_ref
                    if charge is None and intent.status == model.PROCESSING:
                        found = await self.processor.retrieve(processor_key(intent))
                        charge = found.charge_id if found else None
                    if charge is not None:
                        await self.processor.void(charge, f"{intent.id}:void")
                except ProcessorUnavailableError:
                    raise ProcessorUnavailable() from None
            intent = await store.update_intent(
                conn, intent.id, status=model.CANCELED, amount_capturable=0, cancellation_reason=reason,
                hold=model.HOLD_RELEASED if intent.hold == model.HOLD_HELD else intent.hold,
            )
            await self._announce(conn, intent, "payment.voided", "payment_intent.canceled", intent.amount)

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     destination: str = "card", idempotency_key: str | None = None, actor: str = "system") -> str:
        """Refund part or all of what was captured (the total never exceeds it); returns the refund id.
        `destination="wallet"` credits the customer's wallet instead of the card."""
        async with conn.transaction():
            intent = await self._locked(conn, intent_id)
            if idempotency_key:
                found = await store.find_refund_by_key(conn, intent.id, idempotency_key)
                if found is not None:
                    return str(found["id"])
            model.check_refund(intent.status, intent.amount_captured, intent.amount_refunded, amount)
            refund_id = new_id("re")
            cur = amount.currency
            to_wallet = destination == "wallet" or intent.payment_method_id == WALLET
            processor_ref = None
            if to_wallet:
                target = Account("customer_wallet", cur, intent.customer_id)
            else:
                try:
                    processor_ref = await self.processor.refund(intent.processor_ref or "", amount, refund_id)
                except ProcessorUnavailableError:
                    raise ProcessorUnavailable() from None
                target = Account("processor_clearing", cur)
            await ledger.post(conn, model.entry(
                "refund", cur, [debit(Account("platform_refunds", cur), amount.amount), credit(target, amount.amount)],
                actor=actor, reason=reason, intent_id=intent.id, refund_id=refund_id, reference=intent.reference,
                processor_ref=processor_ref, idempotency_key=f"refund:{refund_id}"))
            await store.insert_refund(
                conn, id=refund_id, intent_id=intent.id, amount=amount, status="succeeded",
                destination="wallet" if to_wallet else "card", reason=reason, processor_ref=processor_ref,
                idempotency_key=idempotency_key, created_by=actor,
            )
            intent = await store.update_intent(conn, intent.id, amount_refunded=intent.amount_refunded + amount.amount)
            await write_event(conn, "payment.refunded", {"intent_id": intent.id, "reference": intent.reference,
                                                         "amount": _money(amount), "refund_id": refund_id},
                              aggregate_id=intent.id)
            await self._webhook(conn, "charge.refunded", {**webhook_intent(intent), "refund": refund_id})
            return refund_id

    async def post_split(self, conn: asyncpg.Connection, *, reference: str, split: Split,
                         actor: str = "system") -> str:
        """Divide a captured charge: restaurant payable, courier earnings, platform revenue,
        tax. Idempotent by reference; returns the journal entry id."""
        split.check()
        outcome = await ledger.post(conn, model.entry(
            "split", split.currency, model.split_postings(split), actor=actor, reason="order settlement",
            reference=reference, idempotency_key=f"split:{reference}"))
        return outcome.entry_id

    # ------------------------------------------------------------ REST flows (own transactions)

    async def create_intent(self, *, customer_id: str, amount: Money, payment_method_id: str | None, confirm: bool,
                            capture_method: str, metadata: dict[str, Any], idempotency_key: str | None,
                            risk: RiskContext) -> Intent:
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
            pm = found if found["id"] is not None else None
            if capture_method == "automatic" or payment_method_id == WALLET:  # more than one write: one transaction
                async with conn.transaction():
                    return await self._confirm(conn, draft, risk, actor=customer_id, pm=pm, new=True)
            return await self._confirm(conn, draft, risk, actor=customer_id, pm=pm, new=True)

    async def confirm_intent(self, intent_id: str, *, payment_method_id: str | None, authentication: str | None,
                             risk: RiskContext, actor: str) -> Intent:
        async with self.pool.acquire() as conn, conn.transaction():
            intent = await self._locked(conn, intent_id)
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
            if intent.status == model.REQUIRES_ACTION:
                intent = await self._authenticate(conn, intent, authentication == "succeeded", actor)
            elif intent.status == model.REQUIRES_CONFIRMATION:
                intent = await self._confirm(conn, intent, risk, actor=actor)
            else:
                model.transition(intent.status, model.PROCESSING)
        return intent

    async def capture_intent(self, intent_id: str, amount: int | None, actor: str) -> Intent:
        async with self.pool.acquire() as conn, conn.transaction():
            intent = await self._locked(conn, intent_id)
            return await self._capture_locked(
                conn, intent, Money(amount or intent.amount_capturable, intent.amount.currency), actor)

    async def cancel_intent(self, intent_id: str, reason: str | None, actor: str) -> Intent:
        async with self.pool.acquire() as conn:
            await self.void(conn, intent_id, reason or "requested_by_customer", actor=actor)
            intent = await store.get_intent(conn, intent_id)
        assert intent is not None
        return intent

    async def get_intent(self, intent_id: str) -> Intent:
        async with self.pool.acquire() as conn:
            intent = await store.get_intent(conn, intent_id)
        if intent is None:
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="id")
        return intent

    # ------------------------------------------------------------ the processing resolver

    async def resolve_processing(self, older_than_seconds: float = 0.0) -> int:
        """Settle intents left `processing` by an outage: ask the processor what it did with
        the intent's idempotency key; if it never saw it, try again with the same key.
        Returns how many left `processing`."""
        async with self.pool.acquire() as conn:
            ids = await store.processing_intents(conn, older_than_seconds)
        resolved = 0
        for intent_id in ids:
            async with self.pool.acquire() as conn, conn.transaction():
                intent = await self._locked(conn, intent_id)
                if intent.status != model.PROCESSING:
                    continue
                try:
                    result = await self.processor.retrieve(processor_key(intent))
                    if result is None:
                        card = await self._card(conn, intent)
                        result = await self.processor.authorize(card, intent.amount, processor_key(intent))
                except ProcessorUnavailableError:
                    break  # still down; the next round tries again
                intent = await self._apply(conn, intent, result)
                resolved += intent.status != model.PROCESSING
        return resolved

    # ------------------------------------------------------------ the unused-hold sweeper

    async def release_unused_holds(self, older_than_seconds: float, limit: int = 100) -> int:
        """Void checkout holds no order claimed: intents `authorize` wrote apart from a checkout's
        transaction (`awaiting_order`: its 402 named them; typically confirmed after 3-D Secure by
        a customer who then walked away) that are `requires_capture` with no reference and were
        authorized at least `older_than_seconds` ago. An intent created through the API (a
        merchant's manual-capture hold, which never has a reference) is not one: its integrator
        captures or cancels it, and the processor lets it lapse. Each is canceled
        with reason `abandoned` by `void`, as any cancel is (processor void, ledger release of a
        wallet hold, `payment.voided` and the `payment_intent.canceled` webhook), in a transaction
        of its own that re-checks it under a row lock: a checkout attaching it concurrently either
        holds the lock or has set the reference (the sweeper leaves it), or finds it canceled
        after the sweeper commits (409 payment_intent_unexpected_state). Intents with a reference
        are never touched: their order voids or captures them. Returns how many were voided."""
        async with self.pool.acquire() as conn:
            ids = await store.unused_holds(conn, older_than_seconds, limit)
        released = 0
        for intent_id in ids:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    if await store.lock_unused_hold(conn, intent_id, older_than_seconds) is None:
                        continue
                    await self.void(conn, intent_id, ABANDONED)
            except ProcessorUnavailable:
                break  # still down; the next round tries again
            except Exception:  # one intent that cannot be voided must not keep the others held
                log.exception("payment.unused_hold_not_released", payment_intent=intent_id)
                continue
            released += 1
            log.info("payment.unused_hold_released", payment_intent=intent_id)
        return released

    # ------------------------------------------------------------ internals

    async def _locked(self, conn: asyncpg.Connection, intent_id: str) -> Intent:
        intent = await store.get_intent(conn, intent_id, lock=True)
        if intent is None:
            raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="payment_intent")
        return intent

    def outcome(self, intent: Intent) -> Authorization:
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

    async def _card(self, conn: asyncpg.Connection, intent: Intent) -> CardForProcessor:
        return self._card_of(await store.get_payment_method_for_charge(conn, intent.payment_method_id or ""))

    def _card_of(self, pm: asyncpg.Record | None) -> CardForProcessor:
        sealed = None if pm is None else store.sealed_of(pm)
        if pm is None or sealed is None:
            raise ResourceMissing("No such PaymentMethod", param="payment_method")
        return CardForProcessor(self.vault.open(sealed, pm["id"]), pm["exp_month"], pm["exp_year"])

    async def _confirm(self, conn: asyncpg.Connection, intent: Intent, risk: RiskContext, actor: str, *,
                       apart: bool = False, pm: asyncpg.Record | None = None, new: bool = False) -> Intent:
        """Screen, then authorize. The fraud decision is written with the intent's new state, in
        the same statement. `apart`: the caller's transaction may roll back, so what must outlive
        it is written apart from it (see `_change`). `pm`: the payment method with its vault row
        when the caller read it already. `new`: the intent is a draft not written yet; its first
        state change inserts it."""
        if intent.payment_method_id == WALLET:
            return await self._confirm_wallet(conn, intent, actor, new=new, apart=apart)
        if pm is None:
            pm = await store.get_payment_method_for_charge(conn, intent.payment_method_id or "")
        if pm is None or pm["customer_id"] != intent.customer_id or pm["detached_at"] is not None:
            raise ResourceMissing(f"No such PaymentMethod: '{intent.payment_method_id}'", param="payment_method")
        assessment = await self.fraud.screen(
            attempt_id=attempt_id(intent), customer_id=intent.customer_id, fingerprint=pm["fingerprint"],
            amount=intent.amount.amount, ip=risk.ip, device_id=risk.device_id, first_order=risk.first_order,
            promo_code=risk.promo_code,
        )
        action = {model.ALLOW: "allow", model.ELEVATED: "require_authentication", model.HIGHEST: "block"}
        decision: FraudDecision | None = FraudDecision(
            intent_id=intent.id, customer_id=intent.customer_id, score=assessment.score, level=assessment.level,
            action=action[assessment.level], reasons=list(assessment.reasons))
        if assessment.level == model.HIGHEST:
            log.info("payment.blocked", payment_intent=intent.id, score=assessment.score,
                     reasons=list(assessment.reasons))
            return await self._apply(conn, intent, AuthorizationResult(
                "", "declined", intent.amount, "card_declined", "fraudulent", "Your card was declined."),
                fingerprint=pm["fingerprint"], decision=decision, new=new, apart=apart)
        if assessment.level == model.ELEVATED:
            return await self._change(
                conn, intent, {"status": model.REQUIRES_ACTION, "next_action": {
                    "type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"},
                    "reason": "risk_review"}},
                webhook="payment_intent.requires_action", decision=decision, new=new, apart=apart)
        card = self._card_of(pm)
        try:
            result = await self.processor.authorize(card, intent.amount, processor_key(intent))
        except ProcessorUnavailableError as exc:
            log.warning("payment.processing", payment_intent=intent.id, error=str(exc))
            return await self._change(conn, intent, {"status": model.PROCESSING},
                                      webhook="payment_intent.processing", decision=decision, new=new, apart=apart)
        return await self._apply(conn, intent, result, fingerprint=pm["fingerprint"], decision=decision, new=new,
                                 apart=apart)

    def _record_apart(self, decision: FraudDecision) -> None:
        """Queue a decision for the writer task; decisions that arrive while it writes go in its
        next statement, so under load many checkouts share one round trip."""
        self._apart.append(decision)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_apart(), name="payments-fraud-decisions")

    async def _write_apart(self) -> None:
        while self._apart:
            batch, self._apart = self._apart, []
            try:
                async with self.pool.acquire() as own:
                    await store.insert_fraud_decisions(own, batch)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("fraud_decision.not_stored", payment_intents=[d.intent_id for d in batch])

    async def close(self) -> None:
        """Wait for fraud decisions still being written (call before the pool closes)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _authenticate(self, conn: asyncpg.Connection, intent: Intent, succeeded: bool, actor: str) -> Intent:
        """The customer came back from the 3-D Secure challenge."""
        try:
            if intent.processor_ref:  # the issuer asked for it
                result = await self.processor.complete_authentication(intent.processor_ref, succeeded)
            elif succeeded:  # our risk rules asked for it
                result = await self.processor.authorize(await self._card(conn, intent), intent.amount,
                                                         processor_key(intent))
            else:
                result = AuthorizationResult("", "declined", intent.amount, "payment_intent_authentication_failure",
                                             "authentication_failed", "The customer failed authentication.")
        except ProcessorUnavailableError:
            raise ProcessorUnavailable() from None
        return await self._apply(conn, intent, result)

    async def _apply(self, conn: asyncpg.Connection, intent: Intent, result: AuthorizationResult, *,
                     fingerprint: str | None = None, decision: FraudDecision | None = None,
                     new: bool = False, apart: bool = False) -> Intent:
        if result.outcome == "authorized":
            intent = await self._change(
                conn, intent, {"status": model.REQUIRES_CAPTURE, "amount_capturable": intent.amount.amount,
                               "hold": model.HOLD_HELD, "processor_ref": result.charge_id, "next_action": None,
                               "last_error": None},
                event="payment.authorized", amount=intent.amount,
                webhook="payment_intent.amount_capturable_updated", decision=decision, new=new, apart=apart)
            # (A draft's insert that met a concurrent twin's intent returns that one, already settled.)
            if intent.capture_method == "automatic" and intent.status == model.REQUIRES_CAPTURE:
                intent = await self._capture_locked(conn, intent, intent.amount, "system")
            return intent
        if result.outcome == "requires_action":
            return await self._change(
                conn, intent, {"status": model.REQUIRES_ACTION, "processor_ref": result.charge_id,
                               "next_action": result.next_action},
                webhook="payment_intent.requires_action", decision=decision, new=new, apart=apart)
        error = {"type": "card_error", "code": result.code or "card_declined",
                 "decline_code": result.decline_code or "generic_decline", "message": result.message}
        intent = await self._change(
            conn, intent, {"status": model.REQUIRES_PAYMENT_METHOD, "last_error": error,
                           "processor_ref": result.charge_id or None, "next_action": None},
            webhook="payment_intent.payment_failed", decision=decision, new=new, apart=apart)
        log.info("payment.declined", payment_intent=intent.id, decline_code=error["decline_code"])
        if fingerprint is None and intent.payment_method_id not in (None, WALLET):
            pm = await store.get_payment_method(conn, intent.payment_method_id or "")
            fingerprint = pm["fingerprint"] if pm else None
        await self.fraud.record_decline(attempt_id=attempt_id(intent), customer_id=intent.customer_id,
                                        fingerprint=fingerprint, ip=None, amount=intent.amount.amount)
        return intent

    async def _confirm_wallet(self, conn: asyncpg.Connection, intent: Intent, actor: str, *,
                              new: bool = False, apart: bool = False) -> Intent:
        cur = intent.amount.currency
        outcome = await ledger.post_batch(conn, [model.entry(
            "wallet_hold", cur,
            [debit(Account("customer_wallet", cur, intent.customer_id), intent.amount.amount),
             credit(Account("wallet_holds", cur), intent.amount.amount)],
            actor=actor, reason="checkout", intent_id=intent.id, idempotency_key=f"hold:{intent.id}")])
        if outcome[0].accepted or outcome[0].duplicate:
            return await self._apply(conn, intent, AuthorizationResult(WALLET, "authorized", intent.amount), new=new,
                                     apart=apart)
        return await self._apply(conn, intent, AuthorizationResult(
            "", "declined", intent.amount, "card_declined", "insufficient_funds",
            "The wallet balance is too low for this payment."), new=new, apart=apart)

    async def _capture_locked(self, conn: asyncpg.Connection, intent: Intent, amount: Money, actor: str) -> Intent:
        model.check_capture(intent.status, Money(intent.amount_capturable, intent.amount.currency), amount)
        cur = amount.currency
        clearing = Account("customer_card_clearing", cur)
        rest = intent.amount_capturable - amount.amount
        if intent.payment_method_id == WALLET:
            postings = [debit(Account("wallet_holds", cur), intent.amount_capturable), credit(clearing, amount.amount)]
            if rest:
                postings.append(credit(Account("customer_wallet", cur, intent.customer_id), rest))
            processor_ref = None
        else:
            try:
                processor_ref = await self.processor.capture(intent.processor_ref or "", amount, f"{intent.id}:capture")
            except ProcessorUnavailableError:
                raise ProcessorUnavailable() from None
            postings = [debit(Account("processor_clearing", cur), amount.amount), credit(clearing, amount.amount)]
        entry = model.entry("capture", cur, postings, actor=actor, reason="capture", intent_id=intent.id,
                            reference=intent.reference, processor_ref=processor_ref,
                            idempotency_key=f"capture:{intent.id}")
        changes = {"status": model.SUCCEEDED, "amount_captured": amount.amount, "amount_capturable": 0,
                   "hold": model.HOLD_CAPTURED}
        if ledger.fits_one_statement(entry):
            # A card capture: the intent, its event and webhooks and the ledger entry in one statement,
            # last before the commit (posting locks the shared clearing accounts until then).
            return await self._change(conn, intent, changes, event="payment.captured", amount=amount,
                                      webhook="payment_intent.succeeded", entry=entry)
        # A wallet capture takes the hold down: the ledger checks that balance before writing.
        captured = await self._change(conn, intent, changes, event="payment.captured", amount=amount,
                                      webhook="payment_intent.succeeded")
        await ledger.post(conn, entry)
        return captured

    async def _change(self, conn: asyncpg.Connection, intent: Intent, changes: dict[str, Any], *,
                      event: str | None = None, amount: Money | None = None, webhook: str | None = None,
                      decision: FraudDecision | None = None, entry: model.JournalEntry | None = None,
                      new: bool = False, apart: bool = False) -> Intent:
        """Update the intent (insert it, when `new`: a draft in its first state) and write what
        announces the change (outbox event, webhook deliveries, the fraud decision) and the ledger
        entry that moves its money, in one round trip.

        `apart`: `conn` is in a caller's transaction that may roll back (orders refusing a checkout
        the payment did not complete). The fraud decision must outlive it: it is queued for the
        writer task, so `conn` never waits for it. So must a new intent the 402 names: one that
        waits for the customer (3-D Secure), who confirms it after the rollback, and a declined
        one (`requires_payment_method` with its `last_payment_error`: Stripe keeps failed intents,
        and a same-key retry finds it and answers the same 402). It is written, with its decision
        and webhooks, on a connection of its own before the caller hears of it, and pays for
        nothing (no reference) until `attach_authorized` gives it one. Until then it is
        `awaiting_order`: once authorized (after 3-D Secure, or a declined one confirmed again
        later), it is a hold the unused-hold sweeper voids if no order claims it."""
        changed = replace(intent, **changes)
        outlives_caller = apart and new and changed.status in _NAMED_BY_A_402
        if outlives_caller:
            intent = changed = replace(changed, reference=None, awaiting_order=True)
        elif apart and decision is not None:
            self._record_apart(decision)
            decision = None
        events = [make_event(event, {"intent_id": intent.id, "reference": intent.reference,
                                     "amount": _money(amount or intent.amount)}, aggregate_id=intent.id)
                  ] if event else []
        hooks = [self._webhook_payload(webhook, webhook_intent(changed))] if webhook else []
        if outlives_caller:
            assert entry is None
            # Bounded: were every pooled connection held by a checkout waiting here, they fail
            # (and their clients retry) instead of waiting for each other for ever.
            async with self.pool.acquire(timeout=APART_ACQUIRE_TIMEOUT) as own:
                return await store.insert_intent_and_announce(own, changed, events=events, webhooks=hooks,
                                                              decision=decision)
        if new:
            assert entry is None
            return await store.insert_intent_and_announce(conn, changed, events=events, webhooks=hooks,
                                                          decision=decision)
        return await store.update_intent_and_announce(conn, intent.id, changes, events=events, webhooks=hooks,
                                                      decision=decision, entry=entry)

    async def _announce(self, conn: asyncpg.Connection, intent: Intent, event: str, webhook: str,
                        amount: Money) -> None:
        await write_event(conn, event, {"intent_id": intent.id, "reference": intent.reference,
                                        "amount": _money(amount)}, aggregate_id=intent.id)
        await self._webhook(conn, webhook, webhook_intent(intent))

    async def _webhook(self, conn: asyncpg.Connection, event_type: str, obj: dict[str, Any]) -> None:
        await store.enqueue_webhook(conn, event_type, self._webhook_payload(event_type, obj))

    @staticmethod
    def _webhook_payload(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {"id": new_id("evt"), "object": "event", "type": event_type, "created": int(time.time()),
                "data": {"object": obj}}


def processor_key(intent: Intent) -> str:
    """The processor idempotency key of the intent's current authorization attempt, the same for
    every retry of that attempt (the resolver of `processing` asks with it) and different for the
    next one (a confirmation after a decline), so a new card is tried, not the old decline replayed.

    The first attempt's is derived from the caller's key, so a caller that rolled back and retries
    (with a new draft intent) reaches the same charge; it is unchanged since before attempts were
    counted. Later attempts confirm a stored intent, so its id is stable: `auth-<n>:<intent id>`,
    which no first-attempt key (always `auth:...`) can equal, whatever the caller's key contains."""
    if intent.authorization_attempt > 1:
        return f"auth-{intent.authorization_attempt}:{intent.id}"
    if intent.idempotency_key:
        return f"auth:{intent.customer_id}:{intent.idempotency_key}"
    return f"auth:{intent.id}"


def attempt_id(intent: Intent) -> str:
    """The fraud screen's id of this authorization attempt: each confirmation of an intent counts in
    the velocity and decline windows (one intent confirmed with card after card is card testing)."""
    if intent.authorization_attempt > 1:
        return f"{intent.id}:{intent.authorization_attempt}"
    return intent.id


def _money(amount: Money) -> dict[str, Any]:
    return {"amount": amount.amount, "currency": amount.currency}


def now_unix(value: datetime) -> int:
    return int(value.timestamp())
