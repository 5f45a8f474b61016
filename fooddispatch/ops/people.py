"""Who the console's couriers are: their names, for the lists, the map's labels and search.

Events name couriers by account id only; the names live with the accounts (`fooddispatch.identity`).
The page asks once for the ids it has not seen yet and keeps the answer.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from fooddispatch.auth import IDENTITY_SERVICE
from kernel.fielddoc import doc
from kernel.http import COURIER, OPERATOR, decode_query, endpoint, json_response

MAX_IDS = 100
IDS = "^[A-Za-z0-9_]{1,40}(,[A-Za-z0-9_]{1,40})*$"
routes = web.RouteTableDef()


class CourierNamesQuery(Struct, frozen=True, forbid_unknown_fields=True):
    """Which couriers."""

    # Comma-separated courier account ids, at most MAX_IDS of them.
    ids: Annotated[str, Meta(min_length=1, max_length=MAX_IDS * 41, pattern=IDS),
                   doc(f"Courier account ids, comma-separated, at most {MAX_IDS}", "cou_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]


class CourierNames(Struct, frozen=True):
    """Couriers' names."""

    names: Annotated[dict[str, str], doc(  # id -> name, for the ids that are couriers with a name
        "Name by account id, for the ids that are couriers with a name", {"cou_01JE3ZK4Q8N3W6V5T2R1P0M9XA": "Sam"})]


@routes.get("/v1/ops/courier_names")
@endpoint(roles={OPERATOR}, query=CourierNamesQuery, response=CourierNames, tags=["ops"],
          summary="Couriers' names by account id (up to 100 ids, comma-separated); unknown ids are left out")
async def courier_names(request: web.Request) -> web.Response:
    query = decode_query(request, CourierNamesQuery)
    ids = list(dict.fromkeys(query.ids.split(",")))[:MAX_IDS]
    return json_response(CourierNames(await request.app[IDENTITY_SERVICE].names(ids, COURIER)))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
