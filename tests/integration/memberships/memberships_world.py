"""The world memberships' integration tests run in: payments and memberships on a clock the test moves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from kernel.clock import ManualClock
from memberships.messages import BenefitsIn, CreatePlan
from memberships.model import Benefits, Plan
from memberships.service import MembershipsService
from payments import PaymentsService
from payments.live import FraudScreen
from payments.processor import CircuitBreaker, ResilientProcessor, TestModeProcessor
from payments.vault import Vault

OK_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_SECURE_CARD = "4000002500003155"


@dataclass
class World:
    clock: ManualClock
    processor: TestModeProcessor
    payments: PaymentsService
    memberships: MembershipsService
    db: asyncpg.Pool
    add_card: Callable[[str, str], Awaitable[str]]

    async def plan(self, *, amount: int = 999, interval: str = "month", trial_days: int = 0) -> Plan:
        return await self.memberships.create_plan(CreatePlan(
            name="Plus", region="test", amount=amount, currency="USD", interval=interval,  # type: ignore[arg-type]
            trial_days=trial_days, benefits=BenefitsIn(free_delivery_min_subtotal=1500, service_fee_discount_bps=5000),
        ), "usr_operator")

    async def advance_to(self, at: datetime) -> None:
        self.clock.advance(max(0.0, (at - self.clock.now()).total_seconds()) + 1)

    async def ledger_sums(self) -> dict[str, int]:
        """The sum of every posting per currency (zero when the ledger balances)."""
        rows = await self.db.fetch("SELECT currency, sum(amount)::bigint AS total FROM postings GROUP BY currency")
        return {r["currency"]: r["total"] for r in rows}

    async def benefits_for(self, customer_id: str) -> Benefits | None:
        async with self.db.acquire() as conn:
            return await self.memberships.benefits(conn, customer_id, "test", "USD")

    async def balance(self, account_id: str) -> int:
        return int(await self.db.fetchval("SELECT coalesce(balance, 0) FROM ledger_accounts WHERE id = $1",
                                          account_id) or 0)


def make_payments(pool: asyncpg.Pool, redis, settings, processor: TestModeProcessor,
                  clock: ManualClock) -> PaymentsService:
    resilient = ResilientProcessor(processor, CircuitBreaker(clock.monotonic, threshold=3, cooldown=0.05),
                                   timeout=1.0, retries=1, backoff=0.001)
    return PaymentsService(pool, vault=Vault(settings.vault_key), processor=resilient,
                           fraud=FraudScreen(redis, settings.redis_prefix, clock), clock=clock)


