"""Wire formats of exchange rates, conversion quotes and the ledger report (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.fielddoc import HAS_MORE, LIMIT, doc
from kernel.pagination import id_cursor
from payments.messages import Currency, Limit, Positive

ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
RATE_ID = doc("The exchange rate's id", f"fxr_{ULID}")
AS_OF = doc("The time the rate holds from (conversions and reports use the latest at or before their time)",
            "2026-01-05T16:00:00Z")
RateText = Annotated[str, msgspec.Meta(pattern=r"^\d{1,18}(\.\d{1,18})?$")]
RatePart = Annotated[int, msgspec.Meta(ge=1, le=10**18)]


class CreateExchangeRate(msgspec.Struct, forbid_unknown_fields=True):
    """One unit of `base` is worth `rate` units of `quote` (or rate_numerator / rate_denominator), as of
    `as_of`, according to `source`. Never a float."""

    base: Annotated[Currency, doc("The currency one unit of which the rate prices (ISO 4217)", "EUR")]
    quote: Annotated[Currency, doc("The currency the rate is in (ISO 4217)", "GBP")]
    source: Annotated[Annotated[str, msgspec.Meta(min_length=1, max_length=100)],
                      doc("Where the rate comes from", "ECB reference rate")]
    as_of: Annotated[datetime, AS_OF]
    rate: Annotated[RateText | None, doc("Units of quote per unit of base, an exact decimal string; or give "
                                         "rate_numerator and rate_denominator", "0.8567")] = None
    rate_numerator: Annotated[RatePart | None, doc("Instead of rate: its numerator", 8567)] = None
    rate_denominator: Annotated[RatePart | None, doc("Instead of rate: its denominator", 10000)] = None


class ExchangeRateView(msgspec.Struct):
    """An exchange rate as loaded: exact, dated, with its source."""

    id: Annotated[str, RATE_ID]
    base: Annotated[str, doc("One unit of this currency...", "EUR")]
    quote: Annotated[str, doc("...is worth `rate` units of this one", "GBP")]
    rate: Annotated[str, doc("Exact: a decimal string, or \"n/d\" when it has no finite decimal form", "0.8567")]
    rate_numerator: Annotated[int, doc("The rate's numerator (in lowest terms)", 8567)]
    rate_denominator: Annotated[int, doc("The rate's denominator (in lowest terms)", 10000)]
    source: Annotated[str, doc("Where the rate comes from", "ECB reference rate")]
    as_of: Annotated[datetime, AS_OF]
    object: Annotated[str, doc("The object's type", "exchange_rate")] = "exchange_rate"


class ExchangeRateList(msgspec.Struct):
    """A page of exchange rates, newest first."""

    data: Annotated[list[ExchangeRateView], doc("The rates of this page")]
    has_more: Annotated[bool, HAS_MORE]
    object: Annotated[str, doc("The object's type", "list")] = "list"


class RateQuery(msgspec.Struct, forbid_unknown_fields=True):
    """Which rates, and which page of them."""

    base: Annotated[Currency | None, doc("Only rates of this base currency", "EUR")] = None
    quote: Annotated[Currency | None, doc("Only rates into this quote currency", "GBP")] = None
    limit: Annotated[Limit, LIMIT] = 20
    starting_after: Annotated[Annotated[str, id_cursor("fxr")] | None,
                              doc("The last exchange rate id of the previous page", f"fxr_{ULID}")] = None


class CreateConversionQuote(msgspec.Struct, forbid_unknown_fields=True):
    """Buy `to_amount` of `to_currency` (the order's total, say) with the wallet's `from_currency`."""

    from_currency: Annotated[Currency, doc("The wallet currency to pay with", "EUR")]
    to_currency: Annotated[Currency, doc("The currency of the payment to make", "GBP")]
    to_amount: Annotated[Positive, doc("The payment's amount, minor units of to_currency", 1250)]


class ConversionQuoteView(msgspec.Struct):
    """A conversion offered to the customer: paying with its id accepts it, once, before it expires."""

    id: Annotated[str, doc("The conversion quote's id (pay with it as `conversion_quote`)", f"cvq_{ULID}")]
    from_currency: Annotated[str, doc("The wallet currency it takes", "EUR")]
    from_amount: Annotated[int, doc("What it takes, minor units of from_currency", 1459)]
    to_currency: Annotated[str, doc("The currency it buys", "GBP")]
    to_amount: Annotated[int, doc("What it buys, minor units of to_currency", 1250)]
    rate: Annotated[ExchangeRateView, doc("The rate it converts at")]
    expires_at: Annotated[datetime, doc("Until when it may be accepted (UTC)", "2026-01-05T16:10:00Z")]
    status: Annotated[Literal["open", "used", "expired"], doc("open, used (accepted) or expired", "open")]
    display: Annotated[str, doc("What the customer accepts, written for the request's Accept-Language",
                                "€14.59 for £12.50")] = ""
    object: Annotated[str, doc("The object's type", "conversion_quote")] = "conversion_quote"


class LedgerReportQuery(msgspec.Struct, forbid_unknown_fields=True):
    """The report's currency and time."""

    reporting_currency: Annotated[Currency | None, doc(
        "Convert each balance into this currency at the rate of its time", "EUR")] = None
    at: Annotated[datetime | None, doc("The balances and rates at this time; default now",
                                       "2026-01-05T18:00:00Z")] = None


class ReportBalance(msgspec.Struct):
    """The natural balances of one account kind in one currency, summed."""

    kind: Annotated[str, doc("The account kind", "customer_wallet")]
    currency: Annotated[str, doc("The balance's currency", "JPY")]
    balance: Annotated[int, doc("Natural balance, minor units of currency", 1250)]
    converted: Annotated[int | None, doc("In minor units of the reporting currency; null without a rate", 769)] = None
    rate_id: Annotated[str | None, doc("The rate it was converted at (null: the reporting currency itself, or "
                                       "no rate)", f"fxr_{ULID}")] = None


class ReportTotal(msgspec.Struct):
    """One account kind's converted balances summed in the reporting currency."""

    kind: Annotated[str, doc("The account kind", "customer_wallet")]
    converted: Annotated[int, doc("Minor units of the reporting currency", 2019)]


class LedgerReport(msgspec.Struct):
    """The ledger per account kind and currency, and in a reporting currency at dated rates."""

    balances: Annotated[list[ReportBalance], doc("Per account kind and currency")]
    at: Annotated[datetime, doc("The time of the balances and the rates", "2026-01-05T18:00:00Z")]
    reporting_currency: Annotated[str | None, doc("The currency of `converted` and the totals", "EUR")] = None
    totals: Annotated[list[ReportTotal], doc("Per account kind, the converted balances summed")] = []
    rates: Annotated[list[ExchangeRateView], doc("The rates used, with their as-of")] = []
    missing_rates: Annotated[list[str], doc(
        "Currencies with no rate to the reporting currency at `at`: left out of the totals", ["KWD"])] = []
    object: Annotated[str, doc("The object's type", "ledger_report")] = "ledger_report"
