"""Exchange rates, conversion quotes, conversions and the ledger report in a reporting currency
(the rules are `payments.fx`'s; this runs them, one transaction per command).

`Exchange` is a collaborator of the `PaymentsService` facade, built with the pool and the clock.
"""

from __future__ import annotations

import asyncpg

from kernel.clock import Clock
from kernel.errors import NotFound, ValidationFailed
from kernel.ids import new_id
from payments import fx_store
from payments.fx import ExchangeRate, check_currency


class Exchange:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock

    async def load_rate(self, rate: ExchangeRate, actor: str) -> ExchangeRate:
        """Record a rate an operator loaded (its id is new: the id given is ignored)."""
        check_currency(rate.base, "base")
        check_currency(rate.quote, "quote")
        if rate.base == rate.quote:
            raise ValidationFailed("base and quote must differ", param="quote")
        async with self.pool.acquire() as conn:
            return await fx_store.insert_rate(conn, _with_id(rate, new_id("fxr")), actor)

    async def rates(self, *, base: str | None, quote: str | None, starting_after: str | None,
                    limit: int) -> list[ExchangeRate]:
        async with self.pool.acquire() as conn:
            return await fx_store.list_rates(conn, base=base, quote=quote, starting_after=starting_after, limit=limit)

    async def rate(self, rate_id: str) -> ExchangeRate:
        async with self.pool.acquire() as conn:
            found = await fx_store.get_rate(conn, rate_id)
        if found is None:
            raise NotFound(f"No such exchange_rate: '{rate_id}'", param="id")
        return found


def _with_id(rate: ExchangeRate, rate_id: str) -> ExchangeRate:
    return ExchangeRate(rate_id, rate.base, rate.quote, rate.rate, rate.source, rate.as_of)
