"""Dispatch's part of a person's privacy rights (docs/PRIVACY.md), the package's narrow public interface for
them: `export_person` (the offers a courier was made and what became of them) and `erase_orders` (an erased
customer's drop-offs, in dispatch's projection of the orders, rounded). Dispatch never learns who a
customer is: the composition root hands it the erased customer's order ids, which orders returned."""

from __future__ import annotations

from typing import Any

import asyncpg

from kernel.http import COURIER, Principal

ROUND_TO = 2  # as orders and tracking: about a kilometre


async def export_person(conn: asyncpg.Connection, person: Principal) -> dict[str, Any]:
    if person.role != COURIER:
        return {}
    offers = await conn.fetch(
        "SELECT offer_id, region, order_ids, status, created_at, expires_at, responded_at, payout_amount, currency, "
        "finish_at FROM dispatch_offers WHERE courier_id = $1 ORDER BY created_at, offer_id", person.account_id)
    return {"offers": [dict(r) for r in offers]}


async def erase_orders(conn: asyncpg.Connection, order_ids: list[str]) -> int:
    done = await conn.execute(
        "UPDATE dispatch_orders SET dropoff_lat = round(dropoff_lat::numeric, $2)::double precision, "
        "dropoff_lng = round(dropoff_lng::numeric, $2)::double precision WHERE order_id = ANY($1::text[])",
        order_ids, ROUND_TO)
    return int(done.split()[-1])
