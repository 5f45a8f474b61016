"""The pure FX rules: exact rates only, a rate read either way round, a conversion's two entries each
balanced in its own currency, and a report that never adds a currency it could not convert."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from kernel.errors import ValidationFailed
from kernel.money import Money
from payments.fx import ExchangeRate, conversion_entries, in_reporting_currency, parse_rate, plan_conversion
from payments.model import check_entry

AT = datetime(2026, 1, 5, tzinfo=UTC)
EUR_GBP = ExchangeRate("fxr_1", "EUR", "GBP", Fraction("0.8567"), "ECB", AT)


def test_a_rate_is_an_exact_decimal_string_or_two_integers() -> None:
    assert parse_rate("0.8567", None, None) == Fraction(8567, 10000)
    assert parse_rate(None, 1517, 3) == Fraction(1517, 3)
    for args in (("0", None, None), ("1e-3", None, None), (None, 1, None), ("1", 1, 2), (None, 0, 1),
                 (None, 1, 10**19)):
        with pytest.raises(ValidationFailed):
            parse_rate(*args)


def test_a_rate_reads_either_way_round() -> None:
    assert EUR_GBP.between("EUR", "GBP") == Fraction("0.8567")
    assert EUR_GBP.between("GBP", "EUR") == Fraction(10000, 8567)
    with pytest.raises(ValueError):
        EUR_GBP.between("EUR", "JPY")


def test_a_conversion_is_two_entries_each_balanced_in_its_currency() -> None:
    c = plan_conversion("fxc_1", EUR_GBP, Money(1000, "EUR"), "GBP", "cus_1")
    assert c.target == Money(857, "GBP")  # 8.567 -> 8.57
    out, into = conversion_entries(c, "cus_1")
    for e in (out, into):
        check_entry(e)
        assert e.reference == "fxc_1" and "fxr_1" in e.reason
    assert {p.account.id: p.amount for p in out.postings} == {"customer_wallet:cus_1:EUR": 1000,
                                                              "fx_clearing:EUR": -1000}
    assert {p.account.id: p.amount for p in into.postings} == {"fx_clearing:GBP": 857,
                                                               "customer_wallet:cus_1:GBP": -857}
    with pytest.raises(ValidationFailed):
        plan_conversion("fxc_2", EUR_GBP, Money(1000, "EUR"), "EUR", "cus_1")


def test_the_report_converts_what_it_can_and_never_adds_the_rest() -> None:
    balances = [("customer_wallet", Money(1000, "GBP")), ("customer_wallet", Money(500, "EUR")),
                ("customer_wallet", Money(7, "KWD"))]
    lines, totals = in_reporting_currency(balances, "EUR", {"GBP": EUR_GBP, "KWD": None})
    assert [(x.converted, x.rate) for x in lines] == [(Money(1167, "EUR"), EUR_GBP), (Money(500, "EUR"), None),
                                                      (None, None)]
    assert totals == {"customer_wallet": Money(1667, "EUR")}
