"""HTTP handlers, Stripe-shaped: `/v1/plans`, `/v1/subscriptions`, `/v1/invoices`. Thin: decode, call the
service, encode. A customer sees their own subscriptions and invoices only (others' are 404); an
operator sees every one and manages plans."""

from __future__ import annotations

from aiohttp import web

from kernel.errors import NotFound, ValidationFailed
from kernel.http import (
    CUSTOMER,
    OPERATOR,
    ErrorDeclaration,
    decode_body,
    decode_query,
    endpoint,
    json_response,
    principal,
)
from memberships import messages as m
from memberships.errors import AlreadySubscribed, InvoiceNotOpen, PaymentMethodUnusable, PlanInactive, SubscriptionEnded
from memberships.service import MembershipsService
from payments import PaymentDeclined, PaymentRequiresAction, ProcessorError, ProcessorUnavailable

MEMBERSHIPS = web.AppKey("memberships", MembershipsService)
routes = web.RouteTableDef()
TAGS = ("memberships",)

# The answers routes below give besides every route's (fooddispatch/openapi.py lists them per operation).
# Every 404 is `resource_missing`, `param` naming the id (or the body's `plan`).
CHARGE: list[ErrorDeclaration] = [PaymentDeclined, PaymentRequiresAction, ProcessorUnavailable]  # a card charged now
REFUND: list[ErrorDeclaration] = [ProcessorError, ProcessorUnavailable]  # the unused share given back
INVALID_CURRENCY: tuple[int, str] = (ValidationFailed.status, "invalid_currency")  # memberships/service.py


def _service(request: web.Request) -> MembershipsService:
    return request.app[MEMBERSHIPS]


def _customer(request: web.Request) -> str | None:
    """The calling customer, whose own things alone exist for them; None for an operator (all)."""
    who = principal(request)
    return None if who.is_operator() else who.account_id


# ------------------------------------------------------------ plans


@routes.post("/v1/plans")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.CreatePlan, response=m.PlanView, tags=TAGS,
          errors=[INVALID_CURRENCY])
async def create_plan(request: web.Request) -> web.Response:
    """A membership plan: its price per month or year, a trial, and the benefits members get at quote
    time (free delivery above a food subtotal, a share off the service fee) in its region."""
    body = await decode_body(request, m.CreatePlan)
    plan = await _service(request).create_plan(body, principal(request).account_id)
    return json_response(m.plan_view(plan))


@routes.get("/v1/plans")
@endpoint(roles={CUSTOMER, OPERATOR}, query=m.PlanQuery, response=m.PlanList, tags=TAGS)
async def list_plans(request: web.Request) -> web.Response:
    """Plans on offer (operators also see retired ones), newest first, by region and currency; paged Stripe's
    way (`starting_after` the last plan id of the previous page, `has_more`)."""
    q = decode_query(request, m.PlanQuery)
    plans = await _service(request).plans(region=q.region, currency=q.currency,
                                          include_inactive=principal(request).is_operator(),
                                          starting_after=q.starting_after, limit=q.limit + 1)
    return json_response(m.PlanList(data=[m.plan_view(p) for p in plans[: q.limit]], has_more=len(plans) > q.limit))


@routes.get("/v1/plans/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, response=m.PlanView, tags=TAGS, errors=[NotFound])
async def get_plan(request: web.Request) -> web.Response:
    """One plan."""
    return json_response(m.plan_view(await _service(request).plan(request.match_info["id"])))


@routes.post("/v1/plans/{id}")
@endpoint(roles={OPERATOR}, idempotent=True, body=m.UpdatePlan, response=m.PlanView, tags=TAGS, errors=[NotFound])
async def update_plan(request: web.Request) -> web.Response:
    """Retire a plan (`active: false`: no new subscriptions, its subscriptions renew on) or offer it again.
    A plan's price and benefits do not change: make a new plan."""
    body = await decode_body(request, m.UpdatePlan)
    plan = await _service(request).set_plan_active(request.match_info["id"], body.active)
    return json_response(m.plan_view(plan))


# ------------------------------------------------------------ subscriptions


@routes.post("/v1/subscriptions")
@endpoint(roles={CUSTOMER}, idempotent=True, body=m.CreateSubscription, response=m.SubscriptionView, tags=TAGS,
          errors=[NotFound, PlanInactive, AlreadySubscribed, PaymentMethodUnusable, *CHARGE])
async def create_subscription(request: web.Request) -> web.Response:
    """Subscribe the calling customer with a saved card: a trial, or the first period charged now (a
    decline or 3-D Secure is 402 and nothing is kept). One subscription at a time."""
    body = await decode_body(request, m.CreateSubscription)
    sub = await _service(request).subscribe(principal(request).account_id, body.plan, body.payment_method)
    return json_response(m.subscription_view(sub))


@routes.get("/v1/subscriptions")
@endpoint(roles={CUSTOMER, OPERATOR}, query=m.SubscriptionQuery, response=m.SubscriptionList, tags=TAGS)
async def list_subscriptions(request: web.Request) -> web.Response:
    """Subscriptions, newest first: a customer's own; an operator's, all (or one `customer`'s). Paged by
    `starting_after` (the last id of the previous page) and `has_more`."""
    q = decode_query(request, m.SubscriptionQuery)
    customer = _customer(request)
    subs = await _service(request).subscriptions(customer if customer is not None else q.customer, q.limit + 1,
                                                 starting_after=q.starting_after)
    return json_response(m.SubscriptionList(data=[m.subscription_view(s) for s in subs[: q.limit]],
                                            has_more=len(subs) > q.limit))


@routes.get("/v1/subscriptions/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, response=m.SubscriptionView, tags=TAGS, errors=[NotFound])
async def get_subscription(request: web.Request) -> web.Response:
    """One subscription."""
    sub = await _service(request).subscription(_customer(request), request.match_info["id"])
    return json_response(m.subscription_view(sub))


@routes.post("/v1/subscriptions/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, idempotent=True, body=m.UpdateSubscription, response=m.SubscriptionView,
          tags=TAGS, errors=[NotFound, SubscriptionEnded, PaymentMethodUnusable])
async def update_subscription(request: web.Request) -> web.Response:
    """Cancel at the end of the period (or renew again), or change the card."""
    body = await decode_body(request, m.UpdateSubscription)
    sub = await _service(request).update(_customer(request), request.match_info["id"],
                                         cancel_at_period_end=body.cancel_at_period_end,
                                         payment_method_id=body.payment_method)
    return json_response(m.subscription_view(sub))


@routes.post("/v1/subscriptions/{id}/cancel")
@endpoint(roles={CUSTOMER, OPERATOR}, idempotent=True, body=m.CancelSubscription, response=m.SubscriptionView,
          tags=TAGS, errors=[NotFound, SubscriptionEnded, *REFUND])
async def cancel_subscription(request: web.Request) -> web.Response:
    """Cancel now (benefits stop); `refund: true` gives back the unused share of the current period, pro rata
    by the seconds left, floored to whole minor units."""
    body = await decode_body(request, m.CancelSubscription)
    sub = await _service(request).cancel(_customer(request), request.match_info["id"], refund=body.refund)
    return json_response(m.subscription_view(sub))


@routes.delete("/v1/subscriptions/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, idempotent=True, response=m.SubscriptionView, tags=TAGS,
          errors=[NotFound, SubscriptionEnded])
async def delete_subscription(request: web.Request) -> web.Response:
    """Cancel now, without a refund (Stripe's `DELETE`; `POST .../cancel` refunds on request)."""
    sub = await _service(request).cancel(_customer(request), request.match_info["id"], refund=False)
    return json_response(m.subscription_view(sub))


# ------------------------------------------------------------ invoices


@routes.get("/v1/invoices")
@endpoint(roles={CUSTOMER, OPERATOR}, query=m.InvoiceQuery, response=m.InvoiceList, tags=TAGS)
async def list_invoices(request: web.Request) -> web.Response:
    """Invoices, newest first: a customer's own; an operator's, all (or one `customer`'s), by subscription.
    Paged by `starting_after` (the last id of the previous page) and `has_more`."""
    q = decode_query(request, m.InvoiceQuery)
    customer = _customer(request)
    found = await _service(request).invoices(customer if customer is not None else q.customer, q.subscription,
                                             q.limit + 1, starting_after=q.starting_after)
    return json_response(m.InvoiceList(data=[m.invoice_view(i) for i in found[: q.limit]],
                                       has_more=len(found) > q.limit))


@routes.get("/v1/invoices/{id}")
@endpoint(roles={CUSTOMER, OPERATOR}, response=m.InvoiceView, tags=TAGS, errors=[NotFound])
async def get_invoice(request: web.Request) -> web.Response:
    """One invoice."""
    return json_response(m.invoice_view(await _service(request).invoice(_customer(request), request.match_info["id"])))


@routes.post("/v1/invoices/{id}/pay")
@endpoint(roles={CUSTOMER, OPERATOR}, idempotent=True, body=m.PayInvoice, response=m.InvoiceView, tags=TAGS,
          errors=[NotFound, InvoiceNotOpen, PaymentMethodUnusable, *CHARGE])
async def pay_invoice(request: web.Request) -> web.Response:
    """Pay an open invoice now (in dunning or past_due), with the subscription's card or a new one that the
    subscription keeps; paid, the subscription is active again. A decline is 402."""
    body = await decode_body(request, m.PayInvoice)
    inv = await _service(request).pay_invoice(_customer(request), request.match_info["id"], body.payment_method)
    return json_response(m.invoice_view(inv))


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
