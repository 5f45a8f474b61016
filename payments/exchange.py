"""Exchange rates, conversion quotes, conversions and the ledger report in a reporting currency
(the rules are `payments.fx`'s; this runs them, one transaction per command).

A wallet pays only in its own currency: paying a GBP amount from a wallet that holds too little GBP
but holds another currency is refused (`CurrencyMismatch`, 409) unless the payment carries a
conversion quote the customer asked for (`quote`), which converts exactly the amount due through the
FX clearing accounts in the payment's transaction (`convert_by_quote`).

`Exchange` is a collaborator of the `PaymentsService` facade, built with the pool and the clock.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from kernel.clock import Clock
from kernel.errors import NotFound, ValidationFailed
from kernel.ids import new_id
from kernel.money import Money
from payments import fx_store, ledger
from payments.errors import ConversionQuoteUnusable, CurrencyMismatch, ExchangeRateMissing, InsufficientBalance
from payments.fx import (
    MAX_QUOTE_RATE_AGE,
    QUOTE_TTL,
    Conversion,
    ExchangeRate,
    ReportLine,
    check_currency,
    conversion_entries,
    in_reporting_currency,
    plan_account_conversion,
    returned_share,
    target_to_source,
)
from payments.model import Account


class Exchange:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock

    # ------------------------------------------------------------ rates

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

    # ------------------------------------------------------------ conversion quotes

    async def quote(self, customer_id: str, from_currency: str, target: Money) -> tuple[asyncpg.Record, ExchangeRate]:
        """Offer `target` for the wallet's `from_currency` at the pair's rate now (at most
        MAX_QUOTE_RATE_AGE old), good for QUOTE_TTL."""
        check_currency(from_currency, "from_currency")
        if from_currency == target.currency:
            raise ValidationFailed("from_currency and to_currency must differ", param="to_currency")
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            rate = await fx_store.rate_at(conn, from_currency, target.currency, now)
            if rate is None or now - rate.as_of > MAX_QUOTE_RATE_AGE:
                raise ExchangeRateMissing(f"no current exchange rate between {from_currency} and {target.currency}",
                                          param="to_currency")
            source = target_to_source(rate, target, from_currency)
            if source.amount <= 0:
                raise ValidationFailed("to_amount is too small to convert", param="to_amount")
            row = await fx_store.insert_quote(conn, quote_id=new_id("cvq"), customer_id=customer_id,
                                              rate_id=rate.id, source=source, target=target,
                                              expires_at=now + QUOTE_TTL)
        return row, rate

    async def get_quote(self, customer_id: str | None, quote_id: str) -> tuple[asyncpg.Record, ExchangeRate]:
        """A quote (the customer's own, unless `customer_id` is None: an operator) and its rate."""
        async with self.pool.acquire() as conn:
            row = await fx_store.get_quote(conn, quote_id)
            if row is None or (customer_id is not None and row["customer_id"] != customer_id):
                raise NotFound(f"No such conversion_quote: '{quote_id}'", param="id")
            rate = await fx_store.get_rate(conn, row["rate_id"])
        assert rate is not None
        return row, rate

    def status_of(self, quote: asyncpg.Record) -> str:
        if quote["conversion_id"] is not None:
            return "used"
        return "expired" if quote["expires_at"] <= self.clock.now() else "open"

    # ------------------------------------------------------------ an operator's conversion of a balance

    async def convert_balance(self, account: Account, amount: int, to_currency: str, rate_id: str | None, *,
                              actor: str) -> tuple[asyncpg.Record, ExchangeRate]:
        """Convert `amount` of `account`'s balance (a platform or restaurant account) into the same kind of
        account in `to_currency`, at rate `rate_id` or the pair's latest at most MAX_QUOTE_RATE_AGE old;
        never more than the balance holds (`InsufficientBalance`)."""
        check_currency(to_currency, "to_currency")
        if account.currency == to_currency:
            raise ValidationFailed("from_currency and to_currency must differ", param="to_currency")
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            rate = await self._rate_for(conn, rate_id, account.currency, to_currency, now)
            c = plan_account_conversion(new_id("fxc"), rate, account, amount,
                                        Account(account.kind, to_currency, account.owner))
            if c.target.amount <= 0:
                raise ValidationFailed(f"amount is too small to convert into {to_currency}", param="amount")
            if await ledger.locked_balance(conn, account) < amount:
                raise InsufficientBalance(f"the {account.currency} balance of {account.id} is too low for this "
                                          "conversion", account=account.id)
            await self.post_conversion(conn, c, actor=actor)
            row = await fx_store.get_conversion(conn, c.id)
        return row, rate

    async def _rate_for(self, conn: asyncpg.Connection, rate_id: str | None, from_currency: str, to_currency: str,
                        now: datetime) -> ExchangeRate:
        """The rate named (of this pair, in force by now), else the pair's latest, at most
        MAX_QUOTE_RATE_AGE old (`ExchangeRateMissing`)."""
        if rate_id is None:
            rate = await fx_store.rate_at(conn, from_currency, to_currency, now)
            if rate is None or now - rate.as_of > MAX_QUOTE_RATE_AGE:
                raise ExchangeRateMissing(f"no current exchange rate between {from_currency} and {to_currency}",
                                          param="to_currency")
            return rate
        rate = await fx_store.get_rate(conn, rate_id)
        if rate is None:
            raise NotFound(f"No such exchange_rate: '{rate_id}'", param="rate_id")
        if {rate.base, rate.quote} != {from_currency, to_currency}:
            raise ValidationFailed(f"rate {rate_id} is {rate.base}/{rate.quote}, not {from_currency}/{to_currency}",
                                   param="rate_id")
        if rate.as_of > now:
            raise ValidationFailed(f"rate {rate_id} holds only from {rate.as_of.isoformat()}", param="rate_id")
        return rate

    async def get_conversion(self, conversion_id: str) -> tuple[asyncpg.Record, ExchangeRate]:
        async with self.pool.acquire() as conn:
            row = await fx_store.get_conversion(conn, conversion_id)
            if row is None:
                raise NotFound(f"No such conversion: '{conversion_id}'", param="id")
            rate = await fx_store.get_rate(conn, row["rate_id"])
        assert rate is not None
        return row, rate

    # ------------------------------------------------------------ the ledger in a reporting currency

    async def ledger_report(self, reporting: str | None, at: datetime | None) -> tuple[
            datetime, list[ReportLine], dict[str, Money], list[str]]:
        """Balances per account kind and currency (at `at`, else now) and, with a reporting currency, each
        converted at its currency's rate at that time, the totals per kind, and the currencies without a
        rate (left out of the totals)."""
        when = at or self.clock.now()
        async with self.pool.acquire() as conn:
            balances = await fx_store.balances_by_kind(conn, at)
            if reporting is None:
                return when, [ReportLine(k, m, None, None) for k, m in balances], {}, []
            check_currency(reporting, "reporting_currency")
            rates = {cur: await fx_store.rate_at(conn, cur, reporting, when)
                     for cur in sorted({m.currency for _, m in balances} - {reporting})}
        lines, totals = in_reporting_currency(balances, reporting, rates)
        return when, lines, totals, [cur for cur, rate in rates.items() if rate is None]

    # ------------------------------------------------------------ paying from a wallet

    async def wallet_pays(self, conn: asyncpg.Connection, customer_id: str, due: Money, quote_id: str | None, *,
                          reference: str | None) -> None:
        """Before a wallet hold of `due`: convert by the accepted quote, or refuse a wallet whose money is in
        another currency (`CurrencyMismatch`). A wallet short of `due` with nothing elsewhere is the
        hold's to decline (402 insufficient_wallet_balance)."""
        if quote_id is not None:
            await self.convert_by_quote(conn, quote_id, customer_id, due, reference=reference)
            return
        held = await fx_store.wallet_balances(conn, customer_id)
        if held.get(due.currency, 0) >= due.amount:
            return
        elsewhere = sorted(c for c, b in held.items() if c != due.currency and b > 0)
        if elsewhere:
            raise CurrencyMismatch(
                f"this payment is in {due.currency} and the wallet holds {', '.join(elsewhere)}: accept a "
                "conversion (POST /v1/conversion_quotes) and pay with its id as conversion_quote",
                currency=due.currency, held=elsewhere, param="payment_method_id")

    async def convert_by_quote(self, conn: asyncpg.Connection, quote_id: str, customer_id: str, due: Money, *,
                               reference: str | None) -> Conversion:
        """Accept the customer's quote for exactly `due`: its two entries, its row, the quote used, in
        the caller's transaction."""
        quote = await fx_store.get_quote(conn, quote_id, lock=True)
        if quote is None or quote["customer_id"] != customer_id:
            raise NotFound(f"No such conversion_quote: '{quote_id}'", param="conversion_quote")
        if quote["conversion_id"] is not None:
            raise ConversionQuoteUnusable("this conversion quote was used already", code="conversion_quote_used")
        if quote["expires_at"] <= self.clock.now():
            raise ConversionQuoteUnusable("this conversion quote has expired; ask for a new one",
                                          code="conversion_quote_expired")
        if (quote["to_currency"], quote["to_amount"]) != (due.currency, due.amount):
            raise ConversionQuoteUnusable(
                f"this conversion quote buys {quote['to_amount']} {quote['to_currency']}; the payment is "
                f"{due.amount} {due.currency}", code="conversion_quote_mismatch")
        rate = await fx_store.get_rate(conn, quote["rate_id"])
        assert rate is not None
        source = Money(quote["from_amount"], quote["from_currency"])
        c = Conversion(new_id("fxc"), rate, source, due, Account("customer_wallet", source.currency, customer_id),
                       Account("customer_wallet", due.currency, customer_id))
        await self.post_conversion(conn, c, actor=customer_id, quote_id=quote_id, reference=reference)
        return c

    async def return_to_wallet(self, conn: asyncpg.Connection, intent_id: str, customer_id: str, returned: Money, *,
                               actor: str) -> Conversion | None:
        """After `returned` of a wallet payment went back to the wallet in the payment's currency (a refund,
        a void, the rest of a partial capture): if a conversion quote funded the payment, convert it back
        into the currency the wallet paid with, at the payment's rate (`returned_share`), referencing the
        payment's conversion. The customer bears no FX swing of ours. None when nothing converted it."""
        if returned.amount <= 0:
            return None
        paid_into = Account("customer_wallet", returned.currency, customer_id)
        funded = await fx_store.conversion_of_payment(conn, intent_id, paid_into.id)
        if funded is None:
            return None
        before = await fx_store.returned_of(conn, funded["id"])
        back = returned_share(Money(funded["from_amount"], funded["from_currency"]),
                              Money(funded["to_amount"], funded["to_currency"]), before["returned"],
                              before["given"], returned)
        rate = await fx_store.get_rate(conn, funded["rate_id"])
        assert rate is not None
        c = Conversion(new_id("fxc"), rate, returned, back, paid_into,
                       Account("customer_wallet", back.currency, customer_id))
        if back.amount <= 0:  # a returned crumb worth nothing in the wallet's currency stays as it is
            return None
        await self.post_conversion(conn, c, actor=actor, reference=funded["id"])
        return c

    async def post_conversion(self, conn: asyncpg.Connection, c: Conversion, *, actor: str,
                              quote_id: str | None = None, reference: str | None = None) -> None:
        """The conversion's pair of entries and its row, all or nothing in the caller's transaction."""
        out, into = conversion_entries(c, actor)
        async with conn.transaction():
            try:
                await ledger.post(conn, out)
            except InsufficientBalance:
                raise InsufficientBalance(
                    f"the {c.source.currency} balance is too low for this conversion",
                    account=c.from_account.id) from None
            await ledger.post(conn, into)
            await fx_store.record_conversion(conn, c, out_entry=out.id, in_entry=into.id, quote_id=quote_id,
                                             reference=reference, actor=actor, at=self.clock.now())


def _with_id(rate: ExchangeRate, rate_id: str) -> ExchangeRate:
    return ExchangeRate(rate_id, rate.base, rate.quote, rate.rate, rate.source, rate.as_of)
