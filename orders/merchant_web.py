"""HTTP handlers of the money a restaurant acts on in orders: its statements (one line per order,
`orders/statements.py`). The tenant is the caller's own (staff, tenant-wide API keys), never named in
the path; a store-scoped key runs one store's tablet and may not read the tenant's money (403)."""

from __future__ import annotations

from aiohttp import web

from kernel.errors import Forbidden
from kernel.http import STAFF, Principal, decode_query, endpoint, json_response, principal, refuse_store_scoped
from orders.merchant_messages import StatementLineOut, StatementOut, StatementQuery, StatementTotals
from orders.statements import StatementLine, to_csv, totals
from orders.web import ORDERS

routes = web.RouteTableDef()
TAGS = ["merchant money"]


def merchant_tenant(who: Principal, what: str) -> str:
    """The tenant whose money the caller may see: its own; none for a store-scoped key (403)."""
    refuse_store_scoped(who, what)
    if not who.tenant_id:
        raise Forbidden("this account belongs to no restaurant tenant")
    return who.tenant_id


def _line_out(x: StatementLine) -> StatementLineOut:
    return StatementLineOut(
        order_id=x.order_id, currency=x.currency, at=x.at, gross=x.gross, tax=x.tax,
        tips_passed_through=x.tips_passed_through, commission=x.commission, commission_bps=x.commission_bps,
        fees=x.fees, refunds_borne_by_platform=x.refunds_borne_by_platform,
        refunds_borne_by_restaurant=x.refunds_borne_by_restaurant, net=x.net)


@routes.get("/v1/merchant/statements")
@endpoint(roles={STAFF}, query=StatementQuery, response=StatementOut, tags=TAGS, errors=[403, 422])
async def merchant_statement(request: web.Request) -> web.Response:
    """The caller's tenant's statement for the days `from`..`to` (UTC, both included, at most 93): one line
    per order whose money moved in the period (gross, tax, tips passed through, commission, fees, refunds
    and who bore them, net), the period's totals per currency, cursor-paginated by order id
    (`starting_after`). `format=csv`: every line as text/csv. The nets add up to what the period's orders
    moved on the restaurant's ledger account. A store-scoped API key gets 403 `forbidden`."""
    tenant_id = merchant_tenant(principal(request), "the tenant's statements")  # before the query: 403 first
    q = decode_query(request, StatementQuery)
    lines = await request.app[ORDERS].statements.lines(tenant_id, q.from_, q.to)
    if q.format == "csv":
        return web.Response(text=to_csv(lines), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="statement_{q.from_}_{q.to}.csv"'})
    page = [x for x in lines if q.starting_after is None or x.order_id > q.starting_after]
    more = len(page) > q.limit
    page = page[: q.limit]
    return json_response(StatementOut(
        tenant_id=tenant_id, period_from=q.from_, period_to=q.to,
        totals=[StatementTotals(currency=c, **t) for c, t in sorted(totals(lines).items())],
        items=[_line_out(x) for x in page], has_more=more, next_cursor=page[-1].order_id if more else None))
