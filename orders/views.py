"""Values as their viewers see them: orders' domain values turned into the wire formats of
`messages.py`. Pure (no I/O); the one place the bill's lines, an order's cancel terms and its
buttons are worked out for a response.
"""

from __future__ import annotations

from typing import Any

from catalog import ResolvedOption
from kernel.money import Money
from orders.messages import (
    CancelTerms,
    FeeLine,
    MoneyOut,
    OrderLineOut,
    OrderOut,
    OrderSummary,
    Point,
    PromoOut,
    QuoteLine,
    QuoteOut,
    StatusChange,
    Window,
)
from orders.model import Actor, Caller, Status, allowed_actions, tip_change_deadline
from orders.order import Order, OrderHeader
from orders.pricing import FeePolicy, PriceBreakdown, Promo, cancellation_fee
from orders.quote import Quote

_CANCELLABLE = (Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY)
_ENDED = (Status.REJECTED, Status.CANCELLED, Status.EXPIRED)


def money_out(m: Money) -> MoneyOut:
    return MoneyOut(m.amount, m.currency)


def fee_lines(b: PriceBreakdown) -> list[FeeLine]:
    """The bill's lines as a customer sees them; zero lines are left out, the busy-area line
    appears only when surge is above 1."""
    out = [FeeLine("delivery", "Delivery", money_out(b.delivery_fee))]
    if b.busy_area_fee.amount:
        out.append(FeeLine("busy_area", f"Busy area (x{float(b.surge_multiplier):.2f})", money_out(b.busy_area_fee)))
    out.append(FeeLine("service", "Service fee", money_out(b.service_fee)))
    if b.small_order_fee.amount:
        out.append(FeeLine("small_order", "Small order fee", money_out(b.small_order_fee)))
    if b.discount.amount:
        out.append(FeeLine("discount", "Promo", money_out(-b.discount)))
    if b.member_discount is not None and b.member_discount.amount:
        out.append(FeeLine("membership", "Membership", money_out(-b.member_discount)))
    out.append(FeeLine("tax", "Tax (included)" if b.tax_inclusive else "Tax", money_out(b.tax)))
    if b.tip.amount:
        out.append(FeeLine("tip", "Tip", money_out(b.tip)))
    return out


def option_dict(opt: ResolvedOption) -> dict[str, Any]:
    """A selected option as a quote shows it and an order line stores it."""
    out: dict[str, Any] = {"option_id": opt.option_id, "name": opt.name, "quantity": opt.quantity,
                           "unit_price": {"amount": opt.unit_price.amount, "currency": opt.unit_price.currency}}
    if opt.options:
        out["options"] = [option_dict(s) for s in opt.options]
    return out


def quote_out(quote: Quote) -> QuoteOut:
    p = quote.priced
    b = p.breakdown
    lines = [
        QuoteLine(
            line_no=i, item_id=line.item_id, name=line.name, quantity=line.quantity,
            unit_price=money_out(line.unit_price), options=[option_dict(o) for o in line.options],
            line_total=money_out(line.line_total),
        )
        for i, line in enumerate(p.lines, 1)
    ]
    return QuoteOut(
        id=quote.id, store_id=p.request.store_id, currency=b.currency, lines=lines,
        subtotal=money_out(b.subtotal), fees=fee_lines(b), delivery_fee=money_out(b.delivery_fee),
        busy_area_fee=money_out(b.busy_area_fee), service_fee=money_out(b.service_fee),
        small_order_fee=money_out(b.small_order_fee), discount=money_out(b.discount), tax=money_out(b.tax),
        tax_inclusive=b.tax_inclusive, tip=money_out(b.tip), total=money_out(b.total),
        surge_multiplier=str(b.surge_multiplier), promo_code=p.promo.code if p.promo else None,
        distance_m=int(p.context.distance_m), promised_window=Window(*p.window),
        scheduled_for=p.request.scheduled_for, created_at=p.at, expires_at=quote.expires_at,
    )


def order_out(order: Order, caller: Caller, policy: FeePolicy) -> OrderOut:
    """The order as `caller` sees it: amounts, what a cancel would cost now, the actions allowed."""
    b, status = order.pricing, order.status
    may_cancel = status in _CANCELLABLE
    fee = cancellation_fee(status, Actor.CUSTOMER, b, policy) if may_cancel else Money.zero(order.currency)
    eta = order.delivered_at or order.promised_window[1]
    return OrderOut(
        id=order.id, status=status.value, customer_id=order.customer_id, store_id=order.store_id,
        tenant_id=order.tenant_id, region=order.region, currency=order.currency,
        lines=[OrderLineOut(line_no=ln.line_no, item_id=ln.item_id, name=ln.name, quantity=ln.quantity,
                            unit_price=money_out(ln.unit_price), options=ln.options,
                            line_total=money_out(ln.line_total), missing_quantity=ln.missing_quantity)
               for ln in order.lines],
        subtotal=money_out(b.subtotal), fees=fee_lines(b), total=money_out(order.total),
        refunded=money_out(order.refunded), captured=money_out(order.captured),
        cancel_fee=money_out(order.cancel_fee), pickup=Point(*order.pickup), dropoff=Point(*order.dropoff),
        address=order.address, placed_at=order.placed_at, accept_by=order.accept_by,
        accepted_at=order.accepted_at, prep_time_s=order.prep_time_s, ready_at=order.ready_at,
        picked_up_at=order.picked_up_at, delivered_at=order.delivered_at,
        promised_window=Window(*order.promised_window), eta=None if status in _ENDED else eta,
        courier_id=order.courier_id, end_reason=order.end_reason,
        cancel=CancelTerms(allowed=may_cancel, fee=money_out(fee),
                           fee_from=order.accept_by if status is Status.PLACED else None),
        tip_changeable_until=tip_change_deadline(order.delivered_at), rating=order.rating,
        history=[StatusChange(h.from_status, h.to_status, h.actor, h.reason, h.at) for h in order.history],
        allowed_actions=[a.value for a in allowed_actions(status, caller.actor)],
        delivery_note=order.delivery_note,
    )


def order_summary(o: OrderHeader) -> OrderSummary:
    return OrderSummary(id=o.id, status=o.status, store_id=o.store_id, customer_id=o.customer_id,
                        total=money_out(o.total), placed_at=o.placed_at, accept_by=o.accept_by,
                        ready_at=o.ready_at, courier_id=o.courier_id)


def promo_out(p: Promo) -> PromoOut:
    return PromoOut(
        id=p.id, code=p.code, kind=p.kind.value, percent_bps=p.percent_bps, amount=p.amount, currency=p.currency,
        max_discount=p.max_discount, min_subtotal=p.min_subtotal, first_order_only=p.first_order_only,
        per_customer_limit=p.per_customer_limit, budget=p.budget, budget_used=p.budget_used,
        valid_from=p.valid_from, valid_until=p.valid_until, store_id=p.store_id, active=p.active,
    )
