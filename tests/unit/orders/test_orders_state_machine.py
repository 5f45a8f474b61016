"""The order state machine: every (action, state, actor) triple is either allowed or refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kernel.errors import Forbidden, InvalidTransition
from orders.model import (
    Action,
    Actor,
    Status,
    allowed_actions,
    decide,
    may_change_tip,
    should_pause_store,
)

S, A, X = Status, Action, Actor

# (action, from, actor) -> to. Anything not listed must be refused.
ALLOWED: dict[tuple[Action, Status, Actor], Status] = {}
for actor in (X.RESTAURANT, X.OPERATOR):
    ALLOWED[(A.ACCEPT, S.PLACED, actor)] = S.ACCEPTED
    ALLOWED[(A.REJECT, S.PLACED, actor)] = S.REJECTED
    ALLOWED[(A.START_PREPARING, S.ACCEPTED, actor)] = S.PREPARING
    ALLOWED[(A.MARK_READY, S.ACCEPTED, actor)] = S.READY
    ALLOWED[(A.MARK_READY, S.PREPARING, actor)] = S.READY
ALLOWED[(A.EXPIRE, S.PLACED, X.SYSTEM)] = S.EXPIRED
for actor in (X.COURIER, X.SYSTEM, X.OPERATOR):
    for source in (S.ACCEPTED, S.PREPARING, S.READY):
        ALLOWED[(A.PICK_UP, source, actor)] = S.PICKED_UP
    ALLOWED[(A.DELIVER, S.PICKED_UP, actor)] = S.DELIVERED
for source in (S.PLACED, S.ACCEPTED, S.PREPARING, S.READY):
    ALLOWED[(A.CANCEL, source, X.CUSTOMER)] = S.CANCELLED
    ALLOWED[(A.CANCEL, source, X.OPERATOR)] = S.CANCELLED
for source in (S.ACCEPTED, S.PREPARING, S.READY):
    ALLOWED[(A.CANCEL, source, X.RESTAURANT)] = S.CANCELLED

EVERY = [(a, s, x) for a in Action for s in Status for x in Actor]


@pytest.mark.parametrize(("action", "source", "actor"), EVERY, ids=lambda v: v.value)
def test_every_transition_is_allowed_or_refused_as_specified(action: Action, source: Status, actor: Actor) -> None:
    expected = ALLOWED.get((action, source, actor))
    if expected is not None:
        assert decide(action, source, actor) is expected
    else:
        with pytest.raises((Forbidden, InvalidTransition)):
            decide(action, source, actor)


def test_impossible_transition_is_409_invalid_transition_with_current_status() -> None:
    with pytest.raises(InvalidTransition) as info:
        decide(A.ACCEPT, S.ACCEPTED, X.RESTAURANT)
    assert info.value.status == 409
    assert info.value.code == "invalid_transition"
    assert info.value.extra == {"status": "accepted"}


def test_courier_cannot_deliver_before_pickup() -> None:
    for source in (S.PLACED, S.ACCEPTED, S.PREPARING, S.READY):
        with pytest.raises(InvalidTransition):
            decide(A.DELIVER, source, X.COURIER)


def test_wrong_actor_is_forbidden_not_conflict() -> None:
    with pytest.raises(Forbidden):
        decide(A.ACCEPT, S.PLACED, X.CUSTOMER)
    with pytest.raises(Forbidden):
        decide(A.EXPIRE, S.PLACED, X.OPERATOR)


def test_terminal_states_allow_nothing() -> None:
    for status in (S.DELIVERED, S.REJECTED, S.CANCELLED, S.EXPIRED):
        for actor in Actor:
            assert allowed_actions(status, actor) == []


def test_allowed_actions_lists_what_a_restaurant_can_do_on_a_new_order() -> None:
    assert allowed_actions(S.PLACED, X.RESTAURANT) == [A.ACCEPT, A.REJECT]
    assert allowed_actions(S.PLACED, X.CUSTOMER) == [A.CANCEL]


def test_tip_changes_until_one_hour_after_delivery() -> None:
    delivered = datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert may_change_tip(S.PLACED, None, delivered)
    assert may_change_tip(S.DELIVERED, delivered, delivered + timedelta(minutes=59))
    assert not may_change_tip(S.DELIVERED, delivered, delivered + timedelta(minutes=61))
    assert not may_change_tip(S.CANCELLED, None, delivered)


def test_store_pause_threshold() -> None:
    assert not should_pause_store(2, 3)
    assert should_pause_store(3, 3)
    assert not should_pause_store(10, 0)
