"""A restaurant's statement: one line per order whose money moved in a period, read from the ledger
(payments' `restaurant_statement`: the order's split and refund entries of the period) and from what
orders recorded of each split (`order_settlements`: the commission and the tip the ledger's amounts
do not name).

A line, in minor units of its currency:
- `gross`: what the customer was charged for the order (its splits in the period);
- `tax`: the tax in it, owed to the tax authority;
- `tips_passed_through`: the tip in it, passed to the courier;
- `commission`: the platform's commission on the restaurant's food sales, at the tenant's rate then;
- `fees`: the rest of what neither the restaurant nor the tax authority gets: delivery fees (the
  courier's), service and small-order fees net of a discount the platform funded (the platform's),
  and a discount larger than the platform's take, which the restaurant funds (see `delivery_split`);
- `refunds`: given back in the period, split by who bore them (the platform, or the restaurant for
  a refund it made itself);
- `net`: what the period added to the restaurant's balance for the order: its share of the splits
  less the refunds it bore. gross = tax + tips_passed_through + commission + fees + (net + refunds
  borne by the restaurant), and the nets add up to the restaurant's ledger postings of the period.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from kernel.errors import ValidationFailed
from orders import money_store
from orders.ports import Payments
from payments import StatementMovement

MAX_PERIOD_DAYS = 93  # a quarter: a statement is read whole (lines, totals, CSV) per request


@dataclass(frozen=True, slots=True)
class Settlement:
    commission: int
    commission_bps: int
    tip: int


@dataclass(frozen=True, slots=True)
class StatementLine:
    order_id: str
    currency: str
    at: datetime  # the first of the order's movements in the period
    gross: int
    tax: int
    tips_passed_through: int
    commission: int
    commission_bps: int
    fees: int
    refunds_borne_by_platform: int
    refunds_borne_by_restaurant: int
    net: int


FIGURES = ("gross", "tax", "tips_passed_through", "commission", "fees", "refunds_borne_by_platform",
           "refunds_borne_by_restaurant", "net")


def statement_line(m: StatementMovement, settled: Sequence[Settlement]) -> StatementLine:
    commission = sum(s.commission for s in settled)
    tip = sum(s.tip for s in settled)
    bps = max((s.commission_bps for s in settled), default=0)
    return StatementLine(
        order_id=m.order_id, currency=m.currency, at=m.first_at, gross=m.gross, tax=m.tax, tips_passed_through=tip,
        commission=commission, commission_bps=bps, fees=m.gross - m.tax - tip - commission - m.restaurant,
        refunds_borne_by_platform=m.refunded_by_platform, refunds_borne_by_restaurant=m.refunded_by_restaurant,
        net=m.restaurant - m.refunded_by_restaurant)


def totals(lines: Iterable[StatementLine]) -> dict[str, dict[str, int]]:
    """The period's figures summed per currency."""
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        acc = out.setdefault(line.currency, dict.fromkeys(FIGURES, 0))
        for name in FIGURES:
            acc[name] += getattr(line, name)
    return out


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after `end` 00:00 UTC): `end` is included."""
    if end < start:
        raise ValidationFailed("`to` is before `from`", param="to", code="invalid_period")
    if (end - start).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed(f"a statement covers at most {MAX_PERIOD_DAYS} days", param="to",
                               code="invalid_period")
    return (datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC))


def to_csv(lines: Iterable[StatementLine]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("order_id", "currency", "at", *FIGURES[:4], "commission_bps", *FIGURES[4:]))
    for x in lines:
        writer.writerow((x.order_id, x.currency, x.at.isoformat(), x.gross, x.tax, x.tips_passed_through,
                         x.commission, x.commission_bps, x.fees, x.refunds_borne_by_platform,
                         x.refunds_borne_by_restaurant, x.net))
    return buf.getvalue()


class Statements:
    def __init__(self, pool: asyncpg.Pool, payments: Payments) -> None:
        self.pool = pool
        self.payments = payments

    async def lines(self, tenant_id: str, start: date, end: date) -> list[StatementLine]:
        """The tenant's statement lines for the days [start, end], ordered by order id."""
        since, until = period_bounds(start, end)
        async with self.pool.acquire() as conn:
            moved = await self.payments.restaurant_statement(conn, tenant_id, since, until)
            refs = [r for m in moved for r in m.splits]
            rows = await money_store.settlements(conn, refs) if refs else []
        by_ref = {r["reference"]: Settlement(r["commission"], r["commission_bps"], r["tip"]) for r in rows}
        return [statement_line(m, [by_ref[r] for r in m.splits if r in by_ref]) for m in moved]
