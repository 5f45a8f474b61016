"""What memberships needs from payments: this Protocol and nothing more. The composition root passes
the real `payments.PaymentsService` (it matches structurally); every call takes the caller's
connection, so a charge, its capture, its ledger entries and the subscription's new state commit or
roll back together."""

from __future__ import annotations

from typing import Any, Protocol

import asyncpg

from kernel.money import Money
from payments import Authorization, RiskContext


class Billing(Protocol):
    async def authorize(
        self, conn: asyncpg.Connection, *, customer_id: str, payment_method_id: str, amount: Money, reference: str,
        idempotency_key: str, metadata: dict[str, Any] | None = None, risk: RiskContext | None = None,
    ) -> Authorization:
        """A hold on the card, off-session; a decline or a 3-D Secure challenge raises payments' 402s."""
        ...

    async def capture(self, conn: asyncpg.Connection, intent_id: str, amount: Money) -> object: ...

    async def refund(self, conn: asyncpg.Connection, intent_id: str, amount: Money, reason: str, *,
                     idempotency_key: str | None = None) -> str:
        """Refund part of a captured charge (the platform bears it); returns the refund id."""
        ...

    async def post_split(self, conn: asyncpg.Connection, *, reference: str, split: Any) -> object:
        """Settle a captured charge in the ledger (idempotent by reference)."""
        ...

    async def payment_method_usable(self, conn: asyncpg.Connection, customer_id: str, payment_method_id: str) -> bool:
        ...

    async def send_webhook(self, conn: asyncpg.Connection, event_type: str, obj: dict[str, Any]) -> None:
        ...
