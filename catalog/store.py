"""The catalog's Postgres adapter: every SQL statement of the package, plain asyncpg.

Functions take a connection so the service decides the transaction (orders passes its own)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

STORE_COLUMNS = (
    "id, tenant_id, name, lat, lng, timezone, currency, tax_rate_bps, tax_inclusive, prep_time_default_s, "
    "accept_window_s, status, paused_until, region, hours, zones, zone_version, max_delivery_m, fee_bands, "
    "menu_version, version, created_at, updated_at"
)
_JSON_COLUMNS = ("hours", "zones", "fee_bands")


def _store(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in _JSON_COLUMNS:
        if key in out and isinstance(out[key], str):
            out[key] = json.loads(out[key])
    return out


# ---- tenants -------------------------------------------------------------------------------------

async def insert_tenant(conn: asyncpg.Connection, tenant_id: str, name: str, by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO catalog_tenants (id, name, created_by) VALUES ($1, $2, $3) RETURNING id, name, created_at",
        tenant_id, name, by,
    )


async def get_tenant(conn: asyncpg.Connection, tenant_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, name, created_at FROM catalog_tenants WHERE id = $1", tenant_id)


# ---- stores --------------------------------------------------------------------------------------

async def insert_store(conn: asyncpg.Connection, values: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO catalog_stores (id, tenant_id, name, lat, lng, timezone, currency, tax_rate_bps,
               tax_inclusive, prep_time_default_s, accept_window_s, region)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {STORE_COLUMNS}""",
        values["id"], values["tenant_id"], values["name"], values["lat"], values["lng"], values["timezone"],
        values["currency"], values["tax_rate_bps"], values["tax_inclusive"], values["prep_time_default_s"],
        values["accept_window_s"], values["region"],
    )
    return _store(row)  # type: ignore[return-value]


async def get_store(
    conn: asyncpg.Connection, store_id: str, *, tenant_id: str | None = None, for_update: bool = False
) -> dict[str, Any] | None:
    """The store, or None when unknown or (with `tenant_id`) owned by another tenant."""
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {STORE_COLUMNS} FROM catalog_stores WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2){lock}",
        store_id, tenant_id,
    )
    return _store(row)


async def list_stores(conn: asyncpg.Connection, tenant_id: str, after: str | None, limit: int,
                      store_ids: frozenset[str] | None = None) -> list[dict]:
    """A page of the tenant's stores; `store_ids`: only those (a store-scoped key's), None: all."""
    rows = await conn.fetch(
        f"SELECT {STORE_COLUMNS} FROM catalog_stores WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) "
        "AND ($4::text[] IS NULL OR id = ANY($4::text[])) ORDER BY id LIMIT $3",
        tenant_id, after, limit, None if store_ids is None else sorted(store_ids),
    )
    return [_store(r) for r in rows]  # type: ignore[misc]


async def update_store(conn: asyncpg.Connection, store_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the given columns, bump the version. JSON columns are passed as Python values."""
    sets = []
    args: list[Any] = [store_id]
    for key, value in changes.items():
        args.append(json.dumps(value) if key in _JSON_COLUMNS else value)
        cast = "::jsonb" if key in _JSON_COLUMNS else ""
        sets.append(f"{key} = ${len(args)}{cast}")
    sets += ["version = version + 1", "updated_at = now()"]
    row = await conn.fetchrow(
        f"UPDATE catalog_stores SET {', '.join(sets)} WHERE id = $1 RETURNING {STORE_COLUMNS}", *args
    )
    return _store(row)  # type: ignore[return-value]


async def reopen_expired_pauses(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "UPDATE catalog_stores SET status = 'online', paused_until = NULL, version = version + 1, "
        "updated_at = now() WHERE status = 'paused' AND paused_until <= $1 RETURNING id, tenant_id",
        now,
    )


# ---- special days --------------------------------------------------------------------------------

async def special_days(
    conn: asyncpg.Connection, store_ids: Sequence[str], first: date | None = None, last: date | None = None
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT store_id, day, closed, periods, note FROM catalog_special_days WHERE store_id = ANY($1::text[]) "
        "AND ($2::date IS NULL OR day >= $2) AND ($3::date IS NULL OR day <= $3) ORDER BY store_id, day",
        list(store_ids), first, last,
    )


async def upsert_special_day(
    conn: asyncpg.Connection, store_id: str, day: date, closed: bool, periods: list[dict], note: str | None
) -> None:
    await conn.execute(
        "INSERT INTO catalog_special_days (store_id, day, closed, periods, note) VALUES ($1, $2, $3, $4::jsonb, $5) "
        "ON CONFLICT (store_id, day) DO UPDATE SET closed = EXCLUDED.closed, periods = EXCLUDED.periods, "
        "note = EXCLUDED.note",
        store_id, day, closed, json.dumps(periods), note,
    )


async def delete_special_day(conn: asyncpg.Connection, store_id: str, day: date) -> bool:
    done = await conn.fetchval(
        "DELETE FROM catalog_special_days WHERE store_id = $1 AND day = $2 RETURNING day", store_id, day
    )
    return done is not None


# ---- zones and discovery -------------------------------------------------------------------------

async def replace_zone_cells(conn: asyncpg.Connection, store_id: str, cells: Sequence[tuple[int, bool]]) -> None:
    await conn.execute("DELETE FROM catalog_zone_cells WHERE store_id = $1", store_id)
    await conn.copy_records_to_table(
        "catalog_zone_cells", records=[(c, store_id, i) for c, i in cells], columns=["cell", "store_id", "interior"]
    )


def _discovery_columns(first: int) -> str:
    """Columns discovery needs; the special days between parameters $first and $first+1 come along."""
    return _DISCOVERY_COLUMNS.replace("$FIRST", f"${first}").replace("$LAST", f"${first + 1}")


_DISCOVERY_COLUMNS = (
    "s.id, s.version, s.name, s.lat, s.lng, s.currency, s.status, s.paused_until, s.prep_time_default_s, "
    "(SELECT json_agg(json_build_object('day', d.day, 'closed', d.closed, 'periods', d.periods))"
    " FROM catalog_special_days d WHERE d.store_id = s.id AND d.day BETWEEN $FIRST AND $LAST)::text AS specials"
)
RULES_COLUMNS = "id, version, timezone, hours, zones, max_delivery_m, fee_bands"


async def rules_rows(conn: asyncpg.Connection, store_ids: Sequence[str]) -> list[asyncpg.Record]:
    """What parsing a store's rules needs (hours, zones, bands): fetched only on a cache miss."""
    return await conn.fetch(f"SELECT {RULES_COLUMNS} FROM catalog_stores WHERE id = ANY($1::text[])", list(store_ids))


async def all_open_stores(conn: asyncpg.Connection, first: date, last: date) -> list[asyncpg.Record]:
    """Every store that has a zone: the unindexed baseline the benchmark compares against."""
    return await conn.fetch(
        f"SELECT {_discovery_columns(1)}, false AS interior FROM catalog_stores s "
        "WHERE s.status <> 'closed' AND s.zone_version > 0", first, last,
    )


_LISTING_COLUMNS = (
    "s.id, s.version, s.name, s.lat, s.lng, s.currency, s.status, s.paused_until, s.prep_time_default_s, "
    "s.timezone, s.hours, s.zones, s.zone_version, s.max_delivery_m, s.fee_bands, "
    "(SELECT json_agg(json_build_object('day', d.day, 'closed', d.closed, 'periods', d.periods))"
    " FROM catalog_special_days d WHERE d.store_id = s.id AND d.day >= $1)::text AS specials"
)


async def listing_rows(conn: asyncpg.Connection, since_day: date, store_ids: Sequence[str] | None) -> list:
    """Discovery's view of the stores (all with a zone, or the given ones, whatever their zone), with
    their special days from `since_day` on."""
    if store_ids is None:
        return await conn.fetch(f"SELECT {_LISTING_COLUMNS} FROM catalog_stores s WHERE s.zone_version > 0",
                                since_day)
    return await conn.fetch(f"SELECT {_LISTING_COLUMNS} FROM catalog_stores s WHERE s.id = ANY($2::text[])",
                            since_day, list(store_ids))


async def zone_cells_of(conn: asyncpg.Connection, store_ids: Sequence[str] | None) -> list[asyncpg.Record]:
    """The cover cells of every store (None) or of the given ones."""
    if store_ids is None:
        return await conn.fetch("SELECT cell, store_id, interior FROM catalog_zone_cells")
    return await conn.fetch("SELECT cell, store_id, interior FROM catalog_zone_cells WHERE store_id = ANY($1::text[])",
                            list(store_ids))


async def changed_stores(conn: asyncpg.Connection, since: datetime) -> tuple[datetime, list[tuple[str, int]]]:
    """The database's clock now, and (id, version) of the stores whose row changed at or after `since`.

    `updated_at` is the writer's transaction start, so a caller polling with `since` = its previous
    poll's clock minus a margin also sees transactions that were still open at its previous poll."""
    rows = await conn.fetch(
        "SELECT statement_timestamp() AS now, s.id, s.version FROM (SELECT 1) one "
        "LEFT JOIN catalog_stores s ON s.updated_at >= $1", since,
    )
    return rows[0]["now"], [(r["id"], r["version"]) for r in rows if r["id"] is not None]


async def database_now(conn: asyncpg.Connection) -> datetime:
    return await conn.fetchval("SELECT statement_timestamp()")


# ---- menus ---------------------------------------------------------------------------------------

# ---- checkout: what a quote needs, in one round trip ---------------------------------------------

_CART_QUOTE = """
SELECT s.id, s.version, s.tenant_id, s.name, s.lat, s.lng, s.timezone, s.currency, s.tax_rate_bps, s.tax_inclusive,
       s.prep_time_default_s, s.accept_window_s, s.status, s.paused_until, s.region, s.max_delivery_m, s.menu_version,
       CASE WHEN s.version = $2 THEN NULL ELSE s.hours::text END AS hours,
       CASE WHEN s.version = $2 THEN NULL ELSE s.zones::text END AS zones,
       CASE WHEN s.version = $2 THEN NULL ELSE s.fee_bands::text END AS fee_bands,
       (SELECT json_agg(json_build_object('day', d.day, 'closed', d.closed, 'periods', d.periods))
          FROM catalog_special_days d WHERE d.store_id = s.id AND d.day BETWEEN $3 AND $4)::text AS specials,
       ARRAY(SELECT k.item_id FROM catalog_stock k WHERE k.item_id = ANY($5::text[]) ORDER BY k.item_id) AS stock_items,
       ARRAY(SELECT k.count FROM catalog_stock k WHERE k.item_id = ANY($5::text[]) ORDER BY k.item_id) AS stock_counts
  FROM catalog_stores s WHERE s.id = $1"""


async def cart_quote_row(
    conn: asyncpg.Connection, store_id: str, cached_version: int | None, first: date, last: date,
    item_ids: Sequence[str],
) -> asyncpg.Record | None:
    """The store as a quote needs it, its special days between `first` and `last`, its menu version and
    the stock counts of `item_ids`, all read by one statement (one snapshot). The rules' JSON columns
    (hours, zones, fee bands) come back NULL when the row is still at `cached_version`: they are parsed
    once per version and the caller has them."""
    return await conn.fetchrow(_CART_QUOTE, store_id, -1 if cached_version is None else cached_version, first, last,
                               list(item_ids))


async def menu_document(conn: asyncpg.Connection, store_id: str, version: int) -> str | None:
    return await conn.fetchval(
        "SELECT document::text FROM catalog_menus WHERE store_id = $1 AND version = $2", store_id, version
    )


async def menu_head(conn: asyncpg.Connection, store_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT tenant_id, name, currency, menu_version FROM catalog_stores WHERE id = $1", store_id
    )


async def items_owned_elsewhere(conn: asyncpg.Connection, store_id: str, item_ids: Sequence[str]) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM catalog_items WHERE id = ANY($1::text[]) AND store_id <> $2", list(item_ids), store_id
    )
    return [r["id"] for r in rows]


async def insert_menu(
    conn: asyncpg.Connection, store_id: str, version: int, document: bytes, by: str, items: Sequence[tuple]
) -> None:
    """Store a new menu version and replace the flattened items of the store.
    `items`: (id, name, description, price, availability, sold_out_until)."""
    await conn.execute(
        "INSERT INTO catalog_menus (store_id, version, document, created_by) VALUES ($1, $2, $3::jsonb, $4)",
        store_id, version, document.decode(), by,
    )
    await conn.execute("DELETE FROM catalog_items WHERE store_id = $1", store_id)
    await conn.copy_records_to_table(
        "catalog_items", records=[(i[0], store_id, *i[1:]) for i in items],
        columns=["id", "store_id", "name", "description", "price", "availability", "sold_out_until"],
    )
    await conn.execute(
        "UPDATE catalog_stores SET menu_version = $2, version = version + 1, updated_at = now() WHERE id = $1",
        store_id, version,
    )


async def menu_published_at(conn: asyncpg.Connection, store_id: str, version: int) -> datetime | None:
    return await conn.fetchval(
        "SELECT created_at FROM catalog_menus WHERE store_id = $1 AND version = $2", store_id, version
    )


# ---- stock ---------------------------------------------------------------------------------------

async def stock_counts(conn: asyncpg.Connection, item_ids: Sequence[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT item_id, count FROM catalog_stock WHERE item_id = ANY($1::text[])", list(item_ids)
    )
    return {r["item_id"]: r["count"] for r in rows}


async def store_stock(conn: asyncpg.Connection, store_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT item_id, count FROM catalog_stock WHERE store_id = $1 ORDER BY item_id", store_id
    )


async def set_stock(conn: asyncpg.Connection, store_id: str, item_id: str, count: int | None) -> None:
    if count is None:
        await conn.execute("DELETE FROM catalog_stock WHERE item_id = $1 AND store_id = $2", item_id, store_id)
        return
    await conn.execute(
        "INSERT INTO catalog_stock (item_id, store_id, count) VALUES ($1, $2, $3) "
        "ON CONFLICT (item_id) DO UPDATE SET count = EXCLUDED.count",
        item_id, store_id, count,
    )


# All of an order's counted lines in one statement, all or nothing, exactly once per order:
# - `done`: the order already holds a reservation (a second call changes nothing);
# - `locked`: the stock rows of the wanted items, locked in item order (one lock order for every
#   order: no deadlocks). Under READ COMMITTED a row another transaction changed is re-read at its
#   latest committed version once that transaction ends, so `count` is current and held;
# - `taken`: every line decremented, only when every line has enough (else none is);
# - the reservation rows (what a release gives back) and an `item.sold_out` outbox event for each
#   item this order took the last unit of, in the same statement.
# The CHECK (count >= 0) on catalog_stock still guards whatever this gets wrong.
_RESERVE = """
WITH want AS (SELECT * FROM unnest($2::text[], $3::integer[], $4::text[]) AS w(item_id, qty, event_id)),
done AS (SELECT EXISTS (SELECT 1 FROM catalog_reservations WHERE order_id = $1) AS yes),
locked AS (
    SELECT s.item_id, s.count, s.store_id, w.qty, w.event_id
      FROM catalog_stock s JOIN want w ON w.item_id = s.item_id
     WHERE NOT (SELECT yes FROM done)
     ORDER BY s.item_id
       FOR UPDATE OF s),
enough AS (SELECT coalesce(bool_and(count >= qty), true) AS ok FROM locked),
taken AS (
    UPDATE catalog_stock s SET count = s.count - l.qty
      FROM locked l
     WHERE s.item_id = l.item_id AND (SELECT ok FROM enough)
    RETURNING s.item_id, s.count, s.store_id, l.qty, l.event_id),
kept AS (INSERT INTO catalog_reservations (order_id, item_id, quantity) SELECT $1, item_id, qty FROM taken),
sold_out AS (
    INSERT INTO outbox (event_id, type, aggregate_id, occurred_at, payload)
    SELECT t.event_id, 'item.sold_out', t.store_id, $5::timestamptz,
           jsonb_build_object('id', t.event_id, 'type', 'item.sold_out', 'occurred_at', $6::text,
                              'aggregate_id', t.store_id,
                              'data', jsonb_build_object('store_id', t.store_id, 'tenant_id', st.tenant_id,
                                                         'item_id', t.item_id, 'reason', 'stock',
                                                         'sold_out_until', NULL))
      FROM taken t JOIN catalog_stores st ON st.id = t.store_id
     WHERE t.count = 0)
SELECT d.yes AS already, l.item_id, l.count, l.qty FROM done d LEFT JOIN locked l ON true ORDER BY l.item_id"""


async def reserve_stock(
    conn: asyncpg.Connection, order_id: str, wanted: Sequence[tuple[str, int]], event_ids: Sequence[str],
    at: datetime, at_text: str,
) -> tuple[bool, list[tuple[str, int, int]]]:
    """Reserve every counted item of `wanted` for the order, or none (one round trip).

    Returns (already reserved before this call, [(item id, count before, quantity)] of the counted
    items). Nothing was taken when already reserved or when some count is below its quantity."""
    rows = await conn.fetch(_RESERVE, order_id, [w[0] for w in wanted], [w[1] for w in wanted], list(event_ids),
                            at, at_text)
    return bool(rows[0]["already"]), [(r["item_id"], r["count"], r["qty"]) for r in rows if r["item_id"] is not None]


# One statement: mark the order's reservation released (once: a concurrent caller waits on the row
# locks, then finds it released and gives nothing) and put its quantities back, the stock rows locked
# in item order like `_RESERVE` does.
_RELEASE = """
WITH released AS (
    UPDATE catalog_reservations SET released_at = now() WHERE order_id = $1 AND released_at IS NULL
    RETURNING item_id, quantity),
locked AS (
    SELECT s.item_id, r.quantity FROM catalog_stock s JOIN released r ON r.item_id = s.item_id
     ORDER BY s.item_id FOR UPDATE OF s),
given AS (UPDATE catalog_stock s SET count = s.count + l.quantity FROM locked l WHERE s.item_id = l.item_id)
SELECT item_id, quantity FROM released ORDER BY item_id"""


async def release_reservation(conn: asyncpg.Connection, order_id: str) -> list[tuple[str, int]]:
    """Give the order's reserved quantities back, exactly once; returns what was given back."""
    rows = await conn.fetch(_RELEASE, order_id)
    return [(r["item_id"], r["quantity"]) for r in rows]


# ---- audit ---------------------------------------------------------------------------------------

async def audit(
    conn: asyncpg.Connection, tenant_id: str, store_id: str | None, actor: str, action: str, detail: dict
) -> None:
    await conn.execute(
        "INSERT INTO catalog_audit (tenant_id, store_id, actor, action, detail) VALUES ($1, $2, $3, $4, $5::jsonb)",
        tenant_id, store_id, actor, action, json.dumps(detail, default=str),
    )


async def audit_entries(conn: asyncpg.Connection, store_id: str, before: int | None, limit: int) -> list:
    return await conn.fetch(
        "SELECT id, at, actor, action, detail::text AS detail FROM catalog_audit WHERE store_id = $1 "
        "AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        store_id, before, limit,
    )


# ---- search --------------------------------------------------------------------------------------

async def search(conn: asyncpg.Connection, query: str, store_ids: Sequence[str], limit: int) -> list[asyncpg.Record]:
    """Dishes and stores among `store_ids` matching `query`: full-text rank, plus trigram similarity
    so a typo ("piza") still finds "pizza"."""
    return await conn.fetch(
        """WITH q AS (SELECT plainto_tsquery('simple', $1) AS tsq)
           SELECT 'item' AS kind, i.store_id, i.id AS item_id, i.name, i.price,
                  ts_rank(i.search, q.tsq) + similarity(i.name, $1) AS score
           FROM catalog_items i, q
           WHERE i.store_id = ANY($2::text[]) AND i.availability <> 'hidden'
             AND (i.search @@ q.tsq OR i.name % $1 OR word_similarity($1, i.name) > 0.5)
           UNION ALL
           SELECT 'store', s.id, NULL, s.name, NULL, ts_rank(s.search, q.tsq) + similarity(s.name, $1)
           FROM catalog_stores s, q
           WHERE s.id = ANY($2::text[]) AND (s.search @@ q.tsq OR s.name % $1 OR word_similarity($1, s.name) > 0.5)
           ORDER BY score DESC, item_id NULLS FIRST LIMIT $3""",
        query, list(store_ids), limit,
    )
