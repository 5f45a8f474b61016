"""HTTP handlers for exchange rates (operators load and list them), conversion quotes (a customer's
offer to convert wallet money at a rate, accepted by paying with it) and the ledger report in a
reporting currency."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kernel.http import CUSTOMER, OPERATOR, decode_body, decode_query, endpoint, json_response, principal
from kernel.money import Money, format_money
from payments import fx
from payments import fx_messages as fm
from payments.errors import ExchangeRateMissing, InsufficientBalance
from payments.fx import ExchangeRate
from payments.web import INVALID_CURRENCY, PAYMENTS

routes = web.RouteTableDef()
TAGS = ("exchange",)


def rate_view(rate: ExchangeRate) -> fm.ExchangeRateView:
    return fm.ExchangeRateView(id=rate.id, base=rate.base, quote=rate.quote, rate=rate.text,
                               rate_numerator=rate.rate.numerator, rate_denominator=rate.rate.denominator,
                               source=rate.source, as_of=rate.as_of)


@routes.post("/v1/exchange_rates")
@endpoint(roles={OPERATOR}, idempotent=True, body=fm.CreateExchangeRate, response=fm.ExchangeRateView, status=201,
          tags=TAGS, errors=[INVALID_CURRENCY])
async def create_exchange_rate(request: web.Request) -> web.Response:
    """Load a rate: one `base` is worth `rate` (an exact decimal string) or rate_numerator/rate_denominator
    units of `quote` as of `as_of`, from `source`. Conversions and reports use the latest at their time."""
    body = await decode_body(request, fm.CreateExchangeRate)
    rate = fx.parse_rate(body.rate, body.rate_numerator, body.rate_denominator)
    loaded = await request.app[PAYMENTS].exchange.load_rate(
        ExchangeRate("", body.base, body.quote, rate, body.source, body.as_of), principal(request).account_id)
    return json_response(rate_view(loaded), status=201)


@routes.get("/v1/exchange_rates")
@endpoint(roles={OPERATOR}, query=fm.RateQuery, response=fm.ExchangeRateList, tags=TAGS)
async def list_exchange_rates(request: web.Request) -> web.Response:
    """Rates loaded, newest first (optionally of one base and/or quote currency), cursor-paginated."""
    q = decode_query(request, fm.RateQuery)
    rates = await request.app[PAYMENTS].exchange.rates(base=q.base, quote=q.quote, starting_after=q.starting_after,
                                                       limit=q.limit + 1)
    return json_response(fm.ExchangeRateList(data=[rate_view(r) for r in rates[: q.limit]],
                                             has_more=len(rates) > q.limit))


def _locale(request: web.Request) -> str:
    """The first language of Accept-Language ("de-DE,de;q=0.9" -> "de-DE"); English without one."""
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return first or "en"


def quote_view(request: web.Request, row: Any, rate: ExchangeRate) -> fm.ConversionQuoteView:
    source, target = Money(row["from_amount"], row["from_currency"]), Money(row["to_amount"], row["to_currency"])
    locale = _locale(request)
    return fm.ConversionQuoteView(
        id=row["id"], from_currency=source.currency, from_amount=source.amount, to_currency=target.currency,
        to_amount=target.amount, rate=rate_view(rate), expires_at=row["expires_at"],
        status=request.app[PAYMENTS].exchange.status_of(row),  # type: ignore[arg-type]
        display=f"{format_money(source, locale)} for {format_money(target, locale)}")


@routes.post("/v1/conversion_quotes")
@endpoint(roles={CUSTOMER}, idempotent=True, body=fm.CreateConversionQuote, response=fm.ConversionQuoteView,
          status=201, tags=TAGS, errors=[ExchangeRateMissing, INVALID_CURRENCY])
async def create_conversion_quote(request: web.Request) -> web.Response:
    """What `to_amount` of `to_currency` costs in the wallet's `from_currency` at the current rate, good for
    a few minutes. Paying (an order or a PaymentIntent from the wallet) with its id as `conversion_quote`
    accepts it: the wallet converts exactly that, through the FX clearing accounts, once."""
    body = await decode_body(request, fm.CreateConversionQuote)
    to_currency = fx.check_currency(body.to_currency, "to_currency")
    row, rate = await request.app[PAYMENTS].exchange.quote(principal(request).account_id, body.from_currency,
                                                           Money(body.to_amount, to_currency))
    return json_response(quote_view(request, row, rate), status=201)


@routes.get("/v1/conversion_quotes/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, response=fm.ConversionQuoteView, tags=TAGS, errors=[404])
async def get_conversion_quote(request: web.Request) -> web.Response:
    """A conversion quote: the customer's own, or any for operators; `status` open, used or expired."""
    who = principal(request)
    row, rate = await request.app[PAYMENTS].exchange.get_quote(
        None if who.is_operator() else who.account_id, request.match_info["id"])
    return json_response(quote_view(request, row, rate))


def conversion_view(row: Any, rate: ExchangeRate) -> fm.ConversionView:
    return fm.ConversionView(
        id=row["id"], from_account=row["from_account"], from_currency=row["from_currency"],
        from_amount=row["from_amount"], to_account=row["to_account"], to_currency=row["to_currency"],
        to_amount=row["to_amount"], rate_id=rate.id, as_of=rate.as_of, rate=rate_view(rate), created=row["created_at"],
        conversion_quote=row["quote_id"], reference=row["reference"])


@routes.post("/v1/conversions")
@endpoint(roles={OPERATOR}, idempotent=True, body=fm.CreateConversion, response=fm.ConversionView, status=201,
          tags=TAGS, errors=[ExchangeRateMissing, InsufficientBalance, INVALID_CURRENCY, 404])
async def create_conversion(request: web.Request) -> web.Response:
    """Convert part of a platform or restaurant balance into another currency: `amount` of `from_currency`
    leaves the account and the same kind of account in `to_currency` receives it at the rate `rate_id`
    (else the pair's latest, at most two days old; 409 `exchange_rate_missing` without one), as two
    journal entries through the FX clearing accounts. Never more than the balance (402
    `balance_insufficient`)."""
    body = await decode_body(request, fm.CreateConversion)
    account = fx.balance_account(body.kind, fx.check_currency(body.from_currency, "from_currency"), body.owner)
    row, rate = await request.app[PAYMENTS].exchange.convert_balance(
        account, body.amount, body.to_currency, body.rate_id, actor=principal(request).account_id)
    return json_response(conversion_view(row, rate), status=201)


@routes.get("/v1/conversions/{id}")
@endpoint(roles={OPERATOR}, response=fm.ConversionView, tags=TAGS, errors=[404])
async def get_conversion(request: web.Request) -> web.Response:
    """A conversion: an operator's, or a customer's wallet converting to pay (or back, for a refund)."""
    row, rate = await request.app[PAYMENTS].exchange.get_conversion(request.match_info["id"])
    return json_response(conversion_view(row, rate))


@routes.get("/v1/reports/ledger")
@endpoint(roles={OPERATOR}, query=fm.LedgerReportQuery, response=fm.LedgerReport, tags=TAGS,
          errors=[INVALID_CURRENCY])
async def ledger_report(request: web.Request) -> web.Response:
    """The platform's ledger per account kind and currency (now, or at `at`). With `reporting_currency`,
    each balance also converted at its currency's rate at that time, totals per kind in that currency,
    the rates used (ids, as-of) and the currencies that had none (left out of the totals)."""
    q = decode_query(request, fm.LedgerReportQuery)
    when, lines, totals, missing = await request.app[PAYMENTS].exchange.ledger_report(q.reporting_currency, q.at)
    used = {line.rate.id: line.rate for line in lines if line.rate is not None}
    return json_response(fm.LedgerReport(
        at=when, reporting_currency=q.reporting_currency,
        balances=[fm.ReportBalance(kind=x.kind, currency=x.balance.currency, balance=x.balance.amount,
                                   converted=None if x.converted is None else x.converted.amount,
                                   rate_id=None if x.rate is None else x.rate.id) for x in lines],
        totals=[fm.ReportTotal(kind=k, converted=v.amount) for k, v in sorted(totals.items())],
        rates=[rate_view(r) for _, r in sorted(used.items())], missing_rates=missing))
