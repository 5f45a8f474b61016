"""HTTP handlers for the money a restaurant sees: its balance (`/v1/merchant/balance`).

A restaurant's money is the ledger's `restaurant_payable` account of its tenant (orders posts an
order's split with the tenant as the restaurant). The operator-only `/v1/wallets/{owner}` shows any
owner's raw accounts; these routes are the tenant's staff's and tenant-wide API keys' own view of
their tenant, named by the caller's principal, never by the path. A store-scoped API key runs one
store's tablet and may not read the tenant-wide balance (403 `forbidden`)."""

from __future__ import annotations

from aiohttp import web

from kernel.errors import Forbidden
from kernel.http import STAFF, Principal, endpoint, json_response, principal, refuse_store_scoped
from payments import messages as m
from payments.merchant import MerchantMoneyPolicy
from payments.web import PAYMENTS

routes = web.RouteTableDef()
TAGS = ("merchant money",)
# How a balance is divided (pending period, refund reserve); set by the composition root from Settings.
MERCHANT_POLICY = web.AppKey("payments_merchant_policy", MerchantMoneyPolicy)


def merchant_tenant(who: Principal, what: str) -> str:
    """The tenant whose money the caller may read: its own; a store-scoped key none (403)."""
    refuse_store_scoped(who, what)
    if not who.tenant_id:
        raise Forbidden("this account belongs to no restaurant tenant")
    return who.tenant_id


@routes.get("/v1/merchant/balance")
@endpoint(roles={STAFF}, response=m.MerchantBalance, tags=TAGS, errors=[403])
async def merchant_balance(request: web.Request) -> web.Response:
    """The caller's tenant's balance per currency: `available` (may be paid out), `pending` (orders
    delivered within the pending period), `reserved_for_refunds` (held back for refunds the restaurant
    bears), and `total`, the ledger balance they add up to. Integer minor units. A store-scoped API key
    gets 403 `forbidden`: the balance is the tenant's, not one store's."""
    tenant_id = merchant_tenant(principal(request), "the tenant's balance")
    policy = request.app.get(MERCHANT_POLICY) or MerchantMoneyPolicy()
    parts = await request.app[PAYMENTS].wallets.merchant_balance(tenant_id, policy)
    return json_response(m.MerchantBalance(tenant_id=tenant_id, balances=[
        m.MerchantBalanceAmounts(currency=p.currency, available=p.available, pending=p.pending,
                                 reserved_for_refunds=p.reserved_for_refunds, total=p.total) for p in parts]))
