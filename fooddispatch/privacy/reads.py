"""Operators' views of a person, logged.

Each route of `messages.PERSON_READS` shows one customer's or courier's data (its path parameter names
whom). An operator calling it for a person must say why (`reason` in the query: 422 without, and the
route's answer is not sent); the read is written to the access log (who, whom, what, when, why) before its
answer goes out. Views of anyone else (a restaurant's wallet) pass as before.

Each route of `messages.ORDER_READS` shows an order, and with it its customer's data (address, note) and
its courier's: an operator's read is logged for both (one INSERT), the order id in `what`. There the
reason is optional: without one, the route's purpose is logged. Customers, staff and couriers reading
orders are not logged. The middleware takes `reason` out of the query before the route's handler decodes
it, so the routes need not know about it."""

from __future__ import annotations

import msgspec
from aiohttp import web

from fooddispatch.privacy.messages import ORDER_READS, PERSON_READS, REASON_LENGTH
from fooddispatch.privacy.web import PRIVACY
from kernel.errors import ValidationFailed
from kernel.http import OPERATOR, REQUEST_ID_KEY, Handler, Principal, optional_principal

UNKNOWN = "unknown"  # an order whose customer the answer does not name (never so for the routes above)


class _People(msgspec.Struct):
    """Whom an order's answer concerns (the rest of the answer is not decoded)."""

    customer_id: str | None = None
    courier_id: str | None = None


_people_decoder = msgspec.json.Decoder(_People)


def _reason(given: str | None) -> str:
    reason = (given or "").strip()
    if not REASON_LENGTH[0] <= len(reason) <= REASON_LENGTH[1]:
        raise ValidationFailed("say why you read this person's data: reason (3 to 500 characters) is required",
                               param="reason")
    return reason


def _without_reason(request: web.Request) -> web.Request:
    return request.clone(rel_url=request.rel_url.without_query_params("reason"))


def _people(response: web.StreamResponse) -> list[str]:
    body = getattr(response, "body", None)
    try:
        found = _people_decoder.decode(body) if isinstance(body, bytes) else _People()
    except msgspec.DecodeError:
        found = _People()
    people = [p for p in (found.customer_id, found.courier_id) if p]
    return list(dict.fromkeys(people)) or [UNKNOWN]


async def _order_read(request: web.Request, handler: Handler, who: Principal, route: tuple[str, str]) -> \
        web.StreamResponse:
    param, purpose = ORDER_READS[route]
    given = request.query.get("reason")
    response = await handler(_without_reason(request))
    if response.status >= 400:
        return response
    reason = purpose if given is None else _reason(given)
    what = f"{' '.join(route)} {request.match_info[param]}"
    await request.app[PRIVACY].record_reads(who, _people(response), what, reason, request.get(REQUEST_ID_KEY))
    return response


@web.middleware
async def person_reads_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else "")
    param = PERSON_READS.get(route)
    who = optional_principal(request)
    if who is None or who.role != OPERATOR:
        return await handler(request)
    if route in ORDER_READS:
        return await _order_read(request, handler, who, route)
    if param is None:
        return await handler(request)
    subject_id = request.match_info[param]
    privacy = request.app[PRIVACY]
    if not await privacy.is_person(subject_id):
        return await handler(_without_reason(request))
    reason = request.query.get("reason")
    response = await handler(_without_reason(request))
    if response.status >= 400:  # the route's own answer to a bad request (its parameters first), or none found
        return response
    # Checked after the route ran, so that its own validation answers first; its answer is not sent.
    await privacy.record_reads(who, [subject_id], " ".join(route), _reason(reason), request.get(REQUEST_ID_KEY))
    return response


def setup(app: web.Application) -> None:
    app.middlewares.append(person_reads_middleware)
