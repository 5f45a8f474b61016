"""Money as integer minor units plus an ISO 4217 currency.

Floats never touch an amount. Every place that must turn a fraction into minor
units goes through `round_half_even` (banker's rounding), so the rounding rule
is named once and applied the same everywhere.
"""

from __future__ import annotations

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
