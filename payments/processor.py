"""The card processor boundary: a `Processor` protocol, the built-in test-mode
processor (Stripe's test cards, its state in a `ChargeBook`), and the resilience
wrapper every call goes through (timeout, retries with backoff for retryable
errors only, circuit breaker).

Every processor call carries an idempotency key, so a retry after a timeout, or
the background resolver asking again after an outage, never charges twice. The
processor answers, remembers and refuses as an external one does: its charges and
its answers by key outlive our process (`processor_store`), and an operation on a
charge it does not know is refused (`ProcessorRefusedError`), never a crash.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from kernel.ids import new_id
from kernel.money import Money

if TYPE_CHECKING:
    from payments.processor_store import BookSession, ChargeBook

T = TypeVar("T")

AUTHORIZED = "authorized"
REQUIRES_ACTION = "requires_action"
DECLINED = "declined"


class ProcessorUnavailableError(Exception):
    """Retryable: network trouble, a timeout, a 5xx, or the circuit is open.
    After a timeout the processor may or may not have acted; ask again with the same key."""


class ProcessorRefusedError(Exception):
    """Not retryable: the processor answered and refused (Stripe's 4xx): it does not know the charge
    (`resource_missing`: made before its records began, or they were lost), or the charge is in no
    state for the operation, or the amount is too large. `code` says which. Payments turns it into
    `errors.ProcessorError` (502 `processor_error`), never a 500."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CardForProcessor:
    number: str
    exp_month: int
    exp_year: int

    def __repr__(self) -> str:
        return f"CardForProcessor(last4={self.number[-4:]!r})"


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    charge_id: str
    outcome: str  # authorized | requires_action | declined
    amount: Money
    code: str | None = None  # Stripe error code on a decline (card_declined, expired_card, ...)
    decline_code: str | None = None
    message: str | None = None
    next_action: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SettlementLine:
    ref: str  # the processor's id of the capture or refund (what the ledger stores as processor_ref)
    type: str  # capture | refund
    amount: Money
    day: date


class Processor(Protocol):
    async def authorize(self, card: CardForProcessor, amount: Money, idempotency_key: str) -> AuthorizationResult: ...

    async def complete_authentication(self, charge_id: str, succeeded: bool) -> AuthorizationResult: ...

    async def retrieve(self, idempotency_key: str) -> AuthorizationResult | None: ...

    async def capture(self, charge_id: str, amount: Money, idempotency_key: str) -> str: ...

    async def void(self, charge_id: str, idempotency_key: str) -> None: ...

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str: ...

    async def settlement_report(self, day: date) -> list[SettlementLine]: ...


# Stripe's test cards and what a charge on them does.
TEST_CARDS: dict[str, tuple[str, str | None, str | None, str]] = {
    # number: (outcome, code, decline_code, message)
    "4242424242424242": (AUTHORIZED, None, None, ""),
    "4000000000000002": (DECLINED, "card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (DECLINED, "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": (DECLINED, "expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (DECLINED, "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": (DECLINED, "processing_error", "processing_error",
                         "An error occurred while processing your card. Try again in a little bit."),
    "4000002500003155": (REQUIRES_ACTION, None, None, ""),
    "4100000000000019": (DECLINED, "card_declined", "fraudulent", "Your card was declined."),
}
# What a charge waiting for 3-D Secure becomes when the customer fails it: (code, decline_code, message).
AUTHENTICATION_FAILED = ("payment_intent_authentication_failure", "authentication_failed",
                         "The customer failed 3-D Secure authentication.")


@dataclass
class Charge:
    """A charge as the processor keeps it on its side."""

    id: str
    amount: Money
    status: str  # requires_action | authorized | declined | captured | voided
    result: AuthorizationResult
    captured: int = 0
    refunded: int = 0


def _memory_book() -> ChargeBook:
    from payments.processor_store import MemoryChargeBook  # (it imports this module's types)

    return MemoryChargeBook()


@dataclass
class TestModeProcessor:
    """The processor of test mode: Stripe's test cards, with its state in a `ChargeBook` (in the
    app, tables of its own: see `processor_store`). A call on a charge it does not know, or that
    is in no state for it, is refused (`ProcessorRefusedError`), as a real processor answers.
    Knobs simulate trouble for tests and demos: `outage` fails every call before it acts,
    `lose_responses` acts and then fails (the response is lost on the way back), `latency`
    delays each call."""

    __test__ = False  # not a pytest test class, despite the name

    book: ChargeBook = field(default_factory=_memory_book)
    today: Callable[[], date] = field(default=lambda: datetime.now(UTC).date())
    outage: bool = False
    lose_responses: bool = False
    latency: float = 0.0
    calls: int = 0

    async def _enter(self) -> None:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.outage:
            raise ProcessorUnavailableError("test processor outage")

    def _leave(self, value: T) -> T:
        if self.lose_responses:
            raise ProcessorUnavailableError("test processor response lost")
        return value

    @staticmethod
    def _known(charge: Charge | None, charge_id: str) -> Charge:
        if charge is None:
            raise ProcessorRefusedError("resource_missing", f"No such charge: '{charge_id}'")
        return charge

    async def _operation(self, session: BookSession, charge_id: str, key: str) -> tuple[Charge, str | None]:
        """The charge (locked first, so a twin call waits, then replays) and the answer under `key`."""
        charge, done = await session.charge_and_answer(charge_id, key)
        return self._known(charge, charge_id), done

    async def authorizations(self) -> int:
        """Holds actually placed (for tests proving no double charge)."""
        async with self.book.session() as s:
            return await s.holds_placed()

    async def charge(self, charge_id: str) -> Charge | None:
        """The charge as the processor keeps it (for tests, as Stripe's charge retrieval)."""
        async with self.book.session() as s:
            return await s.charge(charge_id)

    async def list_charges(self) -> list[Charge]:
        """Every charge, oldest first (for tests, as Stripe's charge list)."""
        async with self.book.session() as s:
            return await s.all_charges()

    async def authorize(self, card: CardForProcessor, amount: Money, idempotency_key: str) -> AuthorizationResult:
        await self._enter()
        async with self.book.session() as s:  # a key seen before gets its charge back, not a new one
            known = await s.add_charge(self._new_charge(card, amount), idempotency_key)
        return self._leave(known.result)

    @staticmethod
    def _new_charge(card: CardForProcessor, amount: Money) -> Charge:
        outcome, code, decline_code, message = TEST_CARDS.get(card.number, (AUTHORIZED, None, None, ""))
        charge_id = new_id("ch")
        next_action = None
        if outcome == REQUIRES_ACTION:
            next_action = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect",
                                                                         "source": f"src_{charge_id[3:]}"}}
        result = AuthorizationResult(charge_id, outcome, amount, code, decline_code, message or None, next_action)
        status = {AUTHORIZED: "authorized", REQUIRES_ACTION: "requires_action"}.get(outcome, "declined")
        return Charge(charge_id, amount, status, result)

    async def complete_authentication(self, charge_id: str, succeeded: bool) -> AuthorizationResult:
        await self._enter()
        async with self.book.session() as s:
            charge = self._known(await s.charge(charge_id), charge_id)
            if charge.status == "requires_action":
                if succeeded:
                    charge.status = "authorized"
                    charge.result = replace(charge.result, outcome=AUTHORIZED, next_action=None)
                else:
                    charge.status = "declined"
                    code, decline_code, message = AUTHENTICATION_FAILED
                    charge.result = replace(charge.result, outcome=DECLINED, next_action=None, code=code,
                                            decline_code=decline_code, message=message)
                await s.save(charge)
        return self._leave(charge.result)

    async def retrieve(self, idempotency_key: str) -> AuthorizationResult | None:
        await self._enter()
        async with self.book.session() as s:
            known = await s.charge_by_key(idempotency_key)
        return self._leave(None if known is None else known.result)

    async def capture(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        await self._enter()
        async with self.book.session() as s:
            charge, done = await self._operation(s, charge_id, idempotency_key)
            if done is None:
                if charge.status != "authorized":
                    raise ProcessorRefusedError("charge_not_capturable",
                                                f"charge {charge_id} is {charge.status}, not authorized")
                if amount.amount > charge.amount.amount or amount.currency != charge.amount.currency:
                    raise ProcessorRefusedError("amount_too_large", f"cannot capture {amount} on {charge_id}")
                charge.status, charge.captured = "captured", amount.amount
                done = new_id("py")
                await s.save(charge, operation_key=idempotency_key, answer=done,
                             line=SettlementLine(done, "capture", amount, self.today()))
        return self._leave(done)

    async def void(self, charge_id: str, idempotency_key: str) -> None:
        await self._enter()
        async with self.book.session() as s:
            charge, done = await self._operation(s, charge_id, idempotency_key)
            if done is None:
                if charge.status in ("authorized", "requires_action"):
                    charge.status = "voided"
                await s.save(charge, operation_key=idempotency_key, answer=charge_id)
        return self._leave(None)

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        await self._enter()
        async with self.book.session() as s:
            charge, done = await self._operation(s, charge_id, idempotency_key)
            if done is None:
                if charge.status != "captured":
                    raise ProcessorRefusedError("charge_not_refundable",
                                                f"charge {charge_id} is {charge.status}, not captured")
                if charge.refunded + amount.amount > charge.captured:
                    raise ProcessorRefusedError("amount_too_large", f"cannot refund {amount} on {charge_id}")
                charge.refunded += amount.amount
                done = new_id("pyr")
                await s.save(charge, operation_key=idempotency_key, answer=done,
                             line=SettlementLine(done, "refund", amount, self.today()))
        return self._leave(done)

    async def settlement_report(self, day: date) -> list[SettlementLine]:
        await self._enter()
        async with self.book.session() as s:
            lines = await s.settlements(day)
        return self._leave(lines)


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` seconds one
    trial call is let through (half-open): success closes it, failure re-opens it."""

    def __init__(self, monotonic: Callable[[], float], threshold: int = 5, cooldown: float = 10.0) -> None:
        self._now = monotonic
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._now() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            self.opened_at = self._now()


class ResilientProcessor:
    """Wraps a processor: every call has a timeout; retryable failures are retried
    with exponential backoff and jitter; a circuit breaker stops calling a processor
    that keeps failing. Declines are answers, not failures, and are never retried."""

    def __init__(self, inner: Processor, breaker: CircuitBreaker, *, timeout: float = 5.0, retries: int = 2,
                 backoff: float = 0.05, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.inner = inner
        self.breaker = breaker
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if not self.breaker.allow():
                raise ProcessorUnavailableError("circuit open: the processor is failing")
            try:
                async with asyncio.timeout(self.timeout):
                    result = await fn()
            except ProcessorRefusedError:
                self.breaker.success()  # a refusal is an answer: the processor is up
                raise
            except (ProcessorUnavailableError, TimeoutError, OSError) as exc:
                self.breaker.failure()
                last = exc
                if attempt < self.retries:
                    await self._sleep(self.backoff * (2**attempt) * (1 + random.random()))
                continue
            self.breaker.success()
            return result
        raise ProcessorUnavailableError(f"processor failed after {self.retries + 1} attempts: {last}")

    async def authorize(self, card: CardForProcessor, amount: Money, idempotency_key: str) -> AuthorizationResult:
        return await self._call(lambda: self.inner.authorize(card, amount, idempotency_key))

    async def complete_authentication(self, charge_id: str, succeeded: bool) -> AuthorizationResult:
        return await self._call(lambda: self.inner.complete_authentication(charge_id, succeeded))

    async def retrieve(self, idempotency_key: str) -> AuthorizationResult | None:
        return await self._call(lambda: self.inner.retrieve(idempotency_key))

    async def capture(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        return await self._call(lambda: self.inner.capture(charge_id, amount, idempotency_key))

    async def void(self, charge_id: str, idempotency_key: str) -> None:
        return await self._call(lambda: self.inner.void(charge_id, idempotency_key))

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> str:
        return await self._call(lambda: self.inner.refund(charge_id, amount, idempotency_key))

    async def settlement_report(self, day: date) -> list[SettlementLine]:
        return await self._call(lambda: self.inner.settlement_report(day))
