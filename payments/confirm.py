"""Confirming a payment intent: the fraud screen, the processor's authorization (or the
wallet's hold, or the customer's 3-D Secure answer), and the writes that record the state
the intent reaches with what announces it (`_change`), including the writes that must
outlive a caller's rolled-back transaction ("apart"). Capture lives here too: an automatic
capture follows an authorization in the same `apply`.

`Confirmations` is a collaborator of the `PaymentsService` facade (see `service`), which builds
it with what it uses: the pool (for the writes apart), the vault, the processor, the fraud screen
and `FraudDecisions`, the writer of the decisions that must outlive their caller's transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import structlog

from kernel.money import Money
from kernel.outbox import MoneyData
from payments import ledger, model, store
from payments.errors import ProcessorError, ProcessorUnavailable, ResourceMissing
from payments.event_types import IntentMoved, PaymentAuthorized, PaymentCaptured
from payments.exchange import Exchange
from payments.intents import (
    WALLET,
    RiskContext,
    attempt_id,
    processor_key,
    webhook_intent,
    webhook_payload,
)
from payments.live import FraudScreen
from payments.model import Account, credit, debit
from payments.processor import (
    AuthorizationResult,
    CardForProcessor,
    Processor,
    ProcessorRefusedError,
    ProcessorUnavailableError,
)
from payments.store import FraudDecision, Intent
from payments.vault import Vault
from payments.wallets import INSUFFICIENT_WALLET_BALANCE

log = structlog.get_logger("payments")

APART_ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a connection to write an intent apart (see `_change`)
# The states a new intent leaves authorize in with a 402 that names it: written apart from the caller.
_NAMED_BY_A_402 = frozenset({model.REQUIRES_ACTION, model.REQUIRES_PAYMENT_METHOD})


async def locked_intent(conn: asyncpg.Connection, intent_id: str) -> Intent:
    """The intent, locked for the rest of the caller's transaction (ResourceMissing when unknown)."""
    intent = await store.get_intent(conn, intent_id, lock=True)
    if intent is None:
        raise ResourceMissing(f"No such payment_intent: '{intent_id}'", param="payment_intent")
    return intent


class FraudDecisions:
    """Fraud decisions written apart from their caller's transaction, by a task of their own, on a
    connection of their own: a checkout that rolls back keeps the decision that refused it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._queued: list[FraudDecision] = []
        self._writer: asyncio.Task[None] | None = None

    def record(self, decision: FraudDecision) -> None:
        """Queue a decision for the writer task; decisions that arrive while it writes go in its
        next statement, so under load many checkouts share one round trip."""
        self._queued.append(decision)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="payments-fraud-decisions")

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                async with self.pool.acquire() as own:
                    await store.insert_fraud_decisions(own, batch)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.exception("fraud_decision.not_stored", payment_intents=[d.intent_id for d in batch])

    async def close(self) -> None:
        """Wait for fraud decisions still being written (call before the pool closes)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.gather(self._writer, return_exceptions=True)


class Confirmations:
    def __init__(self, pool: asyncpg.Pool, *, vault: Vault, processor: Processor, fraud: FraudScreen,
                 decisions: FraudDecisions, exchange: Exchange) -> None:
        self.pool = pool
        self.exchange = exchange
        self.vault = vault
        self.processor = processor
        self.fraud = fraud
        self.decisions = decisions

    async def card(self, conn: asyncpg.Connection, intent: Intent) -> CardForProcessor:
        """The card an intent's payment method charges, opened from the vault."""
        return self._card_of(await store.get_payment_method_for_charge(conn, intent.payment_method_id or ""))

    def _card_of(self, pm: asyncpg.Record | None) -> CardForProcessor:
        sealed = None if pm is None else store.sealed_of(pm)
        if pm is None or sealed is None:
            raise ResourceMissing("No such PaymentMethod", param="payment_method")
        return CardForProcessor(self.vault.open(sealed, pm["id"]), pm["exp_month"], pm["exp_year"])

    async def confirm(self, conn: asyncpg.Connection, intent: Intent, risk: RiskContext, actor: str, *,
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
            promo_code=risk.promo_code, currency=intent.amount.currency,
        )
        action = {model.ALLOW: "allow", model.ELEVATED: "require_authentication", model.HIGHEST: "block"}
        decision: FraudDecision | None = FraudDecision(
            intent_id=intent.id, customer_id=intent.customer_id, score=assessment.score, level=assessment.level,
            action=action[assessment.level], reasons=list(assessment.reasons))
        if assessment.level == model.HIGHEST:
            log.info("payment.blocked", payment_intent=intent.id, score=assessment.score,
                     reasons=list(assessment.reasons))
            return await self.apply(conn, intent, AuthorizationResult(
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
        return await self.apply(conn, intent, result, fingerprint=pm["fingerprint"], decision=decision, new=new,
                                apart=apart)

    async def authenticate(self, conn: asyncpg.Connection, intent: Intent, succeeded: bool, actor: str) -> Intent:
        """The customer came back from the 3-D Secure challenge."""
        try:
            if intent.processor_ref:  # the issuer asked for it
                result = await self.processor.complete_authentication(intent.processor_ref, succeeded)
            elif succeeded:  # our risk rules asked for it
                result = await self.processor.authorize(await self.card(conn, intent), intent.amount,
                                                         processor_key(intent))
            else:
                result = AuthorizationResult("", "declined", intent.amount, "payment_intent_authentication_failure",
                                             "authentication_failed", "The customer failed authentication.")
        except ProcessorUnavailableError:
            raise ProcessorUnavailable() from None
        except ProcessorRefusedError as exc:
            raise ProcessorError(exc.message, processor_code=exc.code, payment_intent=intent.id) from None
        return await self.apply(conn, intent, result)

    async def apply(self, conn: asyncpg.Connection, intent: Intent, result: AuthorizationResult, *,
                    fingerprint: str | None = None, decision: FraudDecision | None = None,
                    new: bool = False, apart: bool = False) -> Intent:
        """Record what the processor (or the wallet, or the fraud screen) answered; an authorized
        intent with automatic capture is captured at once."""
        if result.outcome == "authorized":
            intent = await self._change(
                conn, intent, {"status": model.REQUIRES_CAPTURE, "amount_capturable": intent.amount.amount,
                               "hold": model.HOLD_HELD, "processor_ref": result.charge_id, "next_action": None,
                               "last_error": None},
                event=PaymentAuthorized, amount=intent.amount,
                webhook="payment_intent.amount_capturable_updated", decision=decision, new=new, apart=apart)
            # (A draft's insert that met a concurrent twin's intent returns that one, already settled.)
            if intent.capture_method == "automatic" and intent.status == model.REQUIRES_CAPTURE:
                intent = await self.capture_locked(conn, intent, intent.amount, "system")
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
                                        fingerprint=fingerprint, ip=None, amount=intent.amount.amount,
                                        currency=intent.amount.currency)
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
            return await self.apply(conn, intent, AuthorizationResult(WALLET, "authorized", intent.amount), new=new,
                                    apart=apart)
        return await self.apply(conn, intent, AuthorizationResult(
            "", "declined", intent.amount, INSUFFICIENT_WALLET_BALANCE, "insufficient_funds",
            "The wallet balance is too low for this payment; top it up or pay by card."), new=new, apart=apart)

    async def capture_locked(self, conn: asyncpg.Connection, intent: Intent, amount: Money, actor: str) -> Intent:
        """Capture `amount` of the hold of an intent the caller has locked; the rest is released."""
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
            except ProcessorRefusedError as exc:  # e.g. a charge the processor does not know
                raise ProcessorError(exc.message, processor_code=exc.code, payment_intent=intent.id) from None
            postings = [debit(Account("processor_clearing", cur), amount.amount), credit(clearing, amount.amount)]
        entry = model.entry("capture", cur, postings, actor=actor, reason="capture", intent_id=intent.id,
                            reference=intent.reference, processor_ref=processor_ref,
                            idempotency_key=f"capture:{intent.id}")
        changes = {"status": model.SUCCEEDED, "amount_captured": amount.amount, "amount_capturable": 0,
                   "hold": model.HOLD_CAPTURED}
        if ledger.fits_one_statement(entry):
            # A card capture: the intent, its event and webhooks and the ledger entry in one statement,
            # last before the commit (posting locks the shared clearing accounts until then).
            return await self._change(conn, intent, changes, event=PaymentCaptured, amount=amount,
                                      webhook="payment_intent.succeeded", entry=entry)
        # A wallet capture takes the hold down: the ledger checks that balance before writing.
        captured = await self._change(conn, intent, changes, event=PaymentCaptured, amount=amount,
                                      webhook="payment_intent.succeeded")
        await ledger.post(conn, entry)
        rest = intent.amount_capturable - amount.amount
        # The rest of the hold went back to the wallet: in the currency it paid with, if it converted.
        await self.exchange.return_to_wallet(conn, intent.id, intent.customer_id, Money(rest, amount.currency),
                                             actor=actor)
        return captured

    async def _change(self, conn: asyncpg.Connection, intent: Intent, changes: dict[str, Any], *,
                      event: type[IntentMoved] | None = None, amount: Money | None = None, webhook: str | None = None,
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
            self.decisions.record(decision)
            decision = None
        moved = amount or intent.amount
        events = [event(intent_id=intent.id, reference=intent.reference,
                        amount=MoneyData(moved.amount, moved.currency)).event(intent.id)] if event else []
        hooks = [webhook_payload(webhook, webhook_intent(changed))] if webhook else []
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
