"""Property tests: random sequences (some concurrent) of authorize, capture, void,
refund, wallet credit, split, cash-out and payout outcomes keep every invariant."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.errors import DomainError
from kernel.money import Money
from payments import WALLET, Split, ledger
from payments.model import Account, credit, debit, entry

_ids = itertools.count(1)
CUSTOMERS = ("cus_a", "cus_b")
ops = st.lists(st.one_of(
    st.tuples(st.just("authorize"), st.sampled_from(CUSTOMERS), st.booleans(), st.integers(1, 5000)),
    st.tuples(st.just("capture"), st.integers(0, 30), st.integers(1, 100)),  # percent of capturable
    st.tuples(st.just("void"), st.integers(0, 30)),
    st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 100)),
    st.tuples(st.just("credit"), st.sampled_from(CUSTOMERS), st.integers(1, 3000)),
    st.tuples(st.just("split"), st.integers(0, 30)),
    st.tuples(st.just("cash_out"), st.integers(1, 2000)),
    st.tuples(st.just("payout"), st.integers(0, 30), st.sampled_from(["in_transit", "paid", "failed"])),
), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(ops, min_size=1, max_size=3))
async def test_random_operations_keep_the_books_balanced(payments, add_card, db, test_processor, batches) -> None:
    cards = {c: await add_card(c) for c in CUSTOMERS}
    intents: list[str] = []
    payouts: list[str] = []

    async def run(op: tuple) -> None:
        name = op[0]
        if name in ("cash_out", "payout"):
            # These take their own connection: holding one here too would let four of them
            # (the pool's size) wait forever for a fifth.
            try:
                if name == "cash_out":
                    payout = await payments.wallets.cash_out("cou_1", Money(op[1], "EUR"), instant=True,
                                                             actor="cou_1")
                    payouts.append(payout["id"])
                elif payouts:
                    await payments.wallets.update_payout(payouts[op[1] % len(payouts)], op[2], None, "ops")
            except DomainError:
                pass  # a refused operation (overdraft, a finished payout) must leave no trace
            return
        async with db.acquire() as conn:
            try:
                if name == "authorize":
                    _, cus, wallet, amount = op
                    auth = await payments.authorize(
                        conn, customer_id=cus, payment_method_id=WALLET if wallet else cards[cus],
                        amount=Money(amount, "EUR"), reference=f"ord_{next(_ids)}", idempotency_key=f"k{next(_ids)}")
                    intents.append(auth.intent_id)
                elif name in ("capture", "refund", "void", "split") and intents:
                    intent_id = intents[op[1] % len(intents)]
                    row = await conn.fetchrow("SELECT * FROM payment_intents WHERE id = $1", intent_id)
                    if name == "capture":
                        amount = max(1, row["amount_capturable"] * op[2] // 100)
                        await payments.capture(conn, intent_id, Money(amount, "EUR"))
                    elif name == "refund":
                        amount = max(1, (row["amount_captured"] - row["amount_refunded"]) * op[2] // 100)
                        await payments.refund(conn, intent_id, Money(amount, "EUR"), "test")
                    elif name == "void":
                        await payments.void(conn, intent_id, "test")
                    elif row["amount_captured"] > 2:
                        c = row["amount_captured"]
                        await payments.post_split(conn, reference=intent_id, split=Split(
                            "EUR", c, c // 2, "res_1", c - c // 2 - 1, "cou_1", 1, 0))
                elif name == "credit":
                    await ledger.post(conn, entry("grant", "EUR", [
                        debit(Account("platform_promotions", "EUR"), op[2]),
                        credit(Account("customer_wallet", "EUR", op[1]), op[2])], actor="test"))
            except DomainError:
                pass  # a refused operation (decline, over-capture, overdraft) must leave no trace

    for batch in batches:
        await asyncio.gather(*(run(op) for op in batch))
    async with db.acquire() as conn:
        assert set((await ledger.sums_per_currency(conn)).values()) <= {0}
        assert await ledger.balances_match_postings(conn) == []
        assert await conn.fetchval(
            "SELECT count(*) FROM ledger_accounts WHERE non_negative AND balance < 0") == 0
        bad = await conn.fetch(
            """SELECT id, status, hold FROM payment_intents WHERE amount_captured > amount
                  OR amount_refunded > amount_captured
                  OR (status = 'requires_capture') <> (hold = 'held')
                  OR (status = 'succeeded' AND hold <> 'captured')
                  OR (status = 'canceled' AND hold NOT IN ('released', 'none'))""")
        assert bad == []
        # Every hold ends exactly once: one capture or one release entry per wallet intent at most.
        assert await conn.fetchval(
            """SELECT count(*) FROM (SELECT intent_id FROM journal_entries
                WHERE kind IN ('capture', 'wallet_release') GROUP BY intent_id HAVING count(*) > 1) x""") == 0
        captured = await conn.fetchval("SELECT coalesce(sum(amount_captured), 0) FROM payment_intents "
                                       "WHERE payment_method_id <> 'wallet'")
        settled = sum(s.amount.amount for s in test_processor.book.lines if s.type == "capture")
        assert captured == settled  # the processor captured exactly what the ledger recorded
