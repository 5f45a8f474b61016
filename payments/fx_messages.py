"""Wire formats of exchange rates, conversion quotes and the ledger report (msgspec Structs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from kernel.ids import id_pattern
from kernel.pagination import id_cursor
from payments.messages import Currency, Limit, Positive

RateText = Annotated[str, msgspec.Meta(
    pattern=r"^\d{1,18}(\.\d{1,18})?$", description="an exact decimal string: units of quote per unit of base",
    examples=["0.8567"])]
RatePart = Annotated[int, msgspec.Meta(ge=1, le=10**18)]


class CreateExchangeRate(msgspec.Struct, forbid_unknown_fields=True):
    """One unit of `base` is worth `rate` units of `quote` (or rate_numerator / rate_denominator), as of
    `as_of`, according to `source`. Never a float."""

    base: Annotated[Currency, msgspec.Meta(examples=["EUR"])]
    quote: Annotated[Currency, msgspec.Meta(examples=["GBP"])]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["ECB reference rate"])]
    as_of: datetime
    rate: RateText | None = None
    rate_numerator: RatePart | None = None
    rate_denominator: RatePart | None = None


class ExchangeRateView(msgspec.Struct):
    id: str
    base: str
    quote: str
    rate: Annotated[str, msgspec.Meta(description="exact: a decimal string, or \"n/d\" when it has no finite "
                                                  "decimal form")]
    rate_numerator: int
    rate_denominator: int
    source: str
    as_of: datetime
    object: str = "exchange_rate"


class ExchangeRateList(msgspec.Struct):
    data: list[ExchangeRateView]
    has_more: bool
    object: str = "list"


class RateQuery(msgspec.Struct, forbid_unknown_fields=True):
    base: Currency | None = None
    quote: Currency | None = None
    limit: Limit = 20
    starting_after: Annotated[str, id_cursor("fxr", "the last exchange rate id of the previous page")] | None = None


class CreateConversionQuote(msgspec.Struct, forbid_unknown_fields=True):
    """Buy `to_amount` of `to_currency` (the order's total, say) with the wallet's `from_currency`."""

    from_currency: Annotated[Currency, msgspec.Meta(examples=["EUR"])]
    to_currency: Annotated[Currency, msgspec.Meta(examples=["GBP"])]
    to_amount: Annotated[Positive, msgspec.Meta(description="minor units of to_currency")]


class ConversionQuoteView(msgspec.Struct):
    id: str
    from_currency: str
    from_amount: int
    to_currency: str
    to_amount: int
    rate: ExchangeRateView
    expires_at: datetime
    status: Literal["open", "used", "expired"]
    display: Annotated[str, msgspec.Meta(
        description="what the customer accepts, written for the request's Accept-Language",
        examples=["€12.34 for £10.57"])] = ""
    object: str = "conversion_quote"


class LedgerReportQuery(msgspec.Struct, forbid_unknown_fields=True):
    reporting_currency: Currency | None = None
    at: datetime | None = None


class ReportBalance(msgspec.Struct):
    kind: str
    currency: str
    balance: Annotated[int, msgspec.Meta(description="natural balance, minor units of currency")]
    converted: Annotated[int | None, msgspec.Meta(
        description="in minor units of the reporting currency; null without a rate")] = None
    rate_id: str | None = None


class ReportTotal(msgspec.Struct):
    kind: str
    converted: int


class LedgerReport(msgspec.Struct):
    balances: Annotated[list[ReportBalance], msgspec.Meta(description="per account kind and currency")]
    at: datetime
    reporting_currency: str | None = None
    totals: Annotated[list[ReportTotal], msgspec.Meta(
        description="per account kind, the converted balances summed in the reporting currency")] = []
    rates: Annotated[list[ExchangeRateView], msgspec.Meta(description="the rates used, with their as-of")] = []
    missing_rates: Annotated[list[str], msgspec.Meta(
        description="currencies with no rate to the reporting currency at `at`: left out of the totals")] = []
    object: str = "ledger_report"


QUOTE_ID = id_pattern("cvq")
