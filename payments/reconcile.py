"""Reconciliation: match the processor's settlement report for a day against the
ledger's processor entries (captures +, refunds -) and list what disagrees:
`missing` (the ledger has it, the processor never settled it), `extra` (the
processor settled it, the ledger has no entry), `amount_differs`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from payments import ledger, store
from payments.processor import Processor, SettlementLine


def compare(ledger_rows: list[dict[str, Any]], lines: list[SettlementLine]) -> tuple[int, list[dict[str, Any]]]:
    """Pure: the matched count and the mismatches."""
    ours = {r["processor_ref"]: r for r in ledger_rows}
    theirs = {line.ref: line for line in lines}
    matched = 0
    mismatches: list[dict[str, Any]] = []
    for ref, row in sorted(ours.items()):
        kind = "capture" if row["amount"] > 0 else "refund"
        line = theirs.get(ref)
        if line is None:
            mismatches.append({"kind": "missing", "ref": ref, "type": kind, "ledger_amount": abs(row["amount"]),
                               "processor_amount": None, "currency": row["currency"], "entry_id": row["id"]})
        elif line.amount.amount != abs(row["amount"]) or line.amount.currency != row["currency"]:
            mismatches.append({"kind": "amount_differs", "ref": ref, "type": kind,
                               "ledger_amount": abs(row["amount"]), "processor_amount": line.amount.amount,
                               "currency": row["currency"], "entry_id": row["id"]})
        else:
            matched += 1
    for ref, line in sorted(theirs.items()):
        if ref not in ours:
            mismatches.append({"kind": "extra", "ref": ref, "type": line.type, "ledger_amount": None,
                               "processor_amount": line.amount.amount, "currency": line.amount.currency,
                               "entry_id": None})
    return matched, mismatches


async def reconcile(pool: asyncpg.Pool, processor: Processor, day: date) -> tuple[int, list[dict[str, Any]]]:
    lines = await processor.settlement_report(day)
    start = datetime.combine(day, time.min, tzinfo=UTC)
    async with pool.acquire() as conn:
        rows = [dict(r) for r in await ledger.processor_entries(conn, start, start + timedelta(days=1))]
        matched, mismatches = compare(rows, lines)
        await store.save_report(conn, day, matched, mismatches)
    return matched, mismatches


async def report(pool: asyncpg.Pool, day: date) -> tuple[int, list[dict[str, Any]]] | None:
    async with pool.acquire() as conn:
        return await store.get_report(conn, day)
