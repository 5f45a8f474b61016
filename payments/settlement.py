"""What happens to captured money: refunds (to the card, through the processor, or to the
customer's wallet) and the split that settles an order among the restaurant, the courier, the
platform and the tax authority. Both take the caller's connection, so they join its transaction.

`Refunds` is a collaborator of the `PaymentsService` facade (see `service`), built with the
processor it refunds cards through.
"""

from __future__ import annotations

import asyncpg

from kernel.ids import new_id
from kernel.money import Money
from kernel.outbox import MoneyData, announce
from payments import ledger, model, store
from payments.confirm import locked_intent
from payments.errors import InsufficientBalance, ProcessorError, ProcessorUnavailable
from payments.event_types import PaymentRefunded, RefundCreated
from payments.exchange import Exchange
from payments.intents import WALLET, webhook_intent, webhook_payload
from payments.merchant import Charge
from payments.model import Account, Split, credit, debit
from payments.processor import Processor, ProcessorRefusedError, ProcessorUnavailableError
from payments.store import Intent


class Refunds:
    def __init__(self, processor: Processor, exchange: Exchange) -> None:
        self.processor = processor
        self.exchange = exchange

    async def charges(self, conn: asyncpg.Connection, intent_ids: list[str]) -> list[Charge]:
        """What each of these intents captured and refunded (unknown ids are left out), in their order."""
        found = [await store.get_intent(conn, i) for i in dict.fromkeys(intent_ids)]
        return [Charge(i.id, i.amount.currency, i.amount_captured, i.amount_refunded) for i in found if i is not None]

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     destination: str = "card", idempotency_key: str | None = None, actor: str = "system",
                     borne_by: str | None = None) -> str:
        """Refund part or all of what was captured (the total never exceeds it); returns the refund id.
        `destination="wallet"` credits the customer's wallet instead of the card. The same
        `idempotency_key` on the same intent returns the first refund; it also names the processor's
        refund, so a caller whose transaction rolled back after the processor refunded, and who
        retries with the same key, gets that refund again, not a second one.

        `payment.refunded` announces it with the refund id (what its consumers dedupe by), the
        reason and the intent's totals after it: how an order learns of a refund made here.

        The platform bears a refund (`platform_refunds`) unless `borne_by` names the restaurant tenant
        that made it (a merchant refund): then its `restaurant_payable` account pays, and a balance too
        low for it is refused (402 `balance_insufficient`) before the processor is asked."""
        async with conn.transaction():
            intent = await locked_intent(conn, intent_id)
            if idempotency_key:
                found = await store.find_refund_by_key(conn, intent.id, idempotency_key)
                if found is not None:
                    return str(found["id"])
            model.check_refund(intent.status, intent.amount_captured, intent.amount_refunded, amount)
            refund_id = new_id("re")
            cur = amount.currency
            bearer = Account("restaurant_payable", cur, borne_by) if borne_by else Account("platform_refunds", cur)
            if borne_by and await ledger.locked_balance(conn, bearer) < amount.amount:
                raise InsufficientBalance(f"the restaurant's balance cannot cover a refund of {amount}",
                                          account=bearer.id)
            to_wallet = destination == "wallet" or intent.payment_method_id == WALLET
            processor_ref = None
            if to_wallet:
                target = Account("customer_wallet", cur, intent.customer_id)
            else:
                key = f"refund:{intent.id}:{idempotency_key}" if idempotency_key else refund_id
                try:
                    processor_ref = await self.processor.refund(intent.processor_ref or "", amount, key)
                except ProcessorUnavailableError:
                    raise ProcessorUnavailable() from None
                except ProcessorRefusedError as exc:
                    raise ProcessorError(exc.message, processor_code=exc.code, payment_intent=intent.id) from None
                target = Account("processor_clearing", cur)
            await ledger.post(conn, model.entry(
                "refund", cur, [debit(bearer, amount.amount), credit(target, amount.amount)],
                actor=actor, reason=reason, intent_id=intent.id, refund_id=refund_id, reference=intent.reference,
                processor_ref=processor_ref, idempotency_key=f"refund:{refund_id}"))
            if intent.payment_method_id == WALLET:  # paid from the wallet in another currency: back into it
                await self.exchange.return_to_wallet(conn, intent.id, intent.customer_id, amount, actor=actor)
            await store.insert_refund(
                conn, id=refund_id, intent_id=intent.id, amount=amount, status="succeeded",
                destination="wallet" if to_wallet else "card", reason=reason, processor_ref=processor_ref,
                idempotency_key=idempotency_key, created_by=actor,
            )
            intent = await store.update_intent(conn, intent.id, amount_refunded=intent.amount_refunded + amount.amount)
            await _announce_refund(conn, intent, refund_id, amount, reason, "wallet" if to_wallet else "card",
                                   borne_by)
            return refund_id


async def _announce_refund(conn: asyncpg.Connection, intent: Intent, refund_id: str, amount: Money, reason: str,
                           destination: str, borne_by: str | None) -> None:
    """`payment.refunded` for the packages that count refunds, `refund.created` for the merchant whose order
    it is (the tenant that bore it, or the one the order's split credited), the platform's webhook."""
    money = MoneyData(amount.amount, amount.currency)
    await announce(conn, PaymentRefunded(
        intent_id=intent.id, reference=intent.reference, amount=money, refund_id=refund_id, reason=reason,
        destination=destination, amount_captured=intent.amount_captured, amount_refunded=intent.amount_refunded),
        intent.id)
    order_id = intent.reference.split(":", 1)[0] if intent.reference else None
    tenant_id = borne_by or (await ledger.restaurant_of_order(conn, order_id) if order_id else None)
    await announce(conn, RefundCreated(
        intent_id=intent.id, reference=intent.reference, amount=money, refund_id=refund_id, order_id=order_id,
        tenant_id=tenant_id, reason=reason, destination=destination,
        borne_by="restaurant" if borne_by else "platform"), refund_id)
    hook = {**webhook_intent(intent), "refund": refund_id}
    await store.enqueue_webhook(conn, "charge.refunded", webhook_payload("charge.refunded", hook))


async def post_split(conn: asyncpg.Connection, *, reference: str, split: Split, actor: str = "system") -> str:
    """Divide a captured charge: restaurant payable, courier earnings, platform revenue,
    tax. Idempotent by reference; returns the journal entry id. The order is noted as the
    restaurant's (`order_restaurants`) even when its share is zero, which the ledger drops."""
    split.check()
    await ledger.record_order_restaurant(conn, reference, split.restaurant_id)
    outcome = await ledger.post(conn, model.entry(
        "split", split.currency, model.split_postings(split), actor=actor, reason="order settlement",
        reference=reference, idempotency_key=f"split:{reference}"))
    return outcome.entry_id
