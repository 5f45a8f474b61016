"""The privacy routes: a person's export and erasure, and the access log (auditors only)."""

from __future__ import annotations

from aiohttp import web

from fooddispatch.privacy.messages import (
    AccessLogPage,
    AccessLogQuery,
    ErasureIn,
    ErasureOut,
    ExportQuery,
    PrivacyExport,
)
from fooddispatch.privacy.service import MembershipActive, OrdersInProgress, PrivacyService
from kernel.http import (
    AUDITOR,
    COURIER,
    CUSTOMER,
    OPERATOR,
    REQUEST_ID_KEY,
    decode_body,
    decode_query,
    endpoint,
    json_response,
    principal,
)

PRIVACY = web.AppKey("privacy", PrivacyService)
routes = web.RouteTableDef()


@routes.get("/v1/privacy/export")
@endpoint(roles={CUSTOMER, COURIER, OPERATOR}, query=ExportQuery, response=PrivacyExport, errors=[403, 404, 422],
          tags=["privacy"],
          summary="Everything held about a customer or courier, as one JSON archive (a download). Customers and "
                  "couriers get their own; an operator names the person (account_id) and says why (reason). "
                  "Every export is recorded in the access log")
async def export(request: web.Request) -> web.Response:
    query = decode_query(request, ExportQuery)
    found = await request.app[PRIVACY].export(principal(request), query.account_id, query.reason,
                                              request.get(REQUEST_ID_KEY))
    disposition = f'attachment; filename="privacy-export-{found.account_id}.json"'
    return json_response(found, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


@routes.post("/v1/privacy/erasure")
@endpoint(roles={CUSTOMER, COURIER, OPERATOR}, body=ErasureIn, response=ErasureOut, tags=["privacy"],
          errors=[403, 404, OrdersInProgress, MembershipActive, 422],
          summary="Erase a customer's or courier's personal data everywhere it lives and revoke their tokens; "
                  "orders, payments and the ledger stay, unlinked from name and email; 409 while the person has "
                  "orders in progress or a membership that has not ended. Customers and couriers "
                  "erase their own (an empty body); an operator names the person and says why. Idempotent: a "
                  "second request answers the first's record")
async def erasure(request: web.Request) -> web.Response:
    body = await decode_body(request, ErasureIn)
    return json_response(await request.app[PRIVACY].erase(principal(request), body.account_id, body.reason))


@routes.get("/v1/privacy/access_log")
@endpoint(roles={AUDITOR}, query=AccessLogQuery, response=AccessLogPage, errors=[403, 422], tags=["privacy"],
          summary="Who read whose personal data, when and why (exports, operators' views of a person), oldest "
                  "first; auditors only")
async def access_log(request: web.Request) -> web.Response:
    return json_response(await request.app[PRIVACY].access_log(decode_query(request, AccessLogQuery)))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
