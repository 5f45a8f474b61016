"""HTTP handlers for the money a restaurant sees: its balance (`/v1/merchant/balance`), its payout
schedule and its payouts (`payments/merchant_payouts.py`).

A restaurant's money is the ledger's `restaurant_payable` account of its tenant (orders posts an
order's split with the tenant as the restaurant). The operator-only `/v1/wallets/{owner}` shows any
owner's raw accounts; these routes are the tenant's staff's and tenant-wide API keys' own view of
their tenant, named by the caller's principal, never by the path; an operator reads a tenant's balance and
payouts by naming it in `tenant_id`, which staff may name only as their own (another is 404). A
store-scoped API key runs one store's tablet and may not read the tenant-wide balance (403 `forbidden`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kernel.errors import NotFound, ValidationFailed
from kernel.http import (
    OPERATOR,
    STAFF,
    Principal,
    decode_body,
    decode_query,
    endpoint,
    json_response,
    merchant_tenant,
    principal,
    refuse_store_scoped,
)
from payments import messages as m
from payments.merchant import MerchantMoneyPolicy
from payments.web import PAYMENTS, _currency

routes = web.RouteTableDef()
TAGS = ("merchant money",)
# How a balance is divided (pending period, refund reserve); set by the composition root from Settings.
MERCHANT_POLICY = web.AppKey("payments_merchant_policy", MerchantMoneyPolicy)


def _own_tenant(who: Principal, what: str) -> str:
    """The tenant whose payout schedule the caller sets or reads: its own (staff, tenant-wide keys)."""
    return merchant_tenant(who, None, what)


@routes.get("/v1/merchant/balance")
@endpoint(roles={STAFF, OPERATOR}, query=m.MerchantTenantQuery, response=m.MerchantBalance, tags=TAGS,
          errors=[403, 404, 422])
async def merchant_balance(request: web.Request) -> web.Response:
    """The caller's tenant's balance per currency: `available` (may be paid out), `pending` (orders
    delivered within the pending period), `reserved_for_refunds` (held back for refunds the restaurant
    bears), and `total`, the ledger balance they add up to. Integer minor units. A store-scoped API key
    gets 403 `forbidden`: the balance is the tenant's, not one store's. Operators name the tenant
    (`tenant_id`); staff may name only their own (another is 404 `resource_missing`)."""
    who = principal(request)
    refuse_store_scoped(who, "the tenant's balance")  # before the query: 403 first
    q = decode_query(request, m.MerchantTenantQuery)
    tenant_id = merchant_tenant(who, q.tenant_id, "the tenant's balance")
    policy = request.app.get(MERCHANT_POLICY) or MerchantMoneyPolicy()
    parts = await request.app[PAYMENTS].wallets.merchant_balance(tenant_id, policy)
    return json_response(m.MerchantBalance(tenant_id=tenant_id, balances=[
        m.MerchantBalanceAmounts(currency=p.currency, available=p.available, pending=p.pending,
                                 reserved_for_refunds=p.reserved_for_refunds, total=p.total) for p in parts]))


def _schedule_view(row: Any) -> m.PayoutSchedule:
    return m.PayoutSchedule(every=row["every"], currency=row["currency"], minimum_amount=row["minimum_amount"],
                            weekday=row["weekday"], next_run_at=row["next_run_at"])


@routes.get("/v1/merchant/payout_schedule")
@endpoint(roles={STAFF}, response=m.PayoutSchedule, tags=TAGS, errors=[403, 404])
async def get_payout_schedule(request: web.Request) -> web.Response:
    """The caller's tenant's payout schedule (404 `resource_missing` when none is set: nothing is paid out on a
    schedule then)."""
    tenant_id = _own_tenant(principal(request), "the tenant's payouts")
    row = await request.app[PAYMENTS].merchant_payouts.schedule(tenant_id)
    if row is None:
        raise NotFound("no payout schedule is set", param="tenant_id")
    return json_response(_schedule_view(row))


@routes.put("/v1/merchant/payout_schedule")
@endpoint(roles={STAFF}, body=m.PayoutScheduleIn, response=m.PayoutSchedule, tags=TAGS, errors=[403, 422])
async def put_payout_schedule(request: web.Request) -> web.Response:
    """Set when the tenant is paid: `daily`, or `weekly` on a `weekday` (0 = Monday), at midnight UTC, what
    its balance has available in `currency` when that is at least `minimum_amount`."""
    tenant_id = _own_tenant(principal(request), "the tenant's payouts")
    body = await decode_body(request, m.PayoutScheduleIn)
    if (body.every == "weekly") != (body.weekday is not None):
        raise ValidationFailed("a weekday is given for a weekly schedule, and only then", param="weekday")
    row = await request.app[PAYMENTS].merchant_payouts.set_schedule(
        tenant_id, currency=_currency(body.currency), every=body.every, weekday=body.weekday,
        minimum_amount=body.minimum_amount)
    return json_response(_schedule_view(row))


@routes.get("/v1/merchant/payouts")
@endpoint(roles={STAFF, OPERATOR}, query=m.MerchantPayoutsQuery, response=m.MerchantPayoutList, tags=TAGS,
          errors=[403, 404, 422])
async def merchant_payouts(request: web.Request) -> web.Response:
    """The tenant's payouts, newest first (cursor `starting_after`): amount, status, a failure's reason and
    time, its retry (`retried_by`, or `next_attempt_at` until it is made; the retry lists it in `retry_of`),
    and the statement lines each settles with what was `held_back` (see docs/MONEY.md). Operators name the
    tenant (`tenant_id`); staff may name only their own (another is 404 `resource_missing`)."""
    who = principal(request)
    refuse_store_scoped(who, "the tenant's payouts")
    q = decode_query(request, m.MerchantPayoutsQuery)
    tenant_id = merchant_tenant(who, q.tenant_id, "the tenant's payouts")
    found = await request.app[PAYMENTS].merchant_payouts.payouts(tenant_id, q.starting_after, q.limit + 1)
    data = []
    for p in found[: q.limit]:
        r = p.row
        settles = [m.PayoutSettles(order_id=x.order_id, net=x.restaurant - x.refunded_by_restaurant)
                   for x in p.lines if x.currency == r["currency"]]
        data.append(m.MerchantPayoutView(
            id=r["id"], amount=r["amount"], currency=r["currency"], status=r["status"],
            failure_reason=r["failure_reason"], created=int(r["created_at"].timestamp()), settles=settles,
            held_back=sum(x.net for x in settles) - r["amount"] if r["settles_until"] else 0,
            failed_at=r["updated_at"] if r["status"] == "failed" else None, retried_by=r["retried_by"],
            next_attempt_at=r["next_attempt_at"],
            retry_of=list(r["retry_of"])))
    return json_response(m.MerchantPayoutList(data=data, has_more=len(found) > q.limit))
