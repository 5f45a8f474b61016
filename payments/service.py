"""The payments facade: `PaymentsService` is the one object the app holds (under
`payments.web.PAYMENTS`) and the interface `orders/` uses. It owns no logic of its own: its
constructor builds the collaborators that hold the use cases, each given only what it uses,
and each method hands its call to one of them.

- `PaymentMethods` (`methods`): adding a card;
- `Authorizations` (`authorizations`): `authorize`, `attach_authorized` and `capture` in the
  caller's transaction, and the REST flows of an intent (create, confirm, capture, cancel, read);
- `Confirmations` (`confirm`): screening, authorization, capture and the writes that record them,
  with `FraudDecisions`, the writer of decisions that outlive their caller's transaction;
- `Holds` (`holds`): `void`, the unused-hold sweeper, the resolver of `processing`;
- `Refunds` (`settlement`): `refund`; `settlement.post_split` settles an order's charge;
- `Wallets` (`wallets`): wallets, credits and payouts;
- `Exchange` (`exchange`): exchange rates, conversion quotes and conversions, the ledger report;
- `MerchantPayouts` (`merchant_payouts`): restaurants' payout schedules and the payouts they make.

The methods `orders/` calls take the caller's connection so the hold, capture, refund and split
join the orders transaction; the REST flows open their own. Names other packages import from here
are re-exported below.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from kernel.clock import Clock
from kernel.money import Money
from payments import model, settlement, store
from payments.authorizations import Authorizations
from payments.confirm import Confirmations, FraudDecisions
from payments.exchange import Exchange
from payments.holds import Holds
from payments.intents import WALLET as WALLET
from payments.intents import Authorization as Authorization
from payments.intents import RiskContext as RiskContext
from payments.intents import attempt_id as attempt_id
from payments.intents import processor_key as processor_key
from payments.intents import webhook_payload
from payments.live import FraudScreen
from payments.merchant import Charge, StatementMovement
from payments.merchant_payouts import MerchantPayouts
from payments.methods import PaymentMethods
from payments.model import Split
from payments.processor import Processor
from payments.settlement import Refunds
from payments.store import Intent
from payments.vault import Vault
from payments.wallets import Wallets


class PaymentsService:
    """The facade: every use case is a method here, carried out by a collaborator (module docstring)."""

    def __init__(self, pool: asyncpg.Pool, *, vault: Vault, processor: Processor, fraud: FraudScreen,
                 clock: Clock) -> None:
        self.pool = pool
        self.vault = vault
        self.processor = processor
        self.fraud = fraud
        self.clock = clock
        self.fraud_decisions = FraudDecisions(pool)
        self.exchange = Exchange(pool, clock)
        self.confirmations = Confirmations(pool, vault=vault, processor=processor, fraud=fraud,
                                           decisions=self.fraud_decisions, exchange=self.exchange)
        self.holds = Holds(pool, processor, self.confirmations, self.exchange)
        self.intents = Authorizations(pool, clock, self.confirmations, self.holds, self.exchange)
        self.refunds = Refunds(processor, self.exchange)
        self.methods = PaymentMethods(pool, vault, clock)
        self.wallets = Wallets(pool, clock)
        self.merchant_payouts = MerchantPayouts(pool, clock)

    async def close(self) -> None:
        """Wait for fraud decisions still being written (call before the pool closes)."""
        await self.fraud_decisions.close()

    # ------------------------------------------------------------ payment methods

    async def add_card(self, customer_id: str, card: model.CardInput, holder_name: str | None) -> asyncpg.Record:
        return await self.methods.add_card(customer_id, card, holder_name)

    # ------------------------------------------------------------ the interface orders/ uses

    async def authorize(self, conn: asyncpg.Connection, *, customer_id: str, payment_method_id: str, amount: Money,
                        reference: str, idempotency_key: str, metadata: dict[str, Any] | None = None,
                        risk: RiskContext | None = None, conversion_quote: str | None = None) -> Authorization:
        """Place a hold (see `Authorizations.authorize`; `conversion_quote`: the customer's accepted
        conversion of wallet money into the amount's currency)."""
        return await self.intents.authorize(
            conn, customer_id=customer_id, payment_method_id=payment_method_id, amount=amount, reference=reference,
            idempotency_key=idempotency_key, metadata=metadata, risk=risk, conversion_quote=conversion_quote)

    async def attach_authorized(self, conn: asyncpg.Connection, *, intent_id: str, customer_id: str, amount: Money,
                                reference: str, metadata: dict[str, Any] | None = None) -> Authorization:
        """Let a hold confirmed apart (after 3-D Secure) pay for `reference` (see `Authorizations`)."""
        return await self.intents.attach_authorized(conn, intent_id=intent_id, customer_id=customer_id,
                                                    amount=amount, reference=reference, metadata=metadata)

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money, *, actor: str = "system") -> None:
        """Capture `amount` (≤ authorized); the rest of the hold is released."""
        await self.intents.capture(conn, intent_id, amount, actor=actor)

    async def void(self, conn: asyncpg.Connection, intent_id: str, reason: str, *, actor: str = "system") -> None:
        """Cancel the intent and release its hold; voiding a canceled intent is a no-op."""
        await self.holds.void(conn, intent_id, reason, actor=actor)

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     destination: str = "card", idempotency_key: str | None = None, actor: str = "system",
                     borne_by: str | None = None) -> str:
        """Refund part or all of what was captured; returns the refund id (see `Refunds.refund`;
        `borne_by`: the restaurant tenant that pays it, else the platform)."""
        return await self.refunds.refund(conn, intent_id, amount, reason, destination=destination,
                                         idempotency_key=idempotency_key, actor=actor, borne_by=borne_by)

    async def post_split(self, conn: asyncpg.Connection, *, reference: str, split: Split,
                         actor: str = "system") -> str:
        """Divide a captured charge; idempotent by reference; returns the journal entry id."""
        return await settlement.post_split(conn, reference=reference, split=split, actor=actor)

    async def charges(self, conn: asyncpg.Connection, intent_ids: list[str]) -> list[Charge]:
        """What each of these intents captured and refunded (see `Refunds.charges`)."""
        return await self.refunds.charges(conn, intent_ids)

    async def restaurant_statement(self, conn: asyncpg.Connection, tenant_id: str, start: datetime,
                                   end: datetime) -> list[StatementMovement]:
        """Per order of the restaurant tenant, what the ledger moved for it in [start, end) (see `Wallets`)."""
        return await self.wallets.restaurant_statement(conn, tenant_id, start, end)

    async def payment_method_usable(self, conn: asyncpg.Connection, customer_id: str, payment_method_id: str) -> bool:
        """Whether `payment_method_id` is a card of the customer's, not detached (memberships checks
        the card a trial will be charged on when it ends)."""
        row = await store.get_payment_method(conn, payment_method_id)
        return row is not None and row["customer_id"] == customer_id and row["detached_at"] is None

    async def send_webhook(self, conn: asyncpg.Connection, event_type: str, obj: dict[str, Any]) -> None:
        """Queue `obj` as a Stripe-shaped event of `event_type` for every webhook endpoint that takes
        it, in the caller's transaction (memberships' `subscription.*` and `invoice.*`)."""
        await store.enqueue_webhook(conn, event_type, webhook_payload(event_type, obj))

    # ------------------------------------------------------------ REST flows (own transactions)

    async def create_intent(self, *, customer_id: str, amount: Money, payment_method_id: str | None, confirm: bool,
                            capture_method: str, metadata: dict[str, Any], idempotency_key: str | None,
                            risk: RiskContext, conversion_quote: str | None = None) -> Intent:
        return await self.intents.create_intent(
            customer_id=customer_id, amount=amount, payment_method_id=payment_method_id, confirm=confirm,
            capture_method=capture_method, metadata=metadata, idempotency_key=idempotency_key, risk=risk,
            conversion_quote=conversion_quote)

    async def confirm_intent(self, intent_id: str, *, payment_method_id: str | None, authentication: str | None,
                             risk: RiskContext, actor: str) -> Intent:
        return await self.intents.confirm_intent(intent_id, payment_method_id=payment_method_id,
                                                 authentication=authentication, risk=risk, actor=actor)

    async def capture_intent(self, intent_id: str, amount: int | None, actor: str) -> Intent:
        return await self.intents.capture_intent(intent_id, amount, actor)

    async def cancel_intent(self, intent_id: str, reason: str | None, actor: str) -> Intent:
        return await self.intents.cancel_intent(intent_id, reason, actor)

    async def get_intent(self, intent_id: str) -> Intent:
        return await self.intents.get_intent(intent_id)

    # ------------------------------------------------------------ background rounds

    async def resolve_processing(self, older_than_seconds: float = 0.0) -> int:
        """Settle intents left `processing` by an outage; returns how many left it (see `Holds`)."""
        return await self.holds.resolve_processing(older_than_seconds)

    async def release_unused_holds(self, older_than_seconds: float, limit: int = 100) -> int:
        """Void checkout holds no order claimed; returns how many (see `Holds.release_unused_holds`)."""
        return await self.holds.release_unused_holds(older_than_seconds, limit)
