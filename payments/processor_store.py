"""Where the test-mode processor keeps its state: its charges, its answers by idempotency key and
its settlement lines.

The test-mode processor stands in for an external system (Stripe's side of a charge). A real
processor's records outlive our process, so the app keeps the test processor's in tables of
their own (`PostgresChargeBook`, payments migration 0005): after a restart, or in another app
process, a charge authorized before is still there to capture, void or refund, and a retried
call with the same idempotency key still gets the first answer. Those tables are the
processor's, not ours: only this module reads or writes them, nothing in payments joins them,
and deleting their rows models a processor that does not know a charge. The SQL lives here,
not in `store.py`, for that reason. It uses a connection pool of its own (the composition root
gives it one), as a real processor is reached over its own connections: a payments call that
holds one of the app's connections while it waits for the processor never waits for a second.
`MemoryChargeBook` keeps the same state in memory, for unit tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import asyncpg
import msgspec

from kernel.money import Money
from payments.processor import AuthorizationResult, Charge, ProcessorUnavailableError, SettlementLine


class ChargeBook(Protocol):
    """Where the test-mode processor keeps its charges, its answers by idempotency key and its
    settlement lines. `session()` opens one unit of work: a charge read in it stays locked until it
    ends, so two calls on one charge (from two app processes, say) serialize as at a real processor.
    `MemoryChargeBook` serves unit tests; the app uses `PostgresChargeBook`, which keeps them in
    tables of their own, so a restart of our process forgets nothing, as a real processor, whose
    state outlives us, forgets nothing."""

    def session(self) -> AbstractAsyncContextManager[BookSession]: ...


class BookSession(Protocol):
    async def charge(self, charge_id: str) -> Charge | None:
        """The charge, locked until the session ends."""
        ...

    async def charge_and_answer(self, charge_id: str, operation_key: str) -> tuple[Charge | None, str | None]:
        """The charge, locked until the session ends, and what an operation on it (a capture, refund or
        void) under `operation_key` answered before, if one did."""
        ...

    async def charge_by_key(self, idempotency_key: str) -> Charge | None: ...

    async def add_charge(self, charge: Charge, idempotency_key: str) -> Charge:
        """Store a new charge under its authorization's key, unless the key names one already
        (a retry, or a concurrent twin that got there first): the charge stored under the key."""
        ...

    async def save(self, charge: Charge, *, operation_key: str | None = None, answer: str | None = None,
                   line: SettlementLine | None = None) -> None:
        """Store the charge's new state with, when an operation changed it, that operation's answer
        under its key and the settlement line it makes: one write."""
        ...

    async def settlements(self, day: date) -> list[SettlementLine]: ...

    async def holds_placed(self) -> int: ...

    async def all_charges(self) -> list[Charge]: ...


@dataclass
class MemoryChargeBook:
    """A charge book in this process's memory, for unit tests; one session at a time."""

    charges: dict[str, Charge] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    operations: dict[str, str] = field(default_factory=dict)
    lines: list[SettlementLine] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MemoryChargeBook]:
        async with self._lock:
            yield self

    async def charge(self, charge_id: str) -> Charge | None:
        return self.charges.get(charge_id)

    async def charge_and_answer(self, charge_id: str, operation_key: str) -> tuple[Charge | None, str | None]:
        return self.charges.get(charge_id), self.operations.get(operation_key)

    async def charge_by_key(self, idempotency_key: str) -> Charge | None:
        known = self.by_key.get(idempotency_key)
        return None if known is None else self.charges[known]

    async def add_charge(self, charge: Charge, idempotency_key: str) -> Charge:
        known = self.by_key.setdefault(idempotency_key, charge.id)
        return self.charges.setdefault(known, charge)

    async def save(self, charge: Charge, *, operation_key: str | None = None, answer: str | None = None,
                   line: SettlementLine | None = None) -> None:
        self.charges[charge.id] = charge
        if operation_key is not None and answer is not None:
            self.operations[operation_key] = answer
        if line is not None:
            self.lines.append(line)

    async def settlements(self, day: date) -> list[SettlementLine]:
        return [line for line in self.lines if line.day == day]

    async def holds_placed(self) -> int:
        return sum(1 for c in self.charges.values() if c.status in ("authorized", "captured", "voided"))

    async def all_charges(self) -> list[Charge]:
        return list(self.charges.values())


_json = msgspec.json.Encoder()


def _result_json(result: AuthorizationResult) -> str:
    return _json.encode({"outcome": result.outcome, "code": result.code, "decline_code": result.decline_code,
                         "message": result.message, "next_action": result.next_action}).decode()


def _charge(row: asyncpg.Record | None) -> Charge | None:
    if row is None:
        return None
    amount = Money(row["amount"], row["currency"])
    r: dict[str, Any] = msgspec.json.decode(row["result"])
    result = AuthorizationResult(row["id"], r["outcome"], amount, r.get("code"), r.get("decline_code"),
                                 r.get("message"), r.get("next_action"))
    return Charge(row["id"], amount, row["status"], result, row["captured"], row["refunded"])


_COLUMNS = "id, amount, currency, status, result::text AS result, captured, refunded"


class PostgresChargeBook:
    """The test processor's records in its own tables (see the module's docstring), on its own pool.
    A database that cannot be reached is a processor that cannot be: `ProcessorUnavailableError`."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def session(self) -> AsyncIterator[BookSession]:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield _PostgresSession(conn)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.exceptions.CannotConnectNowError) as exc:
            raise ProcessorUnavailableError(f"test processor store unreachable: {exc}") from exc


class _PostgresSession:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def charge(self, charge_id: str) -> Charge | None:
        return _charge(await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM test_processor_charges WHERE id = $1 FOR UPDATE", charge_id))

    async def charge_and_answer(self, charge_id: str, operation_key: str) -> tuple[Charge | None, str | None]:
        charge = await self.charge(charge_id)
        if charge is None:
            return None, None
        # Read after the lock is granted, in a statement of its own: its snapshot then sees what a twin
        # call that held the lock wrote (one statement's snapshot would predate the wait).
        answer: str | None = await self.conn.fetchval(
            "SELECT answer FROM test_processor_operations WHERE idempotency_key = $1", operation_key)
        return charge, answer

    async def charge_by_key(self, idempotency_key: str) -> Charge | None:
        return _charge(await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM test_processor_charges WHERE idempotency_key = $1", idempotency_key))

    async def add_charge(self, charge: Charge, idempotency_key: str) -> Charge:
        row = await self.conn.fetchrow(
            f"""INSERT INTO test_processor_charges (id, idempotency_key, amount, currency, status, result)
                VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING {_COLUMNS}""",
            charge.id, idempotency_key, charge.amount.amount, charge.amount.currency, charge.status,
            _result_json(charge.result))
        if row is None:  # the key names a charge already (a retry, or a twin that stored its charge first)
            row = await self.conn.fetchrow(
                f"SELECT {_COLUMNS} FROM test_processor_charges WHERE idempotency_key = $1", idempotency_key)
        found = _charge(row)
        assert found is not None
        return found

    async def save(self, charge: Charge, *, operation_key: str | None = None, answer: str | None = None,
                   line: SettlementLine | None = None) -> None:
        await self.conn.execute(
            """WITH c AS (UPDATE test_processor_charges SET status = $2, result = $3::jsonb, captured = $4,
                                 refunded = $5 WHERE id = $1),
                    o AS (INSERT INTO test_processor_operations (idempotency_key, charge_id, answer)
                          SELECT $6, $1, $7 WHERE $6::text IS NOT NULL)
               INSERT INTO test_processor_settlements (ref, type, amount, currency, day)
               SELECT $7, $8, $9, $10, $11 WHERE $8::text IS NOT NULL""",
            charge.id, charge.status, _result_json(charge.result), charge.captured, charge.refunded,
            operation_key, answer, line.type if line else None, line.amount.amount if line else None,
            line.amount.currency if line else None, line.day if line else None)

    async def settlements(self, day: date) -> list[SettlementLine]:
        rows = await self.conn.fetch(
            "SELECT ref, type, amount, currency, day FROM test_processor_settlements WHERE day = $1 ORDER BY seq",
            day)
        return [SettlementLine(r["ref"], r["type"], Money(r["amount"], r["currency"]), r["day"]) for r in rows]

    async def holds_placed(self) -> int:
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM test_processor_charges WHERE status IN ('authorized', 'captured', 'voided')")
        return count

    async def all_charges(self) -> list[Charge]:
        rows = await self.conn.fetch(f"SELECT {_COLUMNS} FROM test_processor_charges ORDER BY created_at, id")
        return [c for c in map(_charge, rows) if c is not None]
