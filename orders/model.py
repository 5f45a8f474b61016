"""The order state machine: which actor may move an order from which state to which, and who may
see an order at all (`Caller`, `can_see`).

Pure: no I/O, no clock reads. The service layer locks the order row, asks
`decide(...)` whether the transition is allowed, then writes the new state,
a status-history row and the event in one transaction.

    placed → accepted → preparing → ready → picked_up → delivered
      │  └→ rejected    (restaurant)
      │  └→ expired     (system: accept window passed)
      └──┴────┴─────┴→ cancelled (customer, restaurant after accepting, operator)

A courier may pick up from `accepted` or `preparing` too: tablets forget to press
"ready", and the courier holding the bag is the stronger evidence. Nobody may
mark an order delivered before it was picked up, and nothing leaves a terminal state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kernel.errors import Forbidden, InvalidTransition


class Status(StrEnum):
    PLACED = "placed"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL = frozenset({Status.DELIVERED, Status.REJECTED, Status.CANCELLED, Status.EXPIRED})
# States a restaurant sees as work to do.
ACTIVE = frozenset({Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY, Status.PICKED_UP})
# Before pickup the food has not left the restaurant: the hold can still be voided.
BEFORE_PICKUP = frozenset({Status.PLACED, Status.ACCEPTED, Status.PREPARING, Status.READY})
# After acceptance and before pickup: prep time, missing items and restaurant cancels apply.
IN_KITCHEN = frozenset({Status.ACCEPTED, Status.PREPARING, Status.READY})


class Actor(StrEnum):
    CUSTOMER = "customer"
    RESTAURANT = "restaurant"  # staff account or the tenant's API key
    COURIER = "courier"
    OPERATOR = "operator"
    SYSTEM = "system"  # sweepers and event consumers


class Action(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    EXPIRE = "expire"
    START_PREPARING = "start_preparing"
    MARK_READY = "mark_ready"
    PICK_UP = "pick_up"
    DELIVER = "deliver"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Rule:
    sources: frozenset[Status]
    target: Status
    actors: frozenset[Actor]


def _rule(sources: set[Status], target: Status, actors: set[Actor]) -> Rule:
    return Rule(frozenset(sources), target, frozenset(actors))


# The whole machine. The event consumer acts as SYSTEM on the courier's behalf
# after it checked the courier is the assigned one.
RULES: dict[Action, Rule] = {
    Action.ACCEPT: _rule({Status.PLACED}, Status.ACCEPTED, {Actor.RESTAURANT, Actor.OPERATOR}),
    Action.REJECT: _rule({Status.PLACED}, Status.REJECTED, {Actor.RESTAURANT, Actor.OPERATOR}),
    Action.EXPIRE: _rule({Status.PLACED}, Status.EXPIRED, {Actor.SYSTEM}),
    Action.START_PREPARING: _rule({Status.ACCEPTED}, Status.PREPARING, {Actor.RESTAURANT, Actor.OPERATOR}),
    Action.MARK_READY: _rule({Status.ACCEPTED, Status.PREPARING}, Status.READY, {Actor.RESTAURANT, Actor.OPERATOR}),
    Action.PICK_UP: _rule(
        {Status.ACCEPTED, Status.PREPARING, Status.READY}, Status.PICKED_UP,
        {Actor.COURIER, Actor.SYSTEM, Actor.OPERATOR},
    ),
    Action.DELIVER: _rule({Status.PICKED_UP}, Status.DELIVERED, {Actor.COURIER, Actor.SYSTEM, Actor.OPERATOR}),
    Action.CANCEL: _rule(set(BEFORE_PICKUP), Status.CANCELLED, {Actor.CUSTOMER, Actor.RESTAURANT, Actor.OPERATOR}),
}

# Narrower cancel rights: a restaurant cancels only what it accepted (before that it rejects).
_CANCEL_SOURCES: dict[Actor, frozenset[Status]] = {
    Actor.CUSTOMER: BEFORE_PICKUP,
    Actor.RESTAURANT: IN_KITCHEN,
    Actor.OPERATOR: BEFORE_PICKUP,
}


def decide(action: Action, current: Status, actor: Actor) -> Status:
    """The state after `actor` does `action` on an order in `current`.

    Raises `Forbidden` when this actor never may do it, `InvalidTransition` (409)
    when it may, but not from this state.
    """
    rule = RULES[action]
    if actor not in rule.actors:
        raise Forbidden(f"a {actor.value} may not {action.value.replace('_', ' ')} an order")
    sources = _CANCEL_SOURCES.get(actor, rule.sources) if action is Action.CANCEL else rule.sources
    if current not in sources:
        raise InvalidTransition(
            f"cannot {action.value.replace('_', ' ')} an order that is {current.value}",
            extra={"status": current.value},
        )
    return rule.target


def allowed_actions(current: Status, actor: Actor) -> list[Action]:
    """What `actor` may do now; drives the buttons a client shows."""
    return list(_allowed(current, actor))


@functools.cache
def _allowed(current: Status, actor: Actor) -> tuple[Action, ...]:
    # Every order view asks; trying each action raises and catches an error per refusal, so the
    # answer (fixed by the rules) is computed once per (status, actor).
    out = []
    for action in RULES:
        try:
            decide(action, current, actor)
        except (Forbidden, InvalidTransition):
            continue
        out.append(action)
    return tuple(out)


def tip_change_deadline(delivered_at: datetime | None) -> datetime | None:
    """Tips may change until one hour after delivery (None: no deadline yet)."""
    return None if delivered_at is None else delivered_at + timedelta(hours=1)


def may_change_tip(status: Status, delivered_at: datetime | None, now: datetime) -> bool:
    if status is Status.DELIVERED:
        deadline = tip_change_deadline(delivered_at)
        return deadline is not None and now <= deadline
    return status not in TERMINAL


def should_pause_store(consecutive_expired: int, threshold: int) -> bool:
    """A store that let `threshold` orders in a row expire is paused (0 disables)."""
    return threshold > 0 and consecutive_expired >= threshold


@dataclass(frozen=True, slots=True)
class Caller:
    """Who acts on or looks at an order: the actor and, for people, their account (and tenant; for
    a store-scoped key, its stores: None is every store of the tenant)."""

    actor: Actor
    account_id: str | None
    tenant_id: str | None = None
    store_ids: frozenset[str] | None = None


SYSTEM = Caller(Actor.SYSTEM, None)


def can_see(caller: Caller, customer_id: str, tenant_id: str, store_id: str, courier_id: str | None) -> bool:
    """Whether `caller` may see (and so act on) the order of these parties. Everyone else (another
    store's key included) gets the same 404 as for an order that does not exist."""
    if caller.actor in (Actor.OPERATOR, Actor.SYSTEM):
        return True
    if caller.actor is Actor.CUSTOMER:
        return customer_id == caller.account_id
    if caller.actor is Actor.RESTAURANT:
        return tenant_id == caller.tenant_id and (caller.store_ids is None or store_id in caller.store_ids)
    return courier_id is not None and courier_id == caller.account_id
