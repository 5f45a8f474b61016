"""Which payout retries a failed one, against real PostgreSQL (`payments.payout_store`): the first payout of
the same balance (owner, kind, currency) made after the failure; a chain of failures retries link by link;
payouts of another currency or owner are no retry; a failed payout not retried yet is paid again at its
tenant's next scheduled run in its currency, and at no time known without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from payments import payout_store

T0 = datetime(2026, 12, 1, tzinfo=UTC)


async def _payout(conn, pid: str, *, owner: str = "ten_a", currency: str = "EUR", created_h: int,
                  failed_h: int | None = None, kind: str = "restaurant") -> None:
    created = T0 + timedelta(hours=created_h)
    await conn.execute(
        """INSERT INTO payouts (id, account_id, owner_id, kind, amount, fee, currency, status, created_by,
                                created_at, updated_at)
           VALUES ($1, $2, $3, $4, 1000, 0, $5, $6, 'test', $7, $8)""",
        pid, f"{kind}:{owner}:{currency}", owner, kind, currency, "failed" if failed_h is not None else "pending",
        created, created if failed_h is None else T0 + timedelta(hours=failed_h))


async def test_a_failed_payout_is_retried_by_the_next_payout_of_its_balance(db) -> None:
    async with db.acquire() as conn:
        await _payout(conn, "po_1", created_h=0, failed_h=5)
        await _payout(conn, "po_2", created_h=3, currency="GBP")  # another balance, and before the failure
        await _payout(conn, "po_3", created_h=6, currency="GBP")  # another balance
        await _payout(conn, "po_4", created_h=7, owner="ten_b")  # another owner
        await _payout(conn, "po_5", created_h=8, kind="courier", owner="ten_a")  # another kind
        await _payout(conn, "po_6", created_h=24, failed_h=30)  # po_1's retry, failed in turn
        await _payout(conn, "po_7", created_h=48)  # po_6's retry
        await _payout(conn, "po_8", created_h=49, failed_h=50)  # not retried yet
        await payout_store.put_schedule(conn, tenant_id="ten_a", currency="EUR", every="daily", weekday=None,
                                        minimum_amount=0, next_run_at=T0 + timedelta(days=3))
        facts = await payout_store.retry_facts(conn, ["po_1", "po_6", "po_7", "po_8", "po_3"])
        listed = {r["id"]: r for r in await payout_store.restaurant_payouts(conn, "ten_a", None, 100)}
    got = {p: (f["retried_by"], list(f["retry_of"]), f["next_attempt_at"]) for p, f in facts.items()}
    assert got == {
        "po_1": ("po_6", [], None),
        "po_6": ("po_7", ["po_1"], None),
        "po_7": (None, ["po_6"], None),
        "po_8": (None, [], T0 + timedelta(days=3)),
        "po_3": (None, [], None),  # a GBP payout: no failure to retry, and the schedule is in EUR
    }
    assert set(listed) == {"po_1", "po_2", "po_3", "po_6", "po_7", "po_8"}
    for p, f in facts.items():
        assert (listed[p]["retried_by"], list(listed[p]["retry_of"]), listed[p]["next_attempt_at"]) == (
            f["retried_by"], list(f["retry_of"]), f["next_attempt_at"])
    async with db.acquire() as conn:
        await conn.execute("DELETE FROM merchant_payout_schedules")
        assert (await payout_store.retry_facts(conn, ["po_8"]))["po_8"]["next_attempt_at"] is None  # unknown now
