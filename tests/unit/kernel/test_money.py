"""Money: minor units per ISO 4217, one rounding rule (half-even), no arithmetic across currencies,
exact conversion at a rate, and amounts written as people of a locale write them."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.money import (
    CURRENCY_EXPONENTS,
    CurrencyError,
    Money,
    convert,
    currency_exponent,
    format_money,
    from_major,
    parse_decimal,
    rate_text,
    round_half_even,
)


def test_minor_units_follow_iso_4217() -> None:
    assert [currency_exponent(c) for c in ("JPY", "EUR", "GBP", "USD", "KWD", "BHD", "KRW")] == [0, 2, 2, 2, 3, 3, 0]
    with pytest.raises(CurrencyError):
        currency_exponent("XYZ")
    with pytest.raises(CurrencyError):
        Money(100, "eur")


def test_money_refuses_to_add_subtract_or_compare_two_currencies() -> None:
    eur, gbp = Money(100, "EUR"), Money(100, "GBP")
    for op in (lambda: eur + gbp, lambda: eur - gbp, lambda: eur < gbp, lambda: eur <= gbp):
        with pytest.raises(CurrencyError, match="cannot mix EUR and GBP"):
            op()
    assert eur + Money(5, "EUR") == Money(105, "EUR")
    assert eur != Money(100, "JPY")  # the same number in another currency is another amount


def test_amounts_are_integers_never_floats() -> None:
    with pytest.raises(TypeError):
        Money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "EUR")


def test_the_one_rounding_rule_is_half_even_everywhere() -> None:
    assert [round_half_even(Fraction(n, 2)) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    # A percentage (a fee, commission, tax) rounds with it: 1.5 % of 100 = 1.5 -> 2, of 300 = 4.5 -> 4.
    assert Money(100, "JPY").percent(150) == Money(2, "JPY")
    assert Money(300, "JPY").percent(150) == Money(4, "JPY")
    assert Money(1001, "KWD").times(Fraction(1, 2)) == Money(500, "KWD")


def test_from_major_is_exact_in_the_currencys_decimals() -> None:
    assert from_major("12.50", "EUR") == Money(1250, "EUR")
    assert from_major("1250", "JPY") == Money(1250, "JPY")
    assert from_major("1.250", "KWD") == Money(1250, "KWD")
    for text, cur in (("12.505", "EUR"), ("1.5", "JPY"), ("1.2345", "KWD")):
        with pytest.raises(CurrencyError):
            from_major(text, cur)
    for bad in ("1e3", "0x10", "12,50", "", " 1", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_decimal(bad)


def test_convert_applies_both_exponents_and_rounds_once() -> None:
    # ¥1,250 at 0.00615 EUR per JPY = €7.6875 -> €7.69
    assert convert(Money(1250, "JPY"), Fraction("0.00615"), "EUR") == Money(769, "EUR")
    # €12.50 at 0.3305 KWD per EUR = 4.13125 KWD -> 4.131 KWD (3 decimals)
    assert convert(Money(1250, "EUR"), Fraction("0.3305"), "KWD") == Money(4131, "KWD")
    # €10.00 at 162.5 JPY per EUR = ¥1,625
    assert convert(Money(1000, "EUR"), Fraction("162.5"), "JPY") == Money(1625, "JPY")
    # half-even on the exact tie: 0.125 GBP -> 0.12, 0.135 -> 0.14
    assert convert(Money(125, "KWD"), Fraction(1), "GBP") == Money(12, "GBP")
    assert convert(Money(135, "KWD"), Fraction(1), "GBP") == Money(14, "GBP")
    with pytest.raises(CurrencyError):
        convert(Money(1, "EUR"), Fraction(0), "GBP")


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(CURRENCY_EXPONENTS)),
       st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_convert_at_one_is_within_half_a_minor_unit(amount: int, a: str, b: str) -> None:
    got = convert(Money(amount, a), Fraction(1), b)
    exact = Fraction(amount * 10 ** currency_exponent(b), 10 ** currency_exponent(a))
    assert got.currency == b and abs(got.amount - exact) <= Fraction(1, 2)


def test_rate_text_is_exact() -> None:
    assert [rate_text(Fraction(x)) for x in ("0.8567", "155", "0.005", "162.50")] == ["0.8567", "155", "0.005",
                                                                                     "162.5"]
    assert rate_text(Fraction(1, 3)) == "1/3"
    assert parse_decimal(rate_text(Fraction("0.00615"))) == Fraction("0.00615")


@pytest.mark.parametrize(("money", "locale", "text"), [
    (Money(1250, "EUR"), "en", "€12.50"),
    (Money(1250, "JPY"), "en", "¥1,250"),
    (Money(1250, "KWD"), "en", "KWD 1.250"),
    (Money(1250, "BHD"), "en-US", "BHD 1.250"),
    (Money(123456789, "GBP"), "en-GB", "£1,234,567.89"),
    (Money(-5, "USD"), "en", "-$0.05"),
    (Money(0, "EUR"), "en", "€0.00"),
    (Money(123456, "EUR"), "de-DE", "1.234,56 €"),
    (Money(1250, "KWD"), "de", "1,250 KWD"),
    (Money(1250, "JPY"), "ja-JP", "¥1,250"),
    (Money(123456, "EUR"), "fr", "1\u202f234,56 €"),
    (Money(1250, "EUR"), "xx", "€12.50"),  # an unknown language is written as English
])
def test_format_money_per_currency_and_locale(money: Money, locale: str, text: str) -> None:
    assert format_money(money, locale) == text
    assert money.format(locale) == text
