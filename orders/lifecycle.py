"""The order lifecycle after checkout: restaurant, customer, courier and system commands.

Each command is one transaction: lock the order row (`FOR UPDATE`), ask the pure
state machine, move the money on the same connection (void / capture / split /
refund, see `orders.money`), then write state + history + events in one statement.
Two tablets accepting at once serialize on the row lock: the second sees `accepted`
and gets 409; a cancel racing an accept sees whichever committed first and charges
accordingly.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import asyncpg

from kernel.clock import Clock
from kernel.errors import DomainError, InvalidTransition, ValidationFailed
from kernel.money import Money
from kernel.outbox import Event, PointData
from orders import money_store, store
from orders.errors import AlreadyRated, OrderNotFound, TipNotChangeable
from orders.event_types import (
    OrderAccepted,
    OrderCancelled,
    OrderCourierAssigned,
    OrderDelivered,
    OrderExpired,
    OrderPickedUp,
    OrderPrepTimeChanged,
    OrderReady,
    OrderRejected,
)
from orders.model import (
    BEFORE_PICKUP,
    IN_KITCHEN,
    SYSTEM,
    Action,
    Actor,
    Caller,
    Status,
    can_see,
    decide,
    may_change_tip,
    should_pause_store,
)
from orders.money import OrderMoney, order_facts
from orders.ports import Payments
from orders.pricing import (
    FeePolicy,
    SplitAmounts,
    breakdown_from_dict,
    breakdown_to_dict,
    cancellation_fee,
    missing_item_refund,
    with_tip,
)

log = logging.getLogger(__name__)

StorePauser = Callable[[str, str], Awaitable[None]]  # (store_id, reason)


def courier_assigned_event(row: Any, status: Status, courier_id: str, operator_id: str | None, at: datetime) -> Event:
    """`order.courier_assigned`: an operator gave the order to `courier_id` by hand (docs/EVENTS.md)."""
    return OrderCourierAssigned(
        **order_facts(row, status), courier_id=courier_id, previous_courier_id=row["courier_id"],
        operator_id=operator_id, region=row["region"], pickup=PointData(row["pickup_lat"], row["pickup_lng"]),
        dropoff=PointData(row["dropoff_lat"], row["dropoff_lng"]), placed_at=row["placed_at"],
        promised_at=row["promised_to"], at=at,
    ).event(row["id"])


class OrderLifecycle:
    def __init__(self, pool: asyncpg.Pool, clock: Clock, payments: Payments, money: OrderMoney, fees: FeePolicy, *,
                 pause_after_expired: int = 3, pause_store: StorePauser | None = None) -> None:
        self.pool = pool
        self.clock = clock
        self.payments = payments  # a tip changed after checkout takes a hold (or a charge) of its own
        self.money = money
        self.fees = fees
        self.pause_after_expired = pause_after_expired  # consecutive expired orders that pause a store (0: never)
        self.pause_store = pause_store

    # ---- the one transition routine ---------------------------------------------------------------

    async def _locked(self, conn: asyncpg.Connection, order_id: str, caller: Caller) -> asyncpg.Record:
        row = await store.lock_order(conn, order_id)
        if row is None or not can_see(caller, row["customer_id"], row["tenant_id"], row["store_id"], row["courier_id"]):
            raise OrderNotFound("no such order", param="order_id")
        return row

    async def act(
        self, order_id: str, caller: Caller, action: Action, *, reason: str | None = None,
        prep_time_s: int | None = None, proof: dict | None = None, conn: asyncpg.Connection | None = None,
    ) -> Status:
        """Run one transition; on `conn` when given (inside the caller's transaction)."""
        if conn is not None:
            return await self._act(conn, order_id, caller, action, reason, prep_time_s, proof)
        async with self.pool.acquire() as c, c.transaction():
            return await self._act(c, order_id, caller, action, reason, prep_time_s, proof)

    async def _act(
        self, conn: asyncpg.Connection, order_id: str, caller: Caller, action: Action, reason: str | None,
        prep_time_s: int | None, proof: dict | None,
    ) -> Status:
        row = await self._locked(conn, order_id, caller)
        current = Status(row["status"])
        target = decide(action, current, caller.actor)
        now = self.clock.now()
        b = breakdown_from_dict(json.loads(row["pricing"]))
        changes: dict[str, Any] = {}
        events: list[Event] = []
        facts = order_facts(row, target)
        if action is Action.ACCEPT:
            prep = prep_time_s or row["prep_time_s"]
            start = max(now, row["scheduled_for"] or now)
            ready_at = start + timedelta(seconds=prep)
            changes |= {"accepted_at": now, "prep_time_s": prep, "ready_at": ready_at}
            await store.reset_expiry_streak(conn, row["store_id"])
            events.append(OrderAccepted(
                **facts, region=row["region"], pickup=PointData(row["pickup_lat"], row["pickup_lng"]),
                dropoff=PointData(row["dropoff_lat"], row["dropoff_lng"]), placed_at=row["placed_at"],
                ready_at=ready_at, promised_at=row["promised_to"], courier_id=row["courier_id"],
            ).event(order_id))
        elif action is Action.START_PREPARING:
            pass  # recorded in the history; no event in the contract
        elif action is Action.MARK_READY:
            changes["ready_at"] = now
            events.append(OrderReady(**facts, ready_at=now).event(order_id))
        elif action in (Action.REJECT, Action.EXPIRE, Action.CANCEL):
            fee = cancellation_fee(current, caller.actor, b, self.fees) if action is Action.CANCEL else None
            captured = await self.money.end(conn, row, fee, reason or action.value)
            changes |= {"ended_at": now, "end_reason": reason or action.value, "captured": captured,
                        "cancel_fee": captured}
            ended = {Status.REJECTED: OrderRejected, Status.EXPIRED: OrderExpired, Status.CANCELLED: OrderCancelled}
            events.append(ended[target](**facts, reason=reason or action.value, courier_id=row["courier_id"])
                          .event(order_id))
        elif action is Action.PICK_UP:
            changes["picked_up_at"] = now
            if proof is not None:
                changes["proof"] = json.dumps({"pickup": proof})
            events.append(OrderPickedUp(**facts, courier_id=row["courier_id"], at=now).event(order_id))
        elif action is Action.DELIVER:
            captured = await self.money.deliver(conn, row, b)
            changes |= {"delivered_at": now, "captured": captured}
            if proof is not None:
                changes["proof"] = json.dumps({"dropoff": proof})
            events.append(OrderDelivered(**facts, courier_id=row["courier_id"], at=now, proof=proof).event(order_id))
        await store.apply_change(
            conn, order_id, from_status=current.value, to_status=target.value, actor=caller.actor.value,
            actor_id=caller.account_id, reason=reason, at=now, changes=changes, events=events, record_history=True,
        )
        return target

    # ---- commands that are not transitions ----------------------------------------------------------

    async def set_prep_time(self, order_id: str, caller: Caller, prep_time_s: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, order_id, caller)
            status = Status(row["status"])
            if caller.actor not in (Actor.RESTAURANT, Actor.OPERATOR):
                raise OrderNotFound("no such order", param="order_id")
            if status not in (Status.ACCEPTED, Status.PREPARING):
                raise InvalidTransition(f"cannot change the prep time of an order that is {status.value}",
                                        extra={"status": status.value})
            ready_at = row["accepted_at"] + timedelta(seconds=prep_time_s)
            event = OrderPrepTimeChanged(**order_facts(row, status), ready_at=ready_at).event(order_id)
            await store.apply_change(
                conn, order_id, from_status=status.value, to_status=status.value, actor=caller.actor.value,
                actor_id=caller.account_id, reason=None, at=self.clock.now(),
                changes={"prep_time_s": prep_time_s, "ready_at": ready_at}, events=[event], record_history=False,
            )

    async def report_missing(self, order_id: str, caller: Caller, missing: dict[int, int]) -> int:
        """Items that cannot be sent (the restaurant after accepting, or an operator) or that did not
        arrive (an operator, after delivery): the customer gets their value (and its tax) back. Before
        delivery nothing was charged yet: the capture at delivery is that much smaller. After delivery
        the charge is refunded at once, through payments, and the refund is counted on the order in
        the same transaction (so its `payment.refunded` coming back is not counted again)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, order_id, caller)
            status = Status(row["status"])
            if caller.actor not in (Actor.RESTAURANT, Actor.OPERATOR):
                raise OrderNotFound("no such order", param="order_id")
            delivered = status is Status.DELIVERED and caller.actor is Actor.OPERATOR
            if status not in IN_KITCHEN and not delivered:
                raise InvalidTransition(f"cannot report missing items on an order that is {status.value}",
                                        extra={"status": status.value})
            b = breakdown_from_dict(json.loads(row["pricing"]))
            lines = {r["line_no"]: r for r in await store.lines_of(conn, order_id)}
            refunds, _ = await self.money.missing_refunds(conn, order_id, b.currency)
            now = self.clock.now()
            total_refund = 0
            for i, (line_no, qty) in enumerate(missing.items()):
                line = lines.get(line_no)
                if line is None:
                    raise ValidationFailed("no such line", param=f"lines[{i}].line_no")
                if line["missing_quantity"] + qty > line["quantity"]:
                    raise ValidationFailed("more missing than ordered", param=f"lines[{i}].quantity")
                value = Money(line["line_total"], b.currency).times(Fraction(qty, line["quantity"]))
                refund = missing_item_refund(value, b, refunds)
                refunds.append(refund)
                total_refund += refund.total.amount
                await money_store.add_payment(conn, order_id, "missing_refund", refund.food.amount, now,
                                        tax=refund.tax.amount, reference=f"line {line_no} x{qty}")
            await store.mark_missing(conn, order_id, missing)
            if total_refund > 0:
                amount = Money(total_refund, b.currency)
                if delivered:  # the key is the same when a rolled-back report is retried: one refund
                    key = f"{order_id}:missing:{len(refunds)}"
                    await self.money.refund(conn, row, amount, "missing_items", key=key)
                else:
                    await self.money.count_refund(conn, row, refund_id=None, intent_id=None, amount=amount,
                                                  reason="missing_items")
            return total_refund

    async def change_tip(self, order_id: str, caller: Caller, tip: int) -> None:
        """Until delivery + 1 h. Before delivery a higher tip takes a top-up hold for what the
        first hold does not cover; after delivery a higher tip is charged at once and goes to
        the courier. A tip is never lowered after delivery: the courier has been told."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, order_id, caller)
            status = Status(row["status"])
            now = self.clock.now()
            if caller.actor is not Actor.CUSTOMER or not may_change_tip(status, row["delivered_at"], now):
                raise TipNotChangeable("the tip can no longer be changed", extra={"status": status.value})
            pricing = json.loads(row["pricing"])
            b = breakdown_from_dict(pricing)
            new = with_tip(b, Money(tip, b.currency))
            delta = new.total.amount - b.total.amount
            if delta == 0:
                return
            _, payments = await self.money.missing_refunds(conn, order_id, b.currency)
            n = sum(1 for p in payments if p["kind"] in ("tip_hold", "tip_capture")) + 1
            ref = f"{order_id}:tip:{n}"
            if status is Status.DELIVERED:
                if delta < 0:
                    raise TipNotChangeable("a tip cannot be lowered after delivery")
                if await self.money.collection_pending(conn, order_id):  # its capture would take the new tip
                    raise TipNotChangeable("the order's payment is not collected yet; try again later")
                hold = await self.payments.authorize(
                    conn, customer_id=row["customer_id"], payment_method_id=row["payment_method_id"],
                    amount=Money(delta, b.currency), reference=ref, idempotency_key=ref,
                )
                await self.payments.capture(conn, hold.intent_id, Money(delta, b.currency))
                zero = Money.zero(b.currency)
                raised = Money(delta, b.currency)
                await self.money.post_split(conn, ref, row, SplitAmounts(raised, zero, raised, zero, zero,
                                                                         tip=raised))
                await money_store.add_payment(conn, order_id, "tip_capture", delta, now, intent_id=hold.intent_id,
                                        reference=ref)
                changes = {"captured": row["captured"] + delta}
            else:
                held = pricing.get("hold", b.total.amount) + sum(
                    p["amount"] for p in payments if p["kind"] == "tip_hold" and not p["settled"])
                need = new.total.amount - held
                if need > 0:
                    hold = await self.payments.authorize(
                        conn, customer_id=row["customer_id"], payment_method_id=row["payment_method_id"],
                        amount=Money(need, b.currency), reference=ref, idempotency_key=ref,
                    )
                    await money_store.add_payment(conn, order_id, "tip_hold", need, now, intent_id=hold.intent_id,
                                            reference=ref)
                changes = {}
            pricing |= breakdown_to_dict(new)
            changes |= {"total": new.total.amount, "pricing": json.dumps(pricing)}
            await store.apply_change(
                conn, order_id, from_status=status.value, to_status=status.value, actor=caller.actor.value,
                actor_id=caller.account_id, reason="tip", at=now, changes=changes, events=[], record_history=False,
            )

    async def rate(self, order_id: str, caller: Caller, stars: int, comment: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, order_id, caller)
            if caller.actor is not Actor.CUSTOMER:
                raise OrderNotFound("no such order", param="order_id")
            if row["status"] != Status.DELIVERED.value:
                raise InvalidTransition("only a delivered order can be rated", extra={"status": row["status"]})
            if not await store.set_rating(conn, order_id, stars, comment):
                raise AlreadyRated("this order has been rated already")

    async def assign(self, order_id: str, caller: Caller, courier_id: str) -> bool:
        """An operator gives the order to a courier by hand, before pickup (dispatch does it through
        `dispatch.assigned`). From then on dispatch's assignments of the order are stale; the change is
        announced as `order.courier_assigned` in the same transaction, so dispatch withdraws the order from
        its pool and offers, tracking moves it to the courier's bundle and tells both couriers' apps, and the
        order's watchers see the new courier. Returns False when the courier holds it by hand already."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._locked(conn, order_id, caller)
            if caller.actor is not Actor.OPERATOR:
                raise OrderNotFound("no such order", param="order_id")
            status = Status(row["status"])
            if status not in BEFORE_PICKUP:
                raise InvalidTransition("the order is past pickup", extra={"status": row["status"]})
            if row["courier_id"] == courier_id and row["courier_by_operator"]:
                return False
            event = courier_assigned_event(row, status, courier_id, caller.account_id, self.clock.now())
            await store.apply_change(
                conn, order_id, from_status=status.value, to_status=status.value, actor=caller.actor.value,
                actor_id=caller.account_id, reason="courier_assigned", at=self.clock.now(),
                changes={"courier_id": courier_id, "courier_by_operator": True}, events=[event], record_history=False,
            )
            return True

    # ---- system: accept-window expiry -------------------------------------------------------------

    async def expire_overdue(self, limit: int = 100) -> int:
        """Expire orders the restaurant did not answer in time; pause a store that let
        `pause_after_expired` orders in a row expire."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            ids = await store.overdue_orders(conn, now, limit)
        expired = 0
        for order_id in ids:
            pause: str | None = None
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    row = await store.lock_order(conn, order_id)
                    if row is None or row["status"] != Status.PLACED.value or row["accept_by"] > now:
                        continue
                    await self._act(conn, order_id, SYSTEM, Action.EXPIRE, "accept_window_passed", None, None)
                    streak = await store.bump_expiry_streak(conn, row["store_id"])
                    if should_pause_store(streak, self.pause_after_expired):
                        pause = row["store_id"]
                        await store.reset_expiry_streak(conn, row["store_id"])
                expired += 1
            except DomainError as exc:
                log.warning("could not expire order %s: %s", order_id, exc.message)
                continue
            if pause is not None and self.pause_store is not None:
                try:
                    await self.pause_store(pause, f"{self.pause_after_expired} orders in a row expired")
                except DomainError as exc:
                    log.warning("could not pause store %s: %s", pause, exc.message)
        return expired
