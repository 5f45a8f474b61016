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


CONVERTIBLE_KINDS = ("platform_revenue", "platform_cash", "restaurant_payable")


class CreateConversion(msgspec.Struct, forbid_unknown_fields=True):
    """Convert `amount` of an account's `from_currency` balance into its `to_currency` balance, at a dated
    rate: `rate_id`, or the pair's latest at or before now (at most two days old)."""

    kind: Annotated[Literal["platform_revenue", "platform_cash", "restaurant_payable"], doc(
        "The account kind: platform_revenue, platform_cash, or restaurant_payable (a restaurant's balance)",
        "restaurant_payable")]
    from_currency: Annotated[Currency, doc("The currency of the balance to convert", "EUR")]
    to_currency: Annotated[Currency, doc("The currency to convert it into", "GBP")]
    amount: Annotated[Positive, doc("How much to convert, minor units of from_currency", 10000)]
    owner: Annotated[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_]{1,64}$")] | None, doc(
        "The balance's owner as the wallet names it (a tenant id for restaurant_payable); none for the "
        "platform's accounts", f"ten_{ULID}")] = None
    rate_id: Annotated[Annotated[str, id_cursor("fxr")] | None, doc(
        "The exchange rate to convert at (of this pair, as of now or earlier); default the latest", f"fxr_{ULID}")
    ] = None


class ConversionView(msgspec.Struct):
    """A conversion: `from_amount` left one account and `to_amount` entered the same kind of account in
    another currency, as two journal entries through the FX clearing accounts, at one dated rate."""

    id: Annotated[str, doc("The conversion's id", f"fxc_{ULID}")]
    from_account: Annotated[str, doc("The ledger account converted from", f"restaurant_payable:ten_{ULID}:EUR")]
    from_currency: Annotated[str, doc("The currency converted from", "EUR")]
    from_amount: Annotated[int, doc("Minor units of from_currency taken", 10000)]
    to_account: Annotated[str, doc("The ledger account converted into", f"restaurant_payable:ten_{ULID}:GBP")]
    to_currency: Annotated[str, doc("The currency converted into", "GBP")]
    to_amount: Annotated[int, doc("Minor units of to_currency given", 8567)]
    rate_id: Annotated[str, RATE_ID]
    as_of: Annotated[datetime, AS_OF]
    rate: Annotated[ExchangeRateView, doc("The rate it converted at")]
    created: Annotated[datetime, doc("When it was posted (UTC)", "2026-01-05T16:10:00Z")]
    conversion_quote: Annotated[str | None, doc("The customer's conversion quote it accepted, if any",
                                                f"cvq_{ULID}")] = None
    reference: Annotated[str | None, doc("What it was for (a payment, or the conversion it reverses)",
                                         f"pi_{ULID}")] = None
    object: Annotated[str, doc("The object's type", "conversion")] = "conversion"


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
