"""Authorize and capture in few statements, against real servers: the statements are counted with asyncpg's
query logger, and the guarantees the shorter forms must keep are checked (one hold per key, the event in the
caller's transaction, a balanced ledger, a capture posted once, fraud decisions kept apart from rollbacks)."""

from __future__ import annotations

import asyncio

import asyncpg

from kernel.money import Money
from payments import PaymentDeclined, ledger
from payments.service import PaymentsService
from tests.statement_counter import Statements

EUR = "EUR"


async def authorize(payments: PaymentsService, conn: asyncpg.Connection, customer: str, pm: str, key: str,
                    amount: int = 2500):
    return await payments.authorize(conn, customer_id=customer, payment_method_id=pm, amount=Money(amount, EUR),
                                    reference=f"ord_{key}", idempotency_key=key)


async def test_authorize_in_the_callers_transaction_is_two_statements_and_rolls_back_whole(
        payments, add_card, db) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        async with conn.transaction():  # the first use on a connection also asks for type information
            await authorize(payments, conn, "cus_1", pm, "warm")
        seen = Statements(conn)
        tx = conn.transaction()
        await tx.start()
        await seen.reset()
        held = await authorize(payments, conn, "cus_1", pm, "k1")
        assert await seen.count() == 2  # the method (+ vault, + this key's intent), the intent with its event
        assert held.status == "requires_capture"
        await tx.rollback()  # orders refusing the checkout: no intent and no event remain
        assert await conn.fetchval("SELECT count(*) FROM payment_intents WHERE id = $1", held.intent_id) == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE aggregate_id = $1", held.intent_id) == 0
        async with conn.transaction():
            kept = await authorize(payments, conn, "cus_1", pm, "k2")
        [event] = await conn.fetch("SELECT type FROM outbox WHERE aggregate_id = $1", kept.intent_id)
        assert event["type"] == "payment.authorized"
        row = await conn.fetchrow("SELECT status, amount_capturable, hold FROM payment_intents WHERE id = $1",
                                  kept.intent_id)
        assert tuple(row) == ("requires_capture", 2500, "held")
    await payments.close()


async def test_a_retry_with_the_same_key_returns_the_held_intent_without_a_second_charge(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        async with conn.transaction():
            first = await authorize(payments, conn, "cus_1", pm, "same")
        async with conn.transaction():
            again = await authorize(payments, conn, "cus_1", pm, "same")
    assert again == first
    assert (await test_processor.authorizations()) == 1
    await payments.close()


async def test_concurrent_twins_in_open_transactions_share_one_intent_and_one_charge(
        payments, add_card, db, test_processor) -> None:
    pm = await add_card("cus_1")
    test_processor.latency = 0.02

    async def one():
        async with db.acquire() as conn, conn.transaction():
            return await authorize(payments, conn, "cus_1", pm, "twin")

    results = await asyncio.gather(*(one() for _ in range(4)))
    assert len({r.intent_id for r in results}) == 1
    assert (await test_processor.authorizations()) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM payment_intents") == 1
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'payment.authorized'") == 1
    await payments.close()


async def test_capture_is_one_write_with_its_ledger_entry_and_the_books_balance(payments, add_card, db) -> None:
    pm = await add_card("cus_1")
    async with db.acquire() as conn:
        async with conn.transaction():
            warm = await authorize(payments, conn, "cus_1", pm, "warm")
        await payments.capture(conn, warm.intent_id, Money(2500, EUR))
        async with conn.transaction():
            held = await authorize(payments, conn, "cus_1", pm, "k1", amount=3000)
        seen = Statements(conn)
        await seen.reset()
        await payments.capture(conn, held.intent_id, Money(2200, EUR))
        assert await seen.count() == 4  # BEGIN, the locked intent, the write (intent, event, ledger), COMMIT
        await payments.capture(conn, held.intent_id, Money(2200, EUR))  # a replay posts nothing more
        entries = await conn.fetch("SELECT id FROM journal_entries WHERE intent_id = $1", held.intent_id)
        assert len(entries) == 1
        postings = await conn.fetch("SELECT account_id, amount FROM postings WHERE entry_id = $1 ORDER BY seq",
                                    entries[0]["id"])
        assert [tuple(p) for p in postings] == [("processor_clearing:EUR", 2200), ("customer_card_clearing:EUR", -2200)]
        assert await ledger.sums_per_currency(conn) == {EUR: 0}
        assert await ledger.balances_match_postings(conn) == []
        assert await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = 'customer_card_clearing:EUR'") \
            == 2500 + 2200
        row = await conn.fetchrow("SELECT status, amount_captured, amount_capturable, hold FROM payment_intents "
                                  "WHERE id = $1", held.intent_id)
        assert tuple(row) == ("succeeded", 2200, 0, "captured")
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE type = 'payment.captured' "
                                   "AND aggregate_id = $1", held.intent_id) == 1
    await payments.close()


async def test_concurrent_captures_keep_the_shared_clearing_accounts_exact(payments, add_card, db,
                                                                          database_url) -> None:
    pm = await add_card("cus_1")
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    try:
        async def hold_and_capture(i: int) -> None:
            async with pool.acquire() as conn:
                async with conn.transaction():
                    held = await authorize(payments, conn, "cus_1", pm, f"c{i}", amount=1000 + i)
                await payments.capture(conn, held.intent_id, Money(1000 + i, EUR))

        await asyncio.gather(*(hold_and_capture(i) for i in range(24)))
        async with pool.acquire() as conn:
            assert await ledger.sums_per_currency(conn) == {EUR: 0}
            assert await ledger.balances_match_postings(conn) == []
            assert await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = 'processor_clearing:EUR'") \
                == sum(1000 + i for i in range(24))
    finally:
        await pool.close()
        await payments.close()


async def test_rest_create_and_confirm_is_two_statements_and_capture_four(payments, add_card, database_url) -> None:
    from fooddispatch.database import release_connection  # the app's pool: no session reset on release
    from payments import RiskContext

    pm = await add_card("cus_1")
    sent: list[str] = []

    async def log(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: sent.append(record.query))

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, init=log, reset=release_connection)
    rest = PaymentsService(pool, vault=payments.vault, processor=payments.processor, fraud=payments.fraud,
                           clock=payments.clock)

    async def create(key: str):
        return await rest.create_intent(customer_id="cus_1", amount=Money(2500, EUR), payment_method_id=pm,
                                        confirm=True, capture_method="manual", metadata={}, idempotency_key=key,
                                        risk=RiskContext())

    async def statements_of(work):
        await asyncio.sleep(0)
        sent.clear()
        result = await work
        await asyncio.sleep(0)
        return result, len(sent)

    try:
        warm = await create("warm")  # type information on first use
        await rest.capture_intent(warm.id, None, "opr")
        intent, created_with = await statements_of(create("k1"))
        captured, captured_with = await statements_of(rest.capture_intent(intent.id, None, "opr"))
        again, replayed_with = await statements_of(create("k1"))
    finally:
        await rest.close()
        await pool.close()
    assert intent.status == "requires_capture" and captured.status == "succeeded"
    assert created_with == 2  # the method (+ vault, + this key's intent), the intent with its event and webhooks
    assert captured_with == 4  # BEGIN, the locked intent, the intent + event + ledger entry, COMMIT
    assert again.id == intent.id and replayed_with == 2  # the same key: that intent, nothing written


async def test_fraud_decisions_of_checkouts_are_kept_when_the_checkout_rolls_back(payments, add_card, db,
                                                                                 database_url) -> None:
    declined = await add_card("cus_1", "4000000000000002")
    ok = await add_card("cus_1")
    pool = await asyncpg.create_pool(database_url, min_size=8, max_size=8)
    try:
        async def one(i: int) -> None:
            async with pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                try:
                    await authorize(payments, conn, "cus_1", declined if i % 2 else ok, f"f{i}")
                except PaymentDeclined:
                    pass
                await tx.rollback()

        await asyncio.gather(*(one(i) for i in range(16)))
        await payments.close()
        async with pool.acquire() as conn:
            # The holds rolled back with their checkouts; the declined intents the 402s named were
            # written apart and stay (Stripe keeps failed intents), each with its decision.
            kept = await conn.fetch("SELECT status, reference FROM payment_intents")
            assert sorted(tuple(r) for r in kept) == [("requires_payment_method", None)] * 8
            assert await conn.fetchval("SELECT count(*) FROM fraud_decisions") == 16
    finally:
        await pool.close()
