"""How the payments facade is put together: its collaborators are built in its constructor, share
the dependencies it was given, and none holds a reference back to the facade (no mixins, no
callbacks into it), so each can be read and tested with only what it is handed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kernel.clock import ManualClock
from payments.service import PaymentsService

POOL, VAULT, PROCESSOR, FRAUD = object(), object(), object(), object()  # never used by the constructor


def facade() -> PaymentsService:
    return PaymentsService(POOL, vault=VAULT, processor=PROCESSOR, fraud=FRAUD,  # type: ignore[arg-type]
                           clock=ManualClock(datetime(2026, 12, 7, tzinfo=UTC)))


def collaborators(service: PaymentsService) -> dict[str, Any]:
    return {name: part for name, part in vars(service).items() if type(part).__module__.startswith("payments.")}


def test_payments_facade_owns_one_collaborator_per_concern() -> None:
    parts = collaborators(facade())
    assert {type(p).__name__ for p in parts.values()} == {
        "Authorizations", "Confirmations", "Exchange", "FraudDecisions", "Holds", "MerchantPayouts", "PaymentMethods",
        "Refunds", "Wallets"}
    assert [c.__name__ for c in PaymentsService.__mro__] == ["PaymentsService", "object"]  # no mixin chain


def test_payments_collaborators_hold_no_reference_back_to_the_facade() -> None:
    service = facade()
    for name, part in collaborators(service).items():
        for attr, value in vars(part).items():
            assert value is not service, f"{name}.{attr} is the facade"
            assert getattr(value, "__self__", None) is not service, f"{name}.{attr} is a method of the facade"


def test_payments_collaborators_share_what_the_facade_was_given() -> None:
    service = facade()
    assert service.confirmations.processor is service.holds.processor is service.refunds.processor is PROCESSOR
    assert service.confirmations.decisions is service.fraud_decisions
    assert service.holds.confirmations is service.intents.confirmations is service.confirmations
    assert service.intents.holds is service.holds
    assert service.intents.exchange is service.exchange
    assert service.wallets.clock is service.methods.clock is service.intents.clock is service.clock
