"""Restaurant payouts on a schedule: a tenant sets daily or weekly (on a weekday), a currency and a
minimum; the job (`run_due`, every 10 s in the payments component) pays what the tenant's balance has
`available` (`payments.merchant`: not pending, not reserved for refunds) when it is at least the
minimum, as a payout of the existing kind (`wallets.payout_entry`: the money leaves the balance when
the payout is made; an operator moves it to in_transit, paid or failed, and a failure puts it back,
where the next run pays it again). Each scheduled payout records `settles_until`, the pending period's
start when it was made: the statement lines it settles are the orders' movements between the previous
payout that did not fail and that time, and `held_back` (their nets less the amount) is what the
pending period and the refund reserve kept in the balance meanwhile."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from kernel.clock import Clock
from kernel.ids import new_id
from payments import ledger, payout_store
from payments.merchant import MerchantMoneyPolicy, StatementMovement, balance_parts, next_payout_run
from payments.model import Account
from payments.wallets import announce_payout, payout_entry, restaurant_statement

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MerchantPayout:
    row: asyncpg.Record
    lines: list[StatementMovement]  # the orders' movements it settles (see the module docstring)


class MerchantPayouts:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock

    async def schedule(self, tenant_id: str) -> asyncpg.Record | None:
        async with self.pool.acquire() as conn:
            return await payout_store.get_schedule(conn, tenant_id)

    async def set_schedule(self, tenant_id: str, *, currency: str, every: str, weekday: int | None,
                           minimum_amount: int) -> asyncpg.Record:
        async with self.pool.acquire() as conn:
            return await payout_store.put_schedule(
                conn, tenant_id=tenant_id, currency=currency, every=every, weekday=weekday,
                minimum_amount=minimum_amount, next_run_at=next_payout_run(every, weekday, self.clock.now()))

    async def run_due(self, policy: MerchantMoneyPolicy, limit: int = 50) -> int:
        """Pay every schedule that is due; returns how many payouts were made."""
        now = self.clock.now()
        made = 0
        async with self.pool.acquire() as conn, conn.transaction():
            for s in await payout_store.lock_due_schedules(conn, now, limit):
                rows = await ledger.restaurant_balances(conn, s["tenant_id"], policy.pending_since(now),
                                                        policy.window_since(now))
                row = next((r for r in rows if r["currency"] == s["currency"]), None)
                available = 0 if row is None else balance_parts(
                    s["currency"], row["balance"], row["pending_credits"], row["window_credits"], policy).available
                if available > 0 and available >= s["minimum_amount"]:
                    payout_id = new_id("po")
                    account = Account("restaurant_payable", s["currency"], s["tenant_id"])
                    await ledger.post(conn, payout_entry(payout_id, account, available, 0, "system:payout_schedule"))
                    payout = await payout_store.insert_scheduled_payout(
                        conn, id=payout_id, account_id=account.id, owner_id=s["tenant_id"], amount=available,
                        currency=s["currency"], settles_until=policy.pending_since(now))
                    await announce_payout(conn, "payout.created", payout)
                    made += 1
                await payout_store.advance_schedule(conn, s["tenant_id"],
                                                    next_payout_run(s["every"], s["weekday"], now))
        return made

    async def payouts(self, tenant_id: str, starting_after: str | None, limit: int) -> list[MerchantPayout]:
        """The tenant's payouts, newest first, each with the statement movements it settles."""
        async with self.pool.acquire() as conn:
            rows = await payout_store.restaurant_payouts(conn, tenant_id, starting_after, limit)
            out = []
            for r in rows:
                lines: list[StatementMovement] = []
                if r["settles_until"] is not None:
                    lines = await restaurant_statement(conn, tenant_id, r["settles_from"] or EPOCH,
                                                       r["settles_until"])
                out.append(MerchantPayout(r, lines))
        return out

