"""The Postgres adapter of exchange rates, conversions and conversion quotes (see `payments.fx`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import asyncpg

from kernel.money import Money
from payments.fx import Conversion, ExchangeRate

_RATE_COLUMNS = "id, base, quote, rate_num, rate_den, source, as_of"


def rate_of(row: asyncpg.Record) -> ExchangeRate:
    return ExchangeRate(id=row["id"], base=row["base"], quote=row["quote"],
                        rate=Fraction(int(row["rate_num"]), int(row["rate_den"])), source=row["source"],
                        as_of=row["as_of"])


async def insert_rate(conn: asyncpg.Connection, rate: ExchangeRate, created_by: str) -> ExchangeRate:
    row = await conn.fetchrow(
        f"""INSERT INTO exchange_rates (id, base, quote, rate_num, rate_den, source, as_of, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_RATE_COLUMNS}""",
        rate.id, rate.base, rate.quote, Decimal(rate.rate.numerator), Decimal(rate.rate.denominator), rate.source,
        rate.as_of, created_by)
    return rate_of(row)


async def get_rate(conn: asyncpg.Connection, rate_id: str) -> ExchangeRate | None:
    row = await conn.fetchrow(f"SELECT {_RATE_COLUMNS} FROM exchange_rates WHERE id = $1", rate_id)
    return None if row is None else rate_of(row)


async def list_rates(conn: asyncpg.Connection, *, base: str | None, quote: str | None, starting_after: str | None,
                     limit: int) -> list[ExchangeRate]:
    """Rates loaded, newest id first, optionally of one base and/or quote currency."""
    rows = await conn.fetch(
        f"""SELECT {_RATE_COLUMNS} FROM exchange_rates
             WHERE ($1::text IS NULL OR base = $1) AND ($2::text IS NULL OR quote = $2)
               AND ($3::text IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4""",
        base, quote, starting_after, limit)
    return [rate_of(r) for r in rows]


async def rate_at(conn: asyncpg.Connection, from_currency: str, to_currency: str,
                  at: datetime) -> ExchangeRate | None:
    """The pair's rate at `at`: the latest loaded either way round with as_of <= at (a direct one on a tie)."""
    row = await conn.fetchrow(
        f"""SELECT {_RATE_COLUMNS} FROM (
              (SELECT {_RATE_COLUMNS}, 0 AS inverse FROM exchange_rates
                WHERE base = $1 AND quote = $2 AND as_of <= $3 ORDER BY as_of DESC, id DESC LIMIT 1)
              UNION ALL
              (SELECT {_RATE_COLUMNS}, 1 AS inverse FROM exchange_rates
                WHERE base = $2 AND quote = $1 AND as_of <= $3 ORDER BY as_of DESC, id DESC LIMIT 1)) r
            ORDER BY as_of DESC, inverse LIMIT 1""",
        from_currency, to_currency, at)
    return None if row is None else rate_of(row)


# ---------------------------------------------------------------- conversion quotes and conversions

_QUOTE_COLUMNS = ("id, customer_id, rate_id, from_currency, from_amount, to_currency, to_amount, expires_at, "
                  "conversion_id, used_at")


async def insert_quote(conn: asyncpg.Connection, *, quote_id: str, customer_id: str, rate_id: str,
                       source: Money, target: Money, expires_at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO conversion_quotes (id, customer_id, rate_id, from_currency, from_amount, to_currency,
                                           to_amount, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_QUOTE_COLUMNS}""",
        quote_id, customer_id, rate_id, source.currency, source.amount, target.currency, target.amount, expires_at)


async def get_quote(conn: asyncpg.Connection, quote_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_QUOTE_COLUMNS} FROM conversion_quotes WHERE id = $1{' FOR UPDATE' if lock else ''}", quote_id)


async def record_conversion(conn: asyncpg.Connection, c: Conversion, *, out_entry: str, in_entry: str,
                            quote_id: str | None, reference: str | None, actor: str, at: datetime) -> None:
    """The conversion's row, and its quote marked used, in one statement."""
    await conn.execute(
        """WITH q AS (UPDATE conversion_quotes SET conversion_id = $1, used_at = $14 WHERE id = $3)
           INSERT INTO fx_conversions (id, rate_id, quote_id, from_account, from_currency, from_amount, to_account,
                                       to_currency, to_amount, out_entry_id, in_entry_id, reference, actor)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        c.id, c.rate.id, quote_id, c.from_account.id, c.source.currency, c.source.amount, c.to_account.id,
        c.target.currency, c.target.amount, out_entry, in_entry, reference, actor, at)


_CONVERSION_COLUMNS = ("id, rate_id, quote_id, from_account, from_currency, from_amount, to_account, to_currency, "
                       "to_amount, reference, actor, created_at")


async def get_conversion(conn: asyncpg.Connection, conversion_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_CONVERSION_COLUMNS} FROM fx_conversions WHERE id = $1", conversion_id)


async def conversion_of_payment(conn: asyncpg.Connection, intent_id: str, wallet: str) -> asyncpg.Record | None:
    """The conversion a customer's quote made to fund a wallet payment (its reference is the
    PaymentIntent), locked: the payment's returns convert back against it one at a time."""
    return await conn.fetchrow(
        f"SELECT {_CONVERSION_COLUMNS} FROM fx_conversions WHERE reference = $1 AND quote_id IS NOT NULL "
        "AND to_account = $2 ORDER BY id LIMIT 1 FOR UPDATE", intent_id, wallet)


async def returned_of(conn: asyncpg.Connection, conversion_id: str) -> asyncpg.Record:
    """What was converted back of a conversion so far: `returned` (its target currency) and `given`
    (its source currency)."""
    return await conn.fetchrow(
        "SELECT coalesce(sum(from_amount), 0)::bigint AS returned, coalesce(sum(to_amount), 0)::bigint AS given "
        "FROM fx_conversions WHERE reference = $1", conversion_id)


async def wallet_balances(conn: asyncpg.Connection, customer_id: str) -> dict[str, int]:
    """The customer's wallet balance per currency."""
    rows = await conn.fetch("SELECT currency, balance FROM ledger_accounts WHERE kind = 'customer_wallet' "
                            "AND owner_id = $1", customer_id)
    return {r["currency"]: r["balance"] for r in rows}


async def balances_by_kind(conn: asyncpg.Connection, at: datetime | None) -> list[tuple[str, Money]]:
    """Natural balances summed per account kind and currency: now (the accounts' balances), or at `at`
    (from the postings of entries written until then). Never summed across currencies."""
    if at is None:
        rows = await conn.fetch("SELECT kind, currency, sum(balance)::bigint AS balance FROM ledger_accounts "
                                "GROUP BY kind, currency ORDER BY kind, currency")
    else:
        rows = await conn.fetch(
            """SELECT a.kind, a.currency,
                      sum(CASE a.normal_side WHEN 'debit' THEN p.amount ELSE -p.amount END)::bigint AS balance
                 FROM postings p
                 JOIN journal_entries e ON e.id = p.entry_id
                 JOIN ledger_accounts a ON a.id = p.account_id
                WHERE e.created_at <= $1
                GROUP BY a.kind, a.currency ORDER BY a.kind, a.currency""", at)
    return [(r["kind"], Money(r["balance"], r["currency"])) for r in rows]
