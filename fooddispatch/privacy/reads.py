"""Operators' views of a person, logged: each route of `messages.PERSON_READS` shows one customer's or
courier's data (its path parameter names whom). An operator calling it for a person must say why
(`reason` in the query: 422 without, and the route's answer is not sent); the read is written to the
access log (who, whom, what, when, why) before its answer goes out. Views of anyone else (a restaurant's
wallet) pass as before. The middleware takes `reason` out of the query before the route's handler
decodes it, so the routes need not know about it."""

from __future__ import annotations

from aiohttp import web

from fooddispatch.privacy.messages import PERSON_READS, REASON_LENGTH
from fooddispatch.privacy.web import PRIVACY
from kernel.errors import ValidationFailed
from kernel.http import OPERATOR, REQUEST_ID_KEY, Handler, optional_principal


def _reason(given: str | None) -> str:
    reason = (given or "").strip()
    if not REASON_LENGTH[0] <= len(reason) <= REASON_LENGTH[1]:
        raise ValidationFailed("say why you read this person's data: reason (3 to 500 characters) is required",
                               param="reason")
    return reason


@web.middleware
async def person_reads_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = (request.method, resource.canonical if resource is not None else "")
    param = PERSON_READS.get(route)
    who = optional_principal(request)
    if param is None or who is None or who.role != OPERATOR:
        return await handler(request)
    subject_id = request.match_info[param]
    privacy = request.app[PRIVACY]
    if not await privacy.is_person(subject_id):
        return await handler(request.clone(rel_url=request.rel_url.without_query_params("reason")))
    reason = request.query.get("reason")
    response = await handler(request.clone(rel_url=request.rel_url.without_query_params("reason")))
    if response.status >= 400:  # the route's own answer to a bad request (its parameters first), or none found
        return response
    # Checked after the route ran, so that its own validation answers first; its answer is not sent.
    await privacy.record_read(who, subject_id, " ".join(route), _reason(reason), request.get(REQUEST_ID_KEY))
    return response


def setup(app: web.Application) -> None:
    app.middlewares.append(person_reads_middleware)
