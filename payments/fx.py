"""Exchange rates and conversions, pure: no I/O.

A rate says one unit of `base` is worth `rate` units of `quote` (major units, an exact Fraction: operators
give a decimal string or two integers, never a float). The rate of a pair at a time is the latest one
loaded for it with `as_of` at or before that time, read either way round: a EUR->GBP rate answers
GBP->EUR too, as its exact inverse. Amounts convert with `kernel.money.convert` (half-even, once).

A conversion moves money between currencies as two journal entries, each balanced in its own
currency, through the per-currency `fx_clearing` accounts: the source account pays into
`fx_clearing:<from>`, `fx_clearing:<to>` pays the target account. Both name the conversion (their
reference) and the rate (their reason), so the ledger never adds two currencies without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from kernel.errors import ValidationFailed
from kernel.money import Money, convert, is_known_currency, parse_decimal, rate_text, round_half_even
from payments import model
from payments.model import Account, Posting, credit, debit

MAX_RATE_PART = 10**18  # numerator and denominator of a rate, however it is given
# A customer's conversion quote uses a rate at most this old, and is good for this long.
MAX_QUOTE_RATE_AGE = timedelta(days=2)
QUOTE_TTL = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ExchangeRate:
    id: str
    base: str
    quote: str
    rate: Fraction  # units of `quote` per unit of `base`
    source: str
    as_of: datetime

    def between(self, from_currency: str, to_currency: str) -> Fraction:
        """Units of `to_currency` per unit of `from_currency` by this rate (its inverse the other way)."""
        if (from_currency, to_currency) == (self.base, self.quote):
            return self.rate
        if (from_currency, to_currency) == (self.quote, self.base):
            return 1 / self.rate
        raise ValueError(f"rate {self.id} is {self.base}/{self.quote}, not {from_currency}/{to_currency}")

    @property
    def text(self) -> str:
        return rate_text(self.rate)


def check_currency(code: str, param: str) -> str:
    if not is_known_currency(code):
        raise ValidationFailed(f"unknown currency {code}", param=param, code="invalid_currency")
    return code


def parse_rate(text: str | None, numerator: int | None, denominator: int | None) -> Fraction:
    """The rate an operator gives: a decimal string ("0.8567") or two integers (numerator/denominator),
    exactly one of them, positive."""
    if text is not None:
        if numerator is not None or denominator is not None:
            raise ValidationFailed("give rate, or rate_numerator and rate_denominator, not both", param="rate")
        try:
            rate = parse_decimal(text)
        except ValueError:
            raise ValidationFailed("rate must be a plain decimal string such as \"0.8567\"", param="rate") from None
    else:
        if numerator is None or denominator is None:
            raise ValidationFailed("give rate, or rate_numerator and rate_denominator", param="rate")
        for value, name in ((numerator, "rate_numerator"), (denominator, "rate_denominator")):
            if not 0 < value <= MAX_RATE_PART:
                raise ValidationFailed(f"{name} must be between 1 and 10^18", param=name)
        rate = Fraction(numerator, denominator)
    if rate <= 0:
        raise ValidationFailed("rate must be positive", param="rate")
    if rate.numerator > MAX_RATE_PART or rate.denominator > MAX_RATE_PART:
        raise ValidationFailed("rate has too many digits", param="rate")
    return rate


def balance_account(kind: str, currency: str, owner: str | None) -> Account:
    """The account an operator names to convert: a platform one (no owner) or an owned one (its owner)."""
    spec = model.ACCOUNT_KINDS[kind]
    if spec.owned and owner is None:
        raise ValidationFailed(f"a {kind} account needs its owner", param="owner")
    if not spec.owned and owner is not None:
        raise ValidationFailed(f"the {kind} account is the platform's: it takes no owner", param="owner")
    return Account(kind, currency, owner)


@dataclass(frozen=True, slots=True)
class Conversion:
    """`source` (an amount in one currency) becomes `target` at `rate`, between two accounts."""

    id: str
    rate: ExchangeRate
    source: Money
    target: Money
    from_account: Account
    to_account: Account


def plan_conversion(conversion_id: str, rate: ExchangeRate, source: Money, to_currency: str, from_owner: str,
                    to_owner: str | None = None, kind: str = "customer_wallet") -> Conversion:
    """Convert `source` out of `from_owner`'s `kind` account into the same kind of account in `to_currency`."""
    return plan_account_conversion(conversion_id, rate, Account(kind, source.currency, from_owner), source.amount,
                                   Account(kind, to_currency, to_owner or from_owner))


def plan_account_conversion(conversion_id: str, rate: ExchangeRate, from_account: Account, amount: int,
                            to_account: Account) -> Conversion:
    """Convert `amount` (minor units of `from_account`'s currency) into `to_account`'s currency at `rate`."""
    if from_account.currency == to_account.currency:
        raise ValidationFailed("a conversion needs two different currencies", param="to_currency")
    source = Money(amount, from_account.currency)
    target = convert(source, rate.between(source.currency, to_account.currency), to_account.currency)
    return Conversion(conversion_id, rate, source, target, from_account, to_account)


def returned_share(paid: Money, bought: Money, returned_before: int, given_before: int, returned: Money) -> Money:
    """What of `paid` goes back when `returned` of `bought` comes back (a refund or a released hold of a
    payment a conversion funded): `paid` in proportion to all returned so far, rounded half-even once,
    less what went back before, so the returns of a whole payment give back exactly `paid`, at the
    payment's own rate, whatever the rate now."""
    if returned.currency != bought.currency:
        raise ValueError(f"{returned.currency} returned of a conversion into {bought.currency}")
    total = round_half_even(Fraction(paid.amount * (returned_before + returned.amount), bought.amount))
    return Money(total - given_before, paid.currency)


def target_to_source(rate: ExchangeRate, target: Money, from_currency: str) -> Money:
    """What of `from_currency` buys `target` at `rate` (the rate's inverse, rounded half-even once)."""
    return convert(target, rate.between(target.currency, from_currency), from_currency)


def conversion_entries(c: Conversion, actor: str) -> tuple[model.JournalEntry, model.JournalEntry]:
    """The conversion's two entries, each balanced in its own currency through its FX clearing account."""
    why = f"fx conversion at {c.rate.id} ({c.rate.base}/{c.rate.quote} {c.rate.text})"
    taken, given = _less(c.from_account, c.source.amount), _more(c.to_account, c.target.amount)
    out = model.entry("fx_conversion", c.source.currency,
                      [taken, Posting(Account("fx_clearing", c.source.currency), -taken.amount)],
                      actor=actor, reason=why, reference=c.id, idempotency_key=f"fx:{c.id}:out")
    into = model.entry("fx_conversion", c.target.currency,
                       [Posting(Account("fx_clearing", c.target.currency), -given.amount), given],
                       actor=actor, reason=why, reference=c.id, idempotency_key=f"fx:{c.id}:in")
    return out, into


def _less(account: Account, amount: int) -> Posting:
    """The posting that lowers `account`'s natural balance by `amount` (a debit of a credit-normal
    account such as a wallet, a credit of a debit-normal one such as platform_cash)."""
    return debit(account, amount) if account.spec.normal == "credit" else credit(account, amount)


def _more(account: Account, amount: int) -> Posting:
    return credit(account, amount) if account.spec.normal == "credit" else debit(account, amount)


# ---------------------------------------------------------------- a report in one currency


@dataclass(frozen=True, slots=True)
class ReportLine:
    kind: str
    balance: Money
    converted: Money | None  # in the reporting currency; None without a rate
    rate: ExchangeRate | None  # None for the reporting currency itself, or without a rate


def in_reporting_currency(balances: list[tuple[str, Money]], reporting: str,
                          rates: dict[str, ExchangeRate | None]) -> tuple[list[ReportLine], dict[str, Money]]:
    """Each (account kind, balance) converted at its currency's rate to `reporting` (rounded half-even
    once per line), and per kind the converted lines summed. A currency with no rate (None in `rates`)
    is left out of the totals, never added unconverted."""
    lines: list[ReportLine] = []
    totals: dict[str, Money] = {}
    for kind, money in balances:
        if money.currency == reporting:
            line = ReportLine(kind, money, money, None)
        else:
            rate = rates.get(money.currency)
            converted = None if rate is None else convert(money, rate.between(money.currency, reporting), reporting)
            line = ReportLine(kind, money, converted, rate)
        lines.append(line)
        if line.converted is not None:
            totals[kind] = totals.get(kind, Money.zero(reporting)) + line.converted
    return lines, totals
