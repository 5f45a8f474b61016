"""Ending holds: `void` (cancel an intent and release its hold), the sweeper of checkout holds
no order claimed (`release_unused_holds`), which voids them, and the resolver of intents an
outage left `processing` (`resolve_processing`).

`Holds` is a collaborator of the `PaymentsService` facade (see `service`), built with the pool,
the processor and the `Confirmations` whose writes it reuses (`apply` records what the processor
answers the resolver; `card` opens the card it retries with).
"""

from __future__ import annotations

import asyncpg
import structlog

from kernel.money import Money
from kernel.outbox import MoneyData, announce
from payments import ledger, model, store
from payments.confirm import Confirmations, locked_intent
from payments.errors import ProcessorError, ProcessorUnavailable
from payments.event_types import PaymentVoided
from payments.exchange import Exchange
from payments.intents import WALLET, processor_key, webhook_intent, webhook_payload
from payments.model import Account, credit, debit
from payments.processor import Processor, ProcessorRefusedError, ProcessorUnavailableError
from payments.store import Intent

log = structlog.get_logger("payments")

ABANDONED = "abandoned"  # the cancellation_reason of a checkout hold the sweeper voids (Stripe's value)


class Holds:
    def __init__(self, pool: asyncpg.Pool, processor: Processor, confirmations: Confirmations,
                 exchange: Exchange) -> None:
        self.pool = pool
        self.exchange = exchange
        self.processor = processor
        self.confirmations = confirmations

    async def void(self, conn: asyncpg.Connection, intent_id: str, reason: str, *, actor: str = "system") -> None:
        """Cancel the intent and release its hold; voiding a canceled intent is a no-op."""
        async with conn.transaction():
            intent = await locked_intent(conn, intent_id)
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
                    await self.exchange.return_to_wallet(
                        conn, intent.id, intent.customer_id, Money(intent.amount_capturable, intent.amount.currency),
                        actor=actor)
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
                except ProcessorRefusedError as exc:
                    if exc.code != "resource_missing":
                        raise ProcessorError(exc.message, processor_code=exc.code, payment_intent=intent.id) from None
                    # A processor that does not know the charge holds nothing on the card for it:
                    # there is nothing to release, and the intent is canceled as asked.
                    log.warning("payment.void_of_unknown_charge", payment_intent=intent.id, charge=intent.processor_ref)
            intent = await store.update_intent(
                conn, intent.id, status=model.CANCELED, amount_capturable=0, cancellation_reason=reason,
                hold=model.HOLD_RELEASED if intent.hold == model.HOLD_HELD else intent.hold,
            )
            await _announce_voided(conn, intent)

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
                intent = await locked_intent(conn, intent_id)
                if intent.status != model.PROCESSING:
                    continue
                try:
                    result = await self.processor.retrieve(processor_key(intent))
                    if result is None:
                        card = await self.confirmations.card(conn, intent)
                        result = await self.processor.authorize(card, intent.amount, processor_key(intent))
                except ProcessorUnavailableError:
                    break  # still down; the next round tries again
                intent = await self.confirmations.apply(conn, intent, result)
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


async def _announce_voided(conn: asyncpg.Connection, intent: Intent) -> None:
    await announce(conn, PaymentVoided(intent_id=intent.id, reference=intent.reference,
                                       amount=MoneyData(intent.amount.amount, intent.amount.currency)), intent.id)
    webhook = "payment_intent.canceled"
    await store.enqueue_webhook(conn, webhook, webhook_payload(webhook, webhook_intent(intent)))
