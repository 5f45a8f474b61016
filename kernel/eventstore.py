"""The PostgreSQL side of event delivery: the outbox's delivery state, the consumer groups that must see
each event, what each group processed, and the dead letters. All of the event bus's SQL is here; the
design is in `kernel.eventbus`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

import asyncpg
import msgspec

from kernel.fielddoc import doc
from kernel.ids import new_id
from kernel.outbox import Event


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event a consumer group could not handle: retried while `parked_at` is null, then parked."""

    id: Annotated[str, doc("The dead letter's id", "dlq_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    group: Annotated[str, doc("The consumer group that failed", "orders")]
    event_id: Annotated[str, doc("The event it could not handle", "evt_01JE3ZK4Q8N3W6V5T2R1P0M9XA")]
    event_type: Annotated[str, doc("The event's type", "order.placed")]
    error: Annotated[str, doc("The last error", "TimeoutError: statement timeout")]
    attempts: Annotated[int, doc("How many times it was tried", 5)]
    first_failed_at: Annotated[datetime, doc("The first failure (UTC)", "2026-12-07T18:00:00Z")]
    last_failed_at: Annotated[datetime, doc("The latest failure (UTC)", "2026-12-07T18:04:00Z")]
    parked_at: Annotated[datetime | None, doc("When it was given up on; null while still retried",
                                              "2026-12-07T18:04:00Z")]


# The groups that must see an event: registered for its stream, seen within the expiry, with a handler
# for its type. A group has it when it processed it or parked it as a dead letter.
_MISSING_GROUPS = """
    SELECT g.group_name FROM event_groups g
     WHERE g.stream = $1 AND g.seen_at > now() - $2::interval AND o.type = ANY (g.event_types)
       AND NOT EXISTS (SELECT 1 FROM processed_events p WHERE p.consumer = g.group_name AND p.event_id = o.event_id)
       AND NOT EXISTS (SELECT 1 FROM dead_letters d
                        WHERE d.group_name = g.group_name AND d.event_id = o.event_id AND d.parked_at IS NOT NULL)
"""


# -- consumer groups -------------------------------------------------------------------------------------

async def register_group(pool: asyncpg.Pool, stream: str, group: str, types: Sequence[str]) -> None:
    await pool.execute(
        "INSERT INTO event_groups (stream, group_name, event_types) VALUES ($1, $2, $3) "
        "ON CONFLICT (stream, group_name) DO UPDATE SET event_types = EXCLUDED.event_types, seen_at = now()",
        stream, group, sorted(types),
    )


# -- the relay ---------------------------------------------------------------------------------------------

async def claim_unpublished(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT seq, payload::text AS payload FROM outbox WHERE published_at IS NULL "
        "ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


async def claim_unsettled(conn: asyncpg.Connection, after_seq: int, up_to_seq: int, limit: int) -> list[asyncpg.Record]:
    """Every unsettled row in (after_seq, up_to_seq], waiting for rows another relay holds: a batch that
    relay is publishing now may have gone into the stream that was lost."""
    return await conn.fetch(
        "SELECT seq, payload::text AS payload FROM outbox WHERE settled_at IS NULL AND seq > $1 AND seq <= $2 "
        "ORDER BY seq LIMIT $3 FOR UPDATE",
        after_seq, up_to_seq, limit,
    )


async def claim_overdue(conn: asyncpg.Connection, stream: str, expiry: timedelta, older_than: timedelta,
                        after_seq: int, limit: int) -> list[asyncpg.Record]:
    """Unsettled rows published longer ago than `older_than`, each with the groups still missing it."""
    return await conn.fetch(
        f"""SELECT o.seq, o.payload::text AS payload, o.published_at, array({_MISSING_GROUPS}) AS missing
              FROM outbox o
             WHERE o.settled_at IS NULL AND o.published_at < now() - $3::interval AND o.seq > $4
             ORDER BY o.seq LIMIT $5 FOR UPDATE OF o SKIP LOCKED""",
        stream, expiry, older_than, after_seq, limit,
    )


async def mark_published(conn: asyncpg.Connection, seqs: list[int]) -> None:
    await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", seqs)


async def max_seq(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT coalesce(max(seq), 0) FROM outbox")


async def unpublished_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


async def settle(pool: asyncpg.Pool, stream: str, expiry: timedelta, after_seq: int,
                 limit: int) -> tuple[int, int] | None:
    """Mark settled the published rows after `after_seq` (up to `limit` of them) that every group has.
    Returns (rows settled, the last seq looked at, or 0 when the end was reached). One process at a
    time: None when another is settling."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('outbox-settle:' || $1))", stream):
            return None
        row = await conn.fetchrow(
            f"""WITH c AS (SELECT seq FROM outbox WHERE settled_at IS NULL AND published_at IS NOT NULL AND seq > $3
                            ORDER BY seq LIMIT $4),
                     s AS (UPDATE outbox o SET settled_at = now() FROM c
                            WHERE o.seq = c.seq AND NOT EXISTS ({_MISSING_GROUPS}) RETURNING o.seq)
                SELECT (SELECT count(*) FROM s) AS settled, (SELECT max(seq) FROM c) AS last,
                       (SELECT count(*) FROM c) AS looked""",
            stream, expiry, after_seq, limit,
        )
    return row["settled"], (row["last"] if row["looked"] >= limit else 0)


async def prune(pool: asyncpg.Pool, stream: str, retention: timedelta, *, chunk: int = 2000,
                max_chunks: int = 50) -> int:
    """Delete outbox rows settled longer than `retention` ago, with the groups' processed-event records
    of them, oldest first; and failure records that no longer matter. Rows a dead letter names stay (a
    replay needs every other group's record that it processed them). Returns the outbox rows deleted."""
    deleted = 0
    async with pool.acquire() as conn:
        lo = await conn.fetchval("SELECT min(seq) FROM outbox")
        for _ in range(max_chunks if lo is not None else 0):
            row = await conn.fetchrow(
                """WITH gone AS (DELETE FROM outbox o WHERE seq >= $1 AND seq < $1 + $2
                                    AND settled_at < now() - $3::interval
                                    AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = o.event_id)
                                  RETURNING event_id),
                        p AS (DELETE FROM processed_events pe USING gone, event_groups g
                               WHERE g.stream = $4 AND pe.consumer = g.group_name AND pe.event_id = gone.event_id
                               RETURNING 1)
                   SELECT (SELECT count(*) FROM gone) AS gone, (SELECT count(*) FROM p) AS processed,
                          EXISTS (SELECT 1 FROM outbox WHERE seq >= $1 + $2) AS more,
                          EXISTS (SELECT 1 FROM outbox WHERE seq >= $1 AND seq < $1 + $2
                                    AND occurred_at > now() - $3::interval) AS reached""",
                lo, chunk, retention, stream,
            )
            deleted += row["gone"]
            if row["reached"] or not row["more"]:
                break
            lo += chunk
        await conn.execute(
            """DELETE FROM dead_letters d WHERE d.parked_at IS NULL
                 AND (d.last_failed_at < now() - $1::interval
                      OR EXISTS (SELECT 1 FROM processed_events p WHERE p.consumer = d.group_name
                                    AND p.event_id = d.event_id))""",
            retention,
        )
    return deleted


async def group_lags(pool: asyncpg.Pool, stream: str, expiry: timedelta, cap: int = 100_000) -> dict[str, int]:
    """Per group: events it must see and has not processed (or parked) yet, counted up to `cap`."""
    rows = await pool.fetch(
        """SELECT g.group_name,
                  (SELECT count(*) FROM (
                       SELECT 1 FROM outbox o
                        WHERE o.settled_at IS NULL AND o.type = ANY (g.event_types)
                          AND NOT EXISTS (SELECT 1 FROM processed_events p
                                           WHERE p.consumer = g.group_name AND p.event_id = o.event_id)
                          AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.group_name = g.group_name
                                             AND d.event_id = o.event_id AND d.parked_at IS NOT NULL)
                        LIMIT $3) x) AS lag
             FROM event_groups g WHERE g.stream = $1 AND g.seen_at > now() - $2::interval""",
        stream, expiry, cap,
    )
    return {r["group_name"]: r["lag"] for r in rows}


async def parked_counts(pool: asyncpg.Pool, stream: str) -> dict[str, int]:
    """Parked dead letters per group, with 0 for the stream's other groups."""
    rows = await pool.fetch(
        """SELECT g.group_name, (SELECT count(*) FROM dead_letters d
                                  WHERE d.group_name = g.group_name AND d.parked_at IS NOT NULL) AS parked
             FROM event_groups g WHERE g.stream = $1""",
        stream,
    )
    return {r["group_name"]: r["parked"] for r in rows}


# -- consumers -------------------------------------------------------------------------------------------

async def record_processed(conn: asyncpg.Connection, group: str, event_id: str) -> bool:
    """In the handler's transaction: True the first time this group sees this event."""
    return bool(await conn.fetchval(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        group, event_id,
    ))


async def processed_among(conn: asyncpg.Connection, group: str, event_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT event_id FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::text[])", group, event_ids
    )
    return {r["event_id"] for r in rows}


async def record_failure(conn: asyncpg.Connection, group: str, event: Event, payload: str, error: str,
                         max_attempts: int) -> tuple[int, bool]:
    """Count one failed attempt; parks the event at `max_attempts`. Returns (attempts, parked)."""
    row = await conn.fetchrow(
        """INSERT INTO dead_letters AS d (id, group_name, event_id, event_type, payload, error, attempts, parked_at)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, 1, CASE WHEN $7 <= 1 THEN now() END)
           ON CONFLICT (group_name, event_id) DO UPDATE
              SET attempts = d.attempts + 1, error = EXCLUDED.error, last_failed_at = now(),
                  parked_at = coalesce(d.parked_at, CASE WHEN d.attempts + 1 >= $7 THEN now() END)
           RETURNING attempts, parked_at IS NOT NULL AS parked""",
        new_id("dlq"), group, event.id, event.type, payload, error[:2000], max_attempts,
    )
    return row["attempts"], row["parked"]


async def clear_failure(conn: asyncpg.Connection, group: str, event_id: str) -> None:
    """A retried event succeeded: its failure record goes (in the handler's transaction)."""
    await conn.execute("DELETE FROM dead_letters WHERE group_name = $1 AND event_id = $2 AND parked_at IS NULL",
                       group, event_id)


# -- operators ---------------------------------------------------------------------------------------------

_DEAD_LETTER_COLUMNS = ("id, group_name AS group, event_id, event_type, error, attempts, first_failed_at, "
                        "last_failed_at, parked_at")


async def dead_letters(pool: asyncpg.Pool, *, group: str | None = None, parked: bool = True,
                       after: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """Dead letters by id (oldest first): the parked ones, or those still being retried."""
    rows = await pool.fetch(
        f"""SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters
             WHERE (parked_at IS NOT NULL) = $1 AND ($2::text IS NULL OR group_name = $2)
               AND ($3::text IS NULL OR id > $3)
             ORDER BY id LIMIT $4""",
        parked, group, after, limit,
    )
    return [DeadLetter(**dict(r)) for r in rows]


async def replay(pool: asyncpg.Pool, dead_letter_id: str) -> DeadLetter | None:
    """Put a parked event back in the outbox, unpublished, so the relay publishes it again (every group
    gets it; those that processed it skip it). The dead letter goes; a new failure makes a new one.
    None when there is no such parked dead letter."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"DELETE FROM dead_letters WHERE id = $1 AND parked_at IS NOT NULL "
            f"RETURNING {_DEAD_LETTER_COLUMNS}, payload::text AS payload",
            dead_letter_id,
        )
        if row is None:
            return None
        found = await conn.fetchval(
            "UPDATE outbox SET published_at = NULL, settled_at = NULL WHERE event_id = $1 RETURNING true",
            row["event_id"],
        )
        if not found:  # deleted by hand (prune keeps what a dead letter names): the dead letter kept it
            await conn.execute(
                """INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload)
                   SELECT p->>'id', p->>'type', p->>'aggregate_id', (p->>'occurred_at')::timestamptz, p
                     FROM (SELECT $1::jsonb AS p) x""",
                row["payload"],
            )
    values = dict(row)
    values.pop("payload")
    return DeadLetter(**values)
