"""Conversions in the ledger: a pair of entries, each balanced in its own currency through its FX
clearing account, naming the rate; the rate of a pair at a time is the latest at or before it, read
either way round; a conversion the source cannot cover moves nothing; balances stay per currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from kernel.money import Money
from payments import InsufficientBalance, PaymentsService, fx_store, ledger
from payments.fx import ExchangeRate, plan_conversion
from payments.model import Account, credit, debit, entry

T0 = datetime(2026, 1, 5, 16, tzinfo=UTC)


async def _fund(conn, owner: str, money: Money) -> None:
    cur = money.currency
    await ledger.post(conn, entry("promo_credit", cur, [debit(Account("platform_promotions", cur), money.amount),
                                                        credit(Account("customer_wallet", cur, owner), money.amount)],
                                  actor="test"))


async def test_the_rate_at_a_time_is_the_latest_before_it_either_way_round(payments: PaymentsService, db) -> None:
    x = payments.exchange
    old = await x.load_rate(ExchangeRate("", "EUR", "JPY", Fraction("160"), "ECB", T0), "op")
    new = await x.load_rate(ExchangeRate("", "EUR", "JPY", Fraction("162.5"), "ECB", T0 + timedelta(days=1)), "op")
    inverse = await x.load_rate(ExchangeRate("", "JPY", "EUR", Fraction(1, 150), "desk", T0 + timedelta(days=2)),
                                "op")
    async with db.acquire() as conn:
        assert await fx_store.rate_at(conn, "EUR", "JPY", T0 - timedelta(seconds=1)) is None
        assert (await fx_store.rate_at(conn, "EUR", "JPY", T0 + timedelta(hours=1))).id == old.id
        assert (await fx_store.rate_at(conn, "JPY", "EUR", T0 + timedelta(days=1, hours=1))).id == new.id
        latest = await fx_store.rate_at(conn, "EUR", "JPY", T0 + timedelta(days=3))
    assert latest.id == inverse.id and latest.between("EUR", "JPY") == 150


async def test_a_conversion_is_two_balanced_entries_through_fx_clearing(payments: PaymentsService, db) -> None:
    rate = await payments.exchange.load_rate(ExchangeRate("", "EUR", "KWD", Fraction("0.3305"), "ECB", T0), "op")
    c = plan_conversion("fxc_test1", rate, Money(1250, "EUR"), "KWD", "cus_fx")
    assert c.target == Money(4131, "KWD")  # 4.13125 KWD, half-even to three decimals
    async with db.acquire() as conn:
        await _fund(conn, "cus_fx", Money(2000, "EUR"))
        async with conn.transaction():
            await payments.exchange.post_conversion(conn, c, actor="cus_fx")
        rows = await conn.fetch("SELECT e.currency, e.reason, p.account_id, p.amount FROM journal_entries e "
                                "JOIN postings p ON p.entry_id = e.id WHERE e.reference = $1 ORDER BY e.currency, "
                                "p.seq", c.id)
        sums = await ledger.sums_per_currency(conn)
        wallets = await fx_store.wallet_balances(conn, "cus_fx")
        recorded = await conn.fetchrow("SELECT rate_id, from_amount, to_amount FROM fx_conversions WHERE id = $1", c.id)
    assert [(r["currency"], r["account_id"], r["amount"]) for r in rows] == [
        ("EUR", "customer_wallet:cus_fx:EUR", 1250), ("EUR", "fx_clearing:EUR", -1250),
        ("KWD", "fx_clearing:KWD", 4131), ("KWD", "customer_wallet:cus_fx:KWD", -4131)]
    assert all(rate.id in r["reason"] for r in rows)
    assert sums == {"EUR": 0, "KWD": 0}  # every currency balances on its own
    assert wallets == {"EUR": 750, "KWD": 4131}
    assert tuple(recorded) == (rate.id, 1250, 4131)


async def test_a_conversion_the_source_cannot_cover_moves_nothing(payments: PaymentsService, db) -> None:
    rate = await payments.exchange.load_rate(ExchangeRate("", "EUR", "GBP", Fraction("0.8567"), "ECB", T0), "op")
    c = plan_conversion("fxc_test2", rate, Money(1000, "EUR"), "GBP", "cus_poor")
    async with db.acquire() as conn:
        await _fund(conn, "cus_poor", Money(999, "EUR"))
        with pytest.raises(InsufficientBalance):
            async with conn.transaction():
                await payments.exchange.post_conversion(conn, c, actor="cus_poor")
        assert await conn.fetchval("SELECT count(*) FROM journal_entries WHERE reference = $1", c.id) == 0
        assert await fx_store.wallet_balances(conn, "cus_poor") == {"EUR": 999}
