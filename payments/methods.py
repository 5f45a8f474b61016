"""Payment methods: a card is validated, sealed in the vault under its new id and stored with
what may be shown of it (brand, last four digits, expiry) and its fingerprint (what the fraud
screen counts cards by).

`PaymentMethods` is a collaborator of the `PaymentsService` facade (see `service`), built with
the pool, the vault and the clock (a card's expiry is checked against today).
"""

from __future__ import annotations

import asyncpg
import structlog

from kernel.clock import Clock
from kernel.ids import new_id
from payments import model, store
from payments.vault import Vault

log = structlog.get_logger("payments")


class PaymentMethods:
    def __init__(self, pool: asyncpg.Pool, vault: Vault, clock: Clock) -> None:
        self.pool = pool
        self.vault = vault
        self.clock = clock

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
