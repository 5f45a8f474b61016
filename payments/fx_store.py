"""The Postgres adapter of exchange rates, conversions and conversion quotes (see `payments.fx`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import asyncpg

from payments.fx import ExchangeRate

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
