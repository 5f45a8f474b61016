"""Money as integer minor units plus an ISO 4217 currency.

Floats never touch an amount. Every place that must turn a fraction into minor
units goes through `round_half_even` (banker's rounding), so the rounding rule
is named once and applied the same everywhere: percentages (fees, commission,
tax), a share of a line, and a conversion at an exchange rate.

The minor units of each currency are `CURRENCY_EXPONENTS` (ISO 4217): JPY has
none (1 = ¥1), EUR two (1 = €0.01), KWD and BHD three (1 = 0.001 KWD). Money
never adds or compares two currencies: that raises `CurrencyError`, and the only
way from one currency to another is `convert` at an explicit, exact rate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

# Minor-unit exponents per ISO 4217. Kept explicit rather than guessed: a wrong
# exponent moves money by a factor of 100.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "MXN": 2, "BRL": 2, "INR": 2, "SGD": 2, "HKD": 2,
    "NZD": 2, "ZAR": 2, "TRY": 2, "ILS": 2, "AED": 2, "SAR": 2, "CNY": 2, "THB": 2, "MYR": 2,
    "PHP": 2, "IDR": 2, "TWD": 2,
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3, "IQD": 3,
}


class CurrencyError(ValueError):
    """An unknown currency, or two currencies mixed in one operation."""


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise CurrencyError(f"unknown currency {currency!r}") from None


def is_known_currency(currency: str) -> bool:
    return currency in CURRENCY_EXPONENTS


def round_half_even(value: Fraction) -> int:
    """The platform's one rounding rule for money: half to even (banker's rounding).

    Half-even keeps sums of many rounded amounts (tax on thousands of orders)
    unbiased, which half-up does not.
    """
    return round(value)


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        currency_exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def times(self, factor: Fraction | int) -> Money:
        """Multiply by an exact factor (a rate, a quantity), rounding once."""
        return Money(round_half_even(Fraction(self.amount) * Fraction(factor)), self.currency)

    def percent(self, basis_points: int) -> Money:
        """This amount times basis_points / 10,000 (1 bp = 0.01 %), rounded once."""
        return self.times(Fraction(basis_points, 10_000))

    def __str__(self) -> str:
        exp = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**exp) if exp else (abs(self.amount), 0)
        return f"{sign}{whole}.{frac:0{exp}d} {self.currency}" if exp else f"{sign}{whole} {self.currency}"

    def format(self, locale: str = "en") -> str:
        return format_money(self, locale)


# ---------------------------------------------------------------- exact decimals and rates

_DECIMAL = re.compile(r"^-?\d{1,30}(\.\d{1,30})?$")


def parse_decimal(text: str) -> Fraction:
    """An exact decimal string ("0.8567", "155.2") as a Fraction; no exponent, no float."""
    if not isinstance(text, str) or not _DECIMAL.match(text):
        raise ValueError(f"not a plain decimal number: {text!r}")
    return Fraction(text)


def from_major(text: str, currency: str) -> Money:
    """ "12.50" EUR -> Money(1250, "EUR"); a string with more decimals than the currency has is refused."""
    value = parse_decimal(text) * 10 ** currency_exponent(currency)
    if value.denominator != 1:
        raise CurrencyError(f"{currency} has {currency_exponent(currency)} decimals: {text!r} is not exact")
    return Money(int(value), currency)


def convert(amount: Money, rate: Fraction, to_currency: str) -> Money:
    """`amount` at `rate` (units of `to_currency` per one unit of `amount.currency`, in major units), in
    minor units of `to_currency`, rounded once with `round_half_even`. The exponents of both currencies
    are applied exactly: 1,250 JPY minor units at 0.00615 EUR/JPY are 769 EUR minor units (€7.69)."""
    if rate <= 0:
        raise CurrencyError("an exchange rate must be positive")
    scale = Fraction(10 ** currency_exponent(to_currency), 10 ** currency_exponent(amount.currency))
    return Money(round_half_even(Fraction(amount.amount) * Fraction(rate) * scale), to_currency)


def rate_text(rate: Fraction) -> str:
    """A rate as an exact string: a terminating decimal ("0.8567") or, when it has none, "n/d"."""
    d = rate.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return f"{rate.numerator}/{rate.denominator}"
    places = 0
    while (rate * 10**places).denominator != 1:
        places += 1
    digits = str(abs(int(rate * 10**places))).rjust(places + 1, "0")
    sign = "-" if rate < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


# ---------------------------------------------------------------- formatting

# Symbols shown before the amount in English; a currency not here is written with its code ("KWD 1.250").
CURRENCY_SYMBOLS: dict[str, str] = {
    "EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪", "VND": "₫",
    "TRY": "₺", "PHP": "₱", "THB": "฿", "CNY": "CN¥", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "HKD": "HK$",
    "MXN": "MX$", "BRL": "R$", "TWD": "NT$",
}


@dataclass(frozen=True, slots=True)
class _Style:
    group: str  # thousands separator
    decimal: str
    symbol_first: bool  # "€12.50" (en) or "12,50 €" (de)


# The language part of a locale decides ("de-AT" -> de); an unknown language is written as English.
_STYLES = {
    "en": _Style(",", ".", True),
    "ja": _Style(",", ".", True),
    "de": _Style(".", ",", False),
    "fr": _Style("\u202f", ",", False),  # narrow no-break space between thousands
}


def format_money(money: Money, locale: str = "en") -> str:
    """The amount as people of `locale` write it, with exactly the currency's decimals:
    "€12.50", "¥1,250", "KWD 1.250" in English, "12,50 €" in German."""
    style = _STYLES.get(locale.replace("_", "-").split("-")[0].lower(), _STYLES["en"])
    exp = currency_exponent(money.currency)
    whole, frac = divmod(abs(money.amount), 10**exp)
    digits = f"{whole:,}".replace(",", style.group)
    if exp:
        digits += f"{style.decimal}{frac:0{exp}d}"
    sign = "-" if money.amount < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(money.currency)
    if style.symbol_first:
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{money.currency} {digits}"
    return f"{sign}{digits} {symbol or money.currency}"
