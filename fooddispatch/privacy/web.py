"""The privacy routes: a person's export and erasure, and the access log (auditors only)."""

from __future__ import annotations

from aiohttp import web

from fooddispatch.privacy.messages import ExportQuery, PrivacyExport
from fooddispatch.privacy.service import PrivacyService
from kernel.http import (
    COURIER,
    CUSTOMER,
    OPERATOR,
    REQUEST_ID_KEY,
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


def setup(app: web.Application) -> None:
    app.add_routes(routes)
