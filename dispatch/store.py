"""The Postgres adapter of dispatch: the pool of dispatchable orders (a projection of order.*
events), offers and their outcomes, the fencing token as last written, and per-store prep lateness.

Every function takes the caller's connection: the consumer's handlers run in its transaction
(deduplicated by event id), a round writes its offers and their events in one transaction.
Concurrency is in SQL: rows are locked (`FOR UPDATE`), state changes are conditional on the
state they leave (`WHERE status = 'pending'`), and a partial unique index keeps one pending offer
per courier.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from dispatch.event_types import DispatchOffered
from kernel.outbox import Event, MoneyData, write_events
from orders.event_types import OrderAccepted, OrderCourierAssigned, OrderPlaced


@dataclass(frozen=True, slots=True)
class NewOffer:
    offer_id: str
    courier_id: str
    order_ids: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    payout_amount: int
    currency: str
    finish_at: datetime
    finish_lat: float
    finish_lng: float
    frame: bytes  # the encoded offer frame


# -- the pool: order.* events -----------------------------------------------------------------


async def record_placed(conn: asyncpg.Connection, placed: OrderPlaced, region: str) -> None:
    """A placed order is known but not dispatchable until the restaurant accepts it."""
    await conn.execute(
        """INSERT INTO dispatch_orders (order_id, region, store_id, pickup_lat, pickup_lng, dropoff_lat,
               dropoff_lng, currency, placed_at, promised_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'placed') ON CONFLICT (order_id) DO NOTHING""",
        placed.order_id, placed.region or region, placed.store_id, placed.pickup.lat, placed.pickup.lng,
        placed.dropoff.lat, placed.dropoff.lng, placed.total.currency, placed.placed_at, placed.promised_at,
    )


async def record_accepted(conn: asyncpg.Connection, accepted: OrderAccepted, region: str, at: datetime) -> None:
    """The restaurant accepted: the order enters the pool (once; a late `order.placed` is ignored)."""
    await conn.execute(
        """INSERT INTO dispatch_orders AS d (order_id, region, store_id, pickup_lat, pickup_lng, dropoff_lat,
               dropoff_lng, placed_at, accepted_at, stated_ready_at, promised_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'open')
           ON CONFLICT (order_id) DO UPDATE SET status = 'open', accepted_at = EXCLUDED.accepted_at,
               stated_ready_at = EXCLUDED.stated_ready_at, promised_at = EXCLUDED.promised_at,
               region = EXCLUDED.region, updated_at = now()
           WHERE d.status = 'placed'""",
        accepted.order_id, accepted.region or region, accepted.store_id, accepted.pickup.lat, accepted.pickup.lng,
        accepted.dropoff.lat, accepted.dropoff.lng, accepted.placed_at, at, accepted.ready_at, accepted.promised_at,
    )


async def restate_ready(conn: asyncpg.Connection, order_id: str, ready_at: datetime) -> None:
    await conn.execute(
        "UPDATE dispatch_orders SET stated_ready_at = $2, updated_at = now() "
        "WHERE order_id = $1 AND ready_at IS NULL", order_id, ready_at,
    )


async def mark_ready(conn: asyncpg.Connection, order_id: str, ready_at: datetime,
                     alpha: float) -> float | None:
    """Record that the food is ready and learn the store's lateness from it (once per order).
    Returns the lateness learned (actual - stated, seconds), or None."""
    row = await conn.fetchrow(
        """UPDATE dispatch_orders o SET ready_at = $2, updated_at = now()
           FROM (SELECT order_id, ready_at AS was FROM dispatch_orders WHERE order_id = $1 FOR UPDATE) old
           WHERE o.order_id = old.order_id
           RETURNING o.store_id, o.stated_ready_at, old.was""", order_id, ready_at,
    )
    if row is None or row["was"] is not None or row["stated_ready_at"] is None:
        return None
    lateness = (ready_at - row["stated_ready_at"]).total_seconds()
    await conn.execute(
        """INSERT INTO dispatch_store_prep AS p (store_id, lateness_s, samples) VALUES ($1, $2, 1)
           ON CONFLICT (store_id) DO UPDATE
           SET lateness_s = (1 - $3) * p.lateness_s + $3 * EXCLUDED.lateness_s, samples = p.samples + 1""",
        row["store_id"], lateness, alpha,
    )
    return lateness


async def prep_lateness(conn: asyncpg.Connection, store_ids: Sequence[str]) -> dict[str, float]:
    rows = await conn.fetch("SELECT store_id, lateness_s FROM dispatch_store_prep WHERE store_id = ANY($1)",
                            list(store_ids))
    return {r["store_id"]: r["lateness_s"] for r in rows}


async def set_order_status(conn: asyncpg.Connection, order_id: str, status: str) -> asyncpg.Record | None:
    """Move an order to `status`; returns its row as it was before (None if unknown)."""
    return await conn.fetchrow(
        """UPDATE dispatch_orders o SET status = $2, updated_at = now()
           FROM (SELECT order_id, status, offer_id, courier_id FROM dispatch_orders
                 WHERE order_id = $1 FOR UPDATE) old
           WHERE o.order_id = old.order_id
           RETURNING old.status, old.offer_id, old.courier_id""", order_id, status,
    )


async def open_orders(conn: asyncpg.Connection, region: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT order_id, store_id, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, currency, placed_at,
                  accepted_at, stated_ready_at, ready_at, promised_at, excluded
           FROM dispatch_orders WHERE region = $1 AND status = 'open' ORDER BY promised_at, order_id""",
        region,
    )


async def reopen(conn: asyncpg.Connection, order_ids: Sequence[str], exclude: str | None) -> list[str]:
    """Put orders back in the pool (only those still offered or assigned), excluding a courier."""
    rows = await conn.fetch(
        """UPDATE dispatch_orders SET status = 'open', offer_id = NULL, courier_id = NULL, updated_at = now(),
               excluded = CASE WHEN $2::text IS NULL OR $2 = ANY(excluded) THEN excluded
                               ELSE array_append(excluded, $2) END
           WHERE order_id = ANY($1) AND status IN ('offered', 'assigned') RETURNING order_id""",
        list(order_ids), exclude,
    )
    return [r["order_id"] for r in rows]


async def hand_over(conn: asyncpg.Connection, assigned: OrderCourierAssigned, region: str) -> asyncpg.Record | None:
    """An operator gave the order to a courier by hand (`order.courier_assigned`): it leaves the pool for good,
    `assigned` to that courier with no offer (or still in the accepted offer that courier holds it by). An
    order not heard of yet is recorded from the event. Returns the row as it was (`status, offer_id,
    courier_id`); None for an order past pickup or ended (the event is older than that: nothing changes)."""
    order_id, courier_id = assigned.order_id, assigned.courier_id
    await conn.execute(
        """INSERT INTO dispatch_orders (order_id, region, store_id, pickup_lat, pickup_lng, dropoff_lat,
               dropoff_lng, placed_at, promised_at, status)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'placed') ON CONFLICT (order_id) DO NOTHING""",
        order_id, assigned.region or region, assigned.store_id, assigned.pickup.lat, assigned.pickup.lng,
        assigned.dropoff.lat, assigned.dropoff.lng, assigned.placed_at, assigned.promised_at,
    )
    before = await conn.fetchrow(
        "SELECT status, offer_id, courier_id FROM dispatch_orders WHERE order_id = $1 FOR UPDATE", order_id)
    if before is None or before["status"] not in ("placed", "open", "offered", "assigned"):
        return None
    await conn.execute(
        """UPDATE dispatch_orders SET status = 'assigned', courier_id = $2, updated_at = now(),
               offer_id = CASE WHEN status = 'assigned' AND courier_id = $2 THEN offer_id END
           WHERE order_id = $1""", order_id, courier_id,
    )
    return before


async def held_by_hand(conn: asyncpg.Connection, courier_id: str) -> list[str]:
    """The orders an operator gave the courier by hand (assigned, by no offer) it has not picked up yet."""
    rows = await conn.fetch(
        "SELECT order_id FROM dispatch_orders WHERE courier_id = $1 AND status = 'assigned' AND offer_id IS NULL "
        "ORDER BY order_id FOR UPDATE", courier_id,
    )
    return [r["order_id"] for r in rows]


# -- offers -----------------------------------------------------------------------------------


async def last_fence(conn: asyncpg.Connection, region: str) -> int:
    """The newest fencing token that wrote offers for the region (0: none yet)."""
    return await conn.fetchval("SELECT fence FROM dispatch_fences WHERE region = $1", region) or 0


async def write_offers(conn: asyncpg.Connection, region: str, fence: int, offers: Sequence[NewOffer],
                       events: Sequence[Event]) -> list[str] | None:
    """Record offers whose orders are all still open, and their `dispatch.offered` events (one per
    offer, same order as `offers`). Returns the ids written; None if a newer fencing token has
    written for the region (this process lost its lease: nothing is written)."""
    fenced = await conn.fetchval(
        """INSERT INTO dispatch_fences AS f (region, fence) VALUES ($1, $2)
           ON CONFLICT (region) DO UPDATE SET fence = EXCLUDED.fence WHERE f.fence <= EXCLUDED.fence
           RETURNING fence""", region, fence,
    )
    if fenced is None:
        return None
    all_ids = [oid for o in offers for oid in o.order_ids]
    open_ids = {r["order_id"] for r in await conn.fetch(
        "SELECT order_id FROM dispatch_orders WHERE order_id = ANY($1) AND status = 'open' FOR UPDATE",
        all_ids)}
    keep = [o for o in offers if all(oid in open_ids for oid in o.order_ids)]
    if not keep:
        return []
    inserted = {r["offer_id"] for r in await conn.fetch(
        _INSERT_OFFERS,
        [o.offer_id for o in keep], [o.courier_id for o in keep],
        [json.dumps(list(o.order_ids)) for o in keep], fence, [o.created_at for o in keep],
        [o.expires_at for o in keep], [o.payout_amount for o in keep], [o.currency for o in keep],
        [o.finish_at for o in keep], [o.finish_lat for o in keep], [o.finish_lng for o in keep],
        [o.frame.decode() for o in keep], region,
    )}
    written = [o for o in keep if o.offer_id in inserted]
    if written:
        await conn.execute(
            """UPDATE dispatch_orders d SET status = 'offered', offer_id = u.offer_id, courier_id = u.courier_id,
                   updated_at = now()
               FROM unnest($1::text[], $2::text[], $3::text[]) AS u(order_id, offer_id, courier_id)
               WHERE d.order_id = u.order_id""",
            [oid for o in written for oid in o.order_ids],
            [o.offer_id for o in written for _ in o.order_ids],
            [o.courier_id for o in written for _ in o.order_ids],
        )
        by_offer = {e.aggregate_id: e for e in events}
        await write_events(conn, [by_offer[o.offer_id] for o in written if o.offer_id in by_offer])
    return [o.offer_id for o in written]


_INSERT_OFFERS = (
    "INSERT INTO dispatch_offers (offer_id, region, courier_id, order_ids, status, fence, created_at, expires_at, "
    "payout_amount, currency, finish_at, finish_lat, finish_lng, frame) "
    "SELECT u.offer_id, $13, u.courier_id, ARRAY(SELECT json_array_elements_text(u.orders::json)), 'pending', $4, "
    "u.created_at, u.expires_at, u.payout, u.currency, u.finish_at, u.flat, u.flng, u.frame::jsonb "
    "FROM unnest($1::text[], $2::text[], $3::text[], $5::timestamptz[], $6::timestamptz[], $7::bigint[], "
    "$8::text[], $9::timestamptz[], $10::float8[], $11::float8[], $12::text[]) "
    "AS u(offer_id, courier_id, orders, created_at, expires_at, payout, currency, finish_at, flat, flng, frame) "
    "ON CONFLICT DO NOTHING RETURNING offer_id"
)


@dataclass(frozen=True, slots=True)
class OfferRow:
    offer_id: str
    region: str
    courier_id: str
    order_ids: tuple[str, ...]
    status: str
    expires_at: datetime
    finish_at: datetime
    finish_lat: float
    finish_lng: float
    payout_amount: int
    currency: str


_OFFER_COLS = ("offer_id, region, courier_id, order_ids, status, expires_at, finish_at, finish_lat, finish_lng, "
               "payout_amount, currency")


def _offer(row: asyncpg.Record) -> OfferRow:
    return OfferRow(row["offer_id"], row["region"], row["courier_id"], tuple(row["order_ids"]), row["status"],
                    row["expires_at"], row["finish_at"], row["finish_lat"], row["finish_lng"],
                    row["payout_amount"], row["currency"])


async def offer_for_update(conn: asyncpg.Connection, offer_id: str) -> OfferRow | None:
    row = await conn.fetchrow(f"SELECT {_OFFER_COLS} FROM dispatch_offers WHERE offer_id = $1 FOR UPDATE",
                              offer_id)
    return _offer(row) if row else None


async def set_offer_status(conn: asyncpg.Connection, offer_id: str, status: str, at: datetime,
                           *, only_from: str) -> bool:
    done = await conn.fetchval(
        "UPDATE dispatch_offers SET status = $2, responded_at = coalesce(responded_at, $3) "
        "WHERE offer_id = $1 AND status = $4 RETURNING true", offer_id, status, at, only_from,
    )
    return bool(done)


async def assign_orders(conn: asyncpg.Connection, offer: OfferRow) -> None:
    await conn.execute(
        "UPDATE dispatch_orders SET status = 'assigned', updated_at = now() "
        "WHERE order_id = ANY($1) AND offer_id = $2 AND status = 'offered'", list(offer.order_ids), offer.offer_id,
    )


async def lapsed_offers(conn: asyncpg.Connection, region: str, now: datetime) -> list[OfferRow]:
    """Pending offers past their expiry, locked (another process sweeping skips them)."""
    rows = await conn.fetch(
        f"""SELECT {_OFFER_COLS} FROM dispatch_offers WHERE region = $1 AND status = 'pending' AND expires_at < $2
            ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED""", region, now,
    )
    return [_offer(r) for r in rows]


async def courier_offers(conn: asyncpg.Connection, courier_id: str) -> list[OfferRow]:
    rows = await conn.fetch(
        f"SELECT {_OFFER_COLS} FROM dispatch_offers WHERE courier_id = $1 AND status IN ('pending', 'accepted') "
        "FOR UPDATE", courier_id,
    )
    return [_offer(r) for r in rows]


async def offer_orders(conn: asyncpg.Connection, offer_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT order_id, status FROM dispatch_orders WHERE offer_id = $1 ORDER BY order_id", offer_id,
    )


async def live_offers(conn: asyncpg.Connection, region: str) -> list[OfferRow]:
    rows = await conn.fetch(
        f"SELECT {_OFFER_COLS} FROM dispatch_offers WHERE region = $1 AND status IN ('pending', 'accepted') "
        "ORDER BY created_at", region,
    )
    return [_offer(r) for r in rows]


async def pool_orders(conn: asyncpg.Connection, region: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT order_id, store_id, status, pickup_lat, pickup_lng, dropoff_lat, dropoff_lng, placed_at,
                  coalesce(ready_at, stated_ready_at) AS ready_at, promised_at, excluded, offer_id, courier_id
           FROM dispatch_orders WHERE region = $1 AND status IN ('open', 'offered', 'assigned')
           ORDER BY promised_at, order_id LIMIT 5000""", region,
    )


def offered_event(offer: NewOffer) -> Event:
    return DispatchOffered(
        offer_id=offer.offer_id, courier_id=offer.courier_id, order_ids=offer.order_ids, expires_at=offer.expires_at,
        payout=MoneyData(offer.payout_amount, offer.currency),
    ).event(offer.offer_id)


# -- learned travel speeds (geo.speeds) -------------------------------------------------------


async def load_speed_cells(conn: asyncpg.Connection, region: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT cell, hour, observed_s, nominal_s, samples, extract(epoch FROM updated_at) AS updated_at "
        "FROM dispatch_speed_cells WHERE region = $1", region,
    )


async def save_speed_cells(conn: asyncpg.Connection, region: str,
                           rows: Sequence[tuple[str, int, float, float, int, float]]) -> None:
    """Upsert (cell, hour, observed_s, nominal_s, samples, updated_at epoch s) rows in one statement.
    The rows are the learner's current sums, so the last writer's values win."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO dispatch_speed_cells (region, cell, hour, observed_s, nominal_s, samples, updated_at)
           SELECT $1, u.cell, u.hour, u.observed_s, u.nominal_s, u.samples, to_timestamp(u.updated_at)
           FROM unnest($2::text[], $3::smallint[], $4::float8[], $5::float8[], $6::bigint[], $7::float8[])
                AS u(cell, hour, observed_s, nominal_s, samples, updated_at)
           ON CONFLICT (region, cell, hour) DO UPDATE SET observed_s = EXCLUDED.observed_s,
               nominal_s = EXCLUDED.nominal_s, samples = EXCLUDED.samples, updated_at = EXCLUDED.updated_at""",
        region, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [r[4] for r in rows], [r[5] for r in rows],
    )
