"""HTTP handlers of the money a restaurant acts on in orders: its statements (one line per order,
`orders/statements.py`) and its refunds (`orders/merchant_refunds.py`). The tenant is the caller's own
(staff, tenant-wide API keys), never named in the path (an operator names it in `tenant_id`, which staff may
name only as their own: another is 404); a store-scoped key runs one store's tablet and may not read the
tenant's money (403), but may refund an order of its own store."""

from __future__ import annotations

from aiohttp import web

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.http import (
    OPERATOR,
    STAFF,
    decode_query,
    endpoint,
    idempotency_key,
    json_response,
    merchant_tenant,
    principal,
    refuse_store_scoped,
)
from orders.merchant_messages import (
    MerchantRefundOut,
    MerchantRefundRequest,
    StatementLineOut,
    StatementOut,
    StatementQuery,
    StatementTotals,
)
from orders.statements import StatementLine, to_csv, totals
from orders.web import ORDERS, _caller, _order_body
from payments.errors import InsufficientBalance

routes = web.RouteTableDef()
TAGS = ["merchant money"]


def _line_out(x: StatementLine) -> StatementLineOut:
    return StatementLineOut(
        order_id=x.order_id, currency=x.currency, at=x.at, gross=x.gross, tax=x.tax,
        tips_passed_through=x.tips_passed_through, commission=x.commission, commission_bps=x.commission_bps,
        fees=x.fees, refunds_borne_by_platform=x.refunds_borne_by_platform,
        refunds_borne_by_restaurant=x.refunds_borne_by_restaurant, net=x.net)


@routes.get("/v1/merchant/statements")
@endpoint(roles={STAFF, OPERATOR}, query=StatementQuery, response=StatementOut, tags=TAGS,
          errors=[403, 404, 422, (ValidationFailed.status, "invalid_period")])
async def merchant_statement(request: web.Request) -> web.Response:
    """The caller's tenant's statement for the days `from`..`to` (UTC, both included, at most 93): one line
    per order whose money moved in the period (gross, tax, tips passed through, commission, fees, refunds
    and who bore them, net), the period's totals per currency, cursor-paginated by order id
    (`starting_after`). `format=csv`: every line as text/csv. The nets add up to what the period's orders
    moved on the restaurant's ledger account. A store-scoped API key gets 403 `forbidden`. Operators name the
    tenant (`tenant_id`); staff may name only their own (another is 404 `resource_missing`)."""
    who = principal(request)
    refuse_store_scoped(who, "the tenant's statements")  # before the query: 403 first
    q = decode_query(request, StatementQuery)
    tenant_id = merchant_tenant(who, q.tenant_id, "the tenant's statements")
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


@routes.post("/v1/merchant/orders/{order_id}/refunds")
@endpoint(roles={STAFF}, idempotent=True, body=MerchantRefundRequest, response=MerchantRefundOut, status=201,
          tags=TAGS, errors=[InsufficientBalance, 404, (InvalidTransition.status, "refund_window_closed"),
                             (InvalidTransition.status, "order_not_refundable"),
                             (ValidationFailed.status, "amount_too_large"),
                             (ValidationFailed.status, "refund_limit_exceeded")])
async def merchant_refund(request: web.Request) -> web.Response:
    """The restaurant refunds its customer: all that is left (no `amount` or `lines`), an `amount`, or the
    value of some `lines`, for a `reason` from a fixed list. Its balance pays (402 `balance_insufficient`
    when it cannot). Limits: refunds of an order may total at most a share of its charge (422
    `refund_limit_exceeded`), more than is left is 422 `amount_too_large`, an order older than the refund
    window is 409 `refund_window_closed`, one not delivered (or not collected yet) 409
    `order_not_refundable`. Another tenant's order is 404 `resource_missing`. The order's `refunded` grows and
    `order.refunded` is sent, as for every refund; the same Idempotency-Key gives the first answer."""
    body = await _order_body(request, MerchantRefundRequest)  # 404 for an order the caller may not see first
    if body.amount is not None and body.lines:
        raise ValidationFailed("give `amount` or `lines`, not both", param="lines")
    lines: dict[int, int] = {}
    for line in body.lines or []:
        lines[line.line_no] = lines.get(line.line_no, 0) + line.quantity
    done = await request.app[ORDERS].merchant_refunds.refund(
        request.match_info["order_id"], _caller(request), amount=body.amount, lines=lines, reason=body.reason,
        key=idempotency_key(request))
    return json_response(MerchantRefundOut(
        order_id=done.order_id, amount=done.amount.amount, currency=done.amount.currency, reason=done.reason,
        refunds=done.refund_ids, order_refunded=done.order_refunded), status=201)
