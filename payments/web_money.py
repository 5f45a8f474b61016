"""HTTP handlers for wallets, payouts, fraud decisions, reconciliation and webhook
endpoints (the money-operations half of the API; `web.py` has cards and intents)."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from aiohttp import web

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.http import COURIER, CUSTOMER, OPERATOR, decode_body, decode_query, endpoint, json_response, principal
from kernel.money import Money
from kernel.netguard import DnsUnavailable, WebhookUrlForbidden
from kernel.webhook_client import WebhookClient
from payments import messages as m
from payments import reconcile, store
from payments.errors import InsufficientBalance
from payments.model import Account
from payments.web import INVALID_CURRENCY, PAYMENTS, TAGS, _currency

routes = web.RouteTableDef()
# The webhook client of the payments sender: registration checks URLs with the same guard.
WEBHOOK_CLIENT = web.AppKey("payments_webhook_client", WebhookClient)
OWN_WALLET = {CUSTOMER: "customer_wallet", COURIER: "courier_earnings"}


def payout_view(row: Any) -> m.PayoutView:
    return m.PayoutView(id=row["id"], owner=row["owner_id"], kind=row["kind"], amount=row["amount"], fee=row["fee"],
                        currency=row["currency"], status=row["status"],
                        method="instant" if row["instant"] else "standard", batch=row["batch_id"],
                        failure_reason=row["failure_reason"], created=int(row["created_at"].timestamp()))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("day must be YYYY-MM-DD", param="day") from None


async def _wallet(request: web.Request, owner: str) -> web.Response:
    rows = await request.app[PAYMENTS].wallets.balances(owner)
    return json_response(m.WalletView(owner=owner, balances=[
        m.Balance(account=r["id"], kind=r["kind"], currency=r["currency"], available=r["balance"]) for r in rows]))


async def _transactions(request: web.Request, owner: str, default_kind: str) -> web.Response:
    q = decode_query(request, m.WalletQuery)
    kind = q.kind or default_kind
    rows = await request.app[PAYMENTS].wallets.history(
        owner, kind, None if q.currency is None else _currency(q.currency), q.starting_after, q.limit + 1)
    data = [m.WalletTransaction(id=r["entry_id"], amount=Account(kind, r["currency"], owner).natural(r["amount"]),
                                currency=r["currency"], kind=r["kind"], description=r["reason"],
                                reference=r["reference"], created=r["created_at"])
            for r in rows[: q.limit]]
    more = len(rows) > q.limit
    return json_response(m.WalletTransactions(data=data, has_more=more, next_cursor=data[-1].id if more else None))


@routes.get("/v1/wallets/me")
@endpoint(roles={CUSTOMER, COURIER}, response=m.WalletView, tags=TAGS)
async def my_wallet(request: web.Request) -> web.Response:
    """The caller's balances (customer wallet or courier earnings), per currency."""
    return await _wallet(request, principal(request).account_id)


@routes.get("/v1/wallets/me/transactions")
@endpoint(roles={CUSTOMER, COURIER}, query=m.WalletQuery, response=m.WalletTransactions, tags=TAGS)
async def my_transactions(request: web.Request) -> web.Response:
    """The caller's wallet history, newest first, cursor-paginated with `starting_after`."""
    who = principal(request)
    return await _transactions(request, who.account_id, OWN_WALLET[who.role])


@routes.get("/v1/wallets/{owner}")
@endpoint(roles={OPERATOR}, response=m.WalletView, tags=TAGS)
async def owner_wallet(request: web.Request) -> web.Response:
    """Any owner's balances (customer, courier or restaurant)."""
    return await _wallet(request, request.match_info["owner"])


@routes.get("/v1/wallets/{owner}/transactions")
@endpoint(roles={OPERATOR}, query=m.WalletQuery, response=m.WalletTransactions, tags=TAGS)
async def owner_transactions(request: web.Request) -> web.Response:
    """Any owner's history for one account kind (`kind`, default customer_wallet)."""
    return await _transactions(request, request.match_info["owner"], "customer_wallet")


@routes.post("/v1/customer_credits")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.GrantCredit, response=m.CreditView, status=201, tags=TAGS)
async def grant_credit(request: web.Request) -> web.Response:
    """Grant promotional wallet credit that expires."""
    body = await decode_body(request, m.GrantCredit)
    row = await request.app[PAYMENTS].wallets.grant_credit(
        body.customer, Money(body.amount, _currency(body.currency)), body.expires_at, principal(request).account_id,
        body.reason)
    return json_response(m.CreditView(id=row["id"], customer=row["customer_id"], amount=row["amount"],
                                      currency=row["currency"], expires_at=row["expires_at"]), status=201)


@routes.post("/v1/payouts")
@endpoint(roles={COURIER}, idempotent=True, body=m.CreatePayout, response=m.PayoutView, status=201, tags=TAGS,
          errors=[InsufficientBalance, INVALID_CURRENCY])
async def cash_out(request: web.Request) -> web.Response:
    """A courier cashes out earnings: instant (with a fee) or with the next weekly batch."""
    body = await decode_body(request, m.CreatePayout)
    row = await request.app[PAYMENTS].wallets.cash_out(
        principal(request).account_id, Money(body.amount, _currency(body.currency)),
        instant=body.method == "instant", actor=principal(request).account_id)
    return json_response(payout_view(row), status=201)


@routes.get("/v1/payouts")
@endpoint(roles={COURIER, OPERATOR}, query=m.PayoutListQuery, response=m.PayoutList, tags=TAGS)
async def list_payouts(request: web.Request) -> web.Response:
    """Payouts, newest first: a courier's own, or all for operators."""
    q = decode_query(request, m.PayoutListQuery)
    who = principal(request)
    async with request.app[PAYMENTS].pool.acquire() as conn:
        rows = await store.list_payouts(conn, owner_id=who.account_id if who.role == COURIER else None,
                                        batch_id=None, starting_after=q.starting_after, limit=q.limit + 1)
    return json_response(m.PayoutList(data=[payout_view(r) for r in rows[: q.limit]], has_more=len(rows) > q.limit))


@routes.post("/v1/payout_batches")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.CreatePayoutBatch, response=m.PayoutBatchView, status=201,
          tags=TAGS)
async def create_payout_batch(request: web.Request) -> web.Response:
    """Pay out every positive courier or restaurant balance in a currency (weekly / daily run)."""
    body = await decode_body(request, m.CreatePayoutBatch)
    batch_id, rows = await request.app[PAYMENTS].wallets.create_batch(body.kind, _currency(body.currency),
                                                                      principal(request).account_id)
    return json_response(m.PayoutBatchView(id=batch_id, kind=body.kind, currency=body.currency,
                                           payouts=[payout_view(r) for r in rows]), status=201)


@routes.post("/v1/payouts/{id}")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.UpdatePayout, response=m.PayoutView, tags=TAGS,
          errors=[404, InvalidTransition])
async def update_payout(request: web.Request) -> web.Response:
    """Move a payout along: in_transit, paid, or failed (a failure returns the money to the balance)."""
    body = await decode_body(request, m.UpdatePayout)
    row = await request.app[PAYMENTS].wallets.update_payout(request.match_info["id"], body.status,
                                                            body.failure_reason, principal(request).account_id)
    return json_response(payout_view(row))


@routes.get("/v1/fraud/decisions")
@endpoint(roles={OPERATOR}, query=m.FraudQuery, response=m.FraudDecisionList, tags=TAGS)
async def fraud_decisions(request: web.Request) -> web.Response:
    """Every fraud screening with its score, level, action and reasons, newest first."""
    q = decode_query(request, m.FraudQuery)
    async with request.app[PAYMENTS].pool.acquire() as conn:
        rows = await store.list_fraud_decisions(conn, level=q.level, intent_id=q.payment_intent,
                                                starting_after=q.starting_after, limit=q.limit + 1)
    data = [m.FraudDecisionView(id=r["id"], payment_intent=r["intent_id"], customer=r["customer_id"],
                                score=r["score"], level=r["level"], action=r["action"], reasons=r["reasons"],
                                created=r["created_at"]) for r in rows[: q.limit]]
    return json_response(m.FraudDecisionList(data=data, has_more=len(rows) > q.limit))


@routes.post("/v1/reconciliation/runs")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.ReconciliationRun, response=m.ReconciliationReport, tags=TAGS)
async def run_reconciliation(request: web.Request) -> web.Response:
    """Match the processor's settlement report for a day against the ledger (the daily job, on demand)."""
    body = await decode_body(request, m.ReconciliationRun)
    service = request.app[PAYMENTS]
    matched, mismatches = await reconcile.reconcile(service.pool, service.processor, _day(body.day))
    return json_response(m.ReconciliationReport(day=body.day, matched=matched,
                                                mismatches=[m.Mismatch(**x) for x in mismatches]))


@routes.get("/v1/reconciliation/reports/{day}")
@endpoint(roles={OPERATOR}, response=m.ReconciliationReport, tags=TAGS, errors=[404])
async def get_reconciliation(request: web.Request) -> web.Response:
    """The stored reconciliation report of a day."""
    day = request.match_info["day"]
    found = await reconcile.report(request.app[PAYMENTS].pool, _day(day))
    if found is None:
        from payments.errors import ResourceMissing

        raise ResourceMissing(f"No reconciliation report for {day}", param="day")
    return json_response(m.ReconciliationReport(day=day, matched=found[0],
                                                mismatches=[m.Mismatch(**x) for x in found[1]]))


@routes.post("/v1/webhook_endpoints")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.CreateWebhookEndpoint, response=m.WebhookEndpointView,
          status=201, tags=TAGS, errors=[WebhookUrlForbidden, DnsUnavailable])
async def create_webhook_endpoint(request: web.Request) -> web.Response:
    """Subscribe a URL to payment events; the signing secret is shown once. Only https to public
    addresses (422 `webhook_url_forbidden`, with a `reason`)."""
    body = await decode_body(request, m.CreateWebhookEndpoint)
    await request.app[WEBHOOK_CLIENT].check_new_url(body.url)
    secret = "whsec_" + secrets.token_urlsafe(24)
    async with request.app[PAYMENTS].pool.acquire() as conn:
        row = await store.insert_webhook_endpoint(conn, url=body.url, secret=secret, event_types=body.enabled_events,
                                                  created_by=principal(request).account_id)
    return json_response(m.WebhookEndpointView(id=row["id"], url=row["url"], enabled_events=row["event_types"],
                                               secret=secret), status=201)


@routes.get("/v1/webhook_endpoints")
@endpoint(roles={OPERATOR}, response=list[m.WebhookEndpointView], tags=TAGS)
async def list_webhook_endpoints(request: web.Request) -> web.Response:
    """Active webhook endpoints (secrets not shown)."""
    async with request.app[PAYMENTS].pool.acquire() as conn:
        rows = await store.list_webhook_endpoints(conn)
    return json_response([m.WebhookEndpointView(id=r["id"], url=r["url"], enabled_events=r["event_types"])
                          for r in rows])
