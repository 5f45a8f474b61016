"""The ledger's Postgres adapter: accounts, append-only journal entries and their
postings, balances kept in the same transaction.

`post_batch` applies a list of entries in one transaction with a fixed number of
round trips: it locks every account the batch touches (in id order, so two
batches never deadlock), replays the entries in order against the locked
balances, and rejects on its own any entry that is unbalanced, already posted
(same idempotency key) or would take a non-negative account below zero. The
accepted ones are written with one statement. The table's CHECK
constraint and the balance trigger still guard whatever this code gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from payments.errors import InsufficientBalance
from payments.model import Account, JournalEntry, UnbalancedEntry, apply_to_balances, check_entry


@dataclass(frozen=True, slots=True)
class PostingOutcome:
    entry_id: str  # the id written, or the id already posted under the same idempotency key
    accepted: bool
    reason: str | None = None  # unbalanced: ..., insufficient_funds:<account>, duplicate

    @property
    def duplicate(self) -> bool:
        return self.reason == "duplicate"


# Only accounts not there yet are inserted: ON CONFLICT against an existing row that another
# transaction holds locked waits for that transaction, so a plain upsert of the shared clearing
# accounts queued every posting behind the one before it, twice.
_ENSURE_ACCOUNTS = """
INSERT INTO ledger_accounts (id, kind, owner_id, currency, normal_side, non_negative)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[])
    AS n(id, kind, owner_id, currency, normal_side, non_negative)
 WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.id = n.id)
ON CONFLICT (id) DO NOTHING"""
# The accepted entries, their postings and the balance changes: one statement, one round trip.
# (The postings' foreign key and the balance trigger are checked at the statement's end, so they
# see the entries written beside them.)
_WRITE = """
WITH entries AS (
  INSERT INTO journal_entries (id, kind, currency, actor, reason, reference, intent_id, refund_id, payout_id,
                               processor_ref, idempotency_key, reverses)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])),
postings AS (
  INSERT INTO postings (entry_id, seq, account_id, amount, currency)
  SELECT * FROM unnest($13::text[], $14::integer[], $15::text[], $16::bigint[], $17::text[]))
UPDATE ledger_accounts a SET balance = a.balance + v.delta
  FROM unnest($18::text[], $19::bigint[]) AS v(id, delta) WHERE a.id = v.id"""


async def post_batch(conn: asyncpg.Connection, entries: list[JournalEntry]) -> list[PostingOutcome]:
    """Apply each entry or reject it on its own; all in one transaction."""
    outcomes: list[PostingOutcome | None] = [None] * len(entries)
    valid: list[int] = []
    for i, e in enumerate(entries):
        try:
            check_entry(e)
            valid.append(i)
        except UnbalancedEntry as exc:
            outcomes[i] = PostingOutcome(e.id, False, f"unbalanced: {exc}")
    async with conn.transaction():
        accounts: dict[str, Account] = {}
        for i in valid:
            for p in entries[i].postings:
                accounts[p.account.id] = p.account
        if accounts:
            ordered = sorted(accounts)
            specs = [accounts[a] for a in ordered]
            await conn.execute(
                _ENSURE_ACCOUNTS, ordered, [a.kind for a in specs], [a.owner for a in specs],
                [a.currency for a in specs], [a.spec.normal for a in specs], [a.spec.non_negative for a in specs],
            )
            rows = await conn.fetch(
                "SELECT id, balance FROM ledger_accounts WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", ordered
            )
            balances = {r["id"]: r["balance"] for r in rows}
        else:
            balances = {}
        keys = [entries[i].idempotency_key for i in valid if entries[i].idempotency_key]
        existing: dict[str, str] = {}
        if keys:
            rows = await conn.fetch(
                "SELECT idempotency_key, id FROM journal_entries WHERE idempotency_key = ANY($1::text[])", keys
            )
            existing = {r["idempotency_key"]: r["id"] for r in rows}
        start = dict(balances)
        accepted: list[JournalEntry] = []
        for i in valid:
            e = entries[i]
            if e.idempotency_key and e.idempotency_key in existing:
                outcomes[i] = PostingOutcome(existing[e.idempotency_key], False, "duplicate")
                continue
            offending = apply_to_balances(balances, e)
            if offending is not None:
                outcomes[i] = PostingOutcome(e.id, False, f"insufficient_funds:{offending}")
                continue
            if e.idempotency_key:
                existing[e.idempotency_key] = e.id
            accepted.append(e)
            outcomes[i] = PostingOutcome(e.id, True)
        if accepted:
            await _write(conn, accepted, {a: balances[a] - start[a] for a in balances if balances[a] != start[a]},
                         accounts)
    return [o for o in outcomes if o is not None]


async def _write(conn: asyncpg.Connection, accepted: list[JournalEntry], natural_deltas: dict[str, int],
                 accounts: dict[str, Account]) -> None:
    cols: list[list[object]] = [[] for _ in range(12)]
    for e in accepted:
        for col, value in zip(cols, (e.id, e.kind, e.currency, e.actor, e.reason, e.reference, e.intent_id,
                                     e.refund_id, e.payout_id, e.processor_ref, e.idempotency_key, e.reverses),
                              strict=True):
            col.append(value)
    p_entry, p_seq, p_account, p_amount, p_currency = [], [], [], [], []
    for e in accepted:
        for seq, p in enumerate(e.postings):
            p_entry.append(e.id)
            p_seq.append(seq)
            p_account.append(p.account.id)
            p_amount.append(p.amount)
            p_currency.append(e.currency)
    ids = sorted(natural_deltas)
    await conn.execute(_WRITE, *cols, p_entry, p_seq, p_account, p_amount, p_currency, ids,
                       [natural_deltas[i] for i in ids])


# One entry written inside a larger statement (the capture's intent update): the entry unless its
# idempotency key was posted before, its postings, and each account's natural balance moved by an
# upsert in account id order (the same lock order as `post_batch`), which also creates an account
# not seen yet. Only for entries that take no non-negative account down (`fits_one_statement`): an
# upsert's proposed row must pass the non-negative CHECK before it turns into an update, and such
# an entry needs no balance read first. The balanced-postings trigger, the foreign keys (checked at
# the statement's end, so they see the rows written beside them) and the CHECK still guard it.
_ENTRY_CTES = """,
     je AS (INSERT INTO journal_entries (id, kind, currency, actor, reason, reference, intent_id, refund_id,
                                         payout_id, processor_ref, idempotency_key, reverses)
            VALUES ({p[0]}::text, {p[1]}::text, {p[2]}::text, {p[3]}::text, {p[4]}::text, {p[5]}::text, {p[6]}::text,
                    {p[7]}::text, {p[8]}::text, {p[9]}::text, {p[10]}::text, {p[11]}::text)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING id),
     jp AS (INSERT INTO postings (entry_id, seq, account_id, amount, currency)
            SELECT je.id, q.seq, q.account_id, q.amount, {p[2]}::text
              FROM je, unnest({p[12]}::integer[], {p[13]}::text[], {p[14]}::bigint[]) AS q(seq, account_id, amount)),
     ja AS (INSERT INTO ledger_accounts AS a (id, kind, owner_id, currency, normal_side, non_negative, balance)
            SELECT n.* FROM unnest({p[15]}::text[], {p[16]}::text[], {p[17]}::text[], {p[18]}::text[],
                                   {p[19]}::text[], {p[20]}::boolean[], {p[21]}::bigint[])
                            AS n(id, kind, owner_id, currency, normal_side, non_negative, delta)
             WHERE EXISTS (SELECT 1 FROM je)
             ORDER BY n.id
            ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance)"""


def fits_one_statement(e: JournalEntry) -> bool:
    """Whether `entry_ctes` may write `e`: no posting lowers a non-negative account's balance."""
    return all(not q.account.spec.non_negative or q.account.natural(q.amount) >= 0 for q in e.postings)


def entry_ctes(e: JournalEntry, first: int) -> tuple[str, list[object]]:
    """The CTEs (to append after a statement's own) and their arguments, numbered from `first`,
    that write entry `e` as `post` would. `e` must be balanced and `fits_one_statement`."""
    check_entry(e)
    if not fits_one_statement(e):
        raise ValueError("an entry that lowers a non-negative account needs post()")
    p = [f"${first + k}" for k in range(22)]
    accounts = sorted(((q.account, q.account.natural(q.amount)) for q in e.postings), key=lambda ad: ad[0].id)
    args: list[object] = [
        e.id, e.kind, e.currency, e.actor, e.reason, e.reference, e.intent_id, e.refund_id, e.payout_id,
        e.processor_ref, e.idempotency_key, e.reverses,
        list(range(len(e.postings))), [q.account.id for q in e.postings], [q.amount for q in e.postings],
        [a.id for a, _ in accounts], [a.kind for a, _ in accounts], [a.owner for a, _ in accounts],
        [a.currency for a, _ in accounts], [a.spec.normal for a, _ in accounts],
        [a.spec.non_negative for a, _ in accounts], [d for _, d in accounts],
    ]
    return _ENTRY_CTES.format(p=p), args


async def post(conn: asyncpg.Connection, entry: JournalEntry) -> PostingOutcome:
    """Post one entry; an entry already posted under its idempotency key returns that
    one. Insufficient balance raises `InsufficientBalance` (402)."""
    [outcome] = await post_batch(conn, [entry])
    if outcome.reason and outcome.reason.startswith("insufficient_funds:"):
        account = outcome.reason.split(":", 1)[1]
        raise InsufficientBalance(f"the balance of {account} is too low for this movement", account=account)
    if outcome.reason and outcome.reason.startswith("unbalanced"):
        raise UnbalancedEntry(outcome.reason)
    return outcome


async def balance(conn: asyncpg.Connection, account: Account) -> int:
    value = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1", account.id)
    return int(value or 0)


async def locked_balance(conn: asyncpg.Connection, account: Account) -> int:
    """The account's natural balance, its row locked for the caller's transaction (0 if it has none)."""
    value = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1 FOR UPDATE", account.id)
    return int(value or 0)


async def balances_of_owner(conn: asyncpg.Connection, owner_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, kind, currency, balance FROM ledger_accounts WHERE owner_id = $1 ORDER BY id", owner_id
    )


async def history(conn: asyncpg.Connection, owner_id: str, kind: str, currency: str | None,
                  starting_after: str | None, limit: int) -> list[asyncpg.Record]:
    """The postings of the owner's accounts of `kind` (of one currency, or each currency's), newest
    first, each with its account's currency; `starting_after` is the last entry id of the previous page."""
    return await conn.fetch(
        """SELECT p.entry_id, p.amount, a.currency, e.kind, e.reason, e.reference, e.intent_id, e.payout_id, e.actor,
                  e.created_at
             FROM ledger_accounts a
             JOIN postings p ON p.account_id = a.id
             JOIN journal_entries e ON e.id = p.entry_id
            WHERE a.owner_id = $1 AND a.kind = $2 AND ($3::text IS NULL OR a.currency = $3)
              AND ($4::text IS NULL OR p.entry_id < $4)
            ORDER BY p.entry_id DESC LIMIT $5""",
        owner_id, kind, currency, starting_after, limit,
    )


async def sums_per_currency(conn: asyncpg.Connection) -> dict[str, int]:
    """Sum of every posting per currency: zero for a healthy ledger."""
    rows = await conn.fetch("SELECT currency, sum(amount)::bigint AS total FROM postings GROUP BY currency")
    return {r["currency"]: r["total"] for r in rows}


async def balances_match_postings(conn: asyncpg.Connection) -> list[str]:
    """Accounts whose stored balance differs from their postings (empty when consistent)."""
    rows = await conn.fetch(
        """SELECT a.id FROM ledger_accounts a
             LEFT JOIN (SELECT account_id, sum(amount) AS s FROM postings GROUP BY account_id) p
                    ON p.account_id = a.id
            WHERE a.balance <> CASE a.normal_side WHEN 'debit' THEN coalesce(p.s, 0) ELSE -coalesce(p.s, 0) END"""
    )
    return [r["id"] for r in rows]


async def accounts_with_balance(conn: asyncpg.Connection, kind: str, currency: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, owner_id, balance FROM ledger_accounts WHERE kind = $1 AND currency = $2 AND balance > 0 "
        "ORDER BY id", kind, currency,
    )


async def processor_entries(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[asyncpg.Record]:
    """Ledger entries that moved money through the processor in [start, end): capture +, refund -."""
    return await conn.fetch(
        """SELECT e.id, e.kind, e.processor_ref, e.intent_id, p.amount, p.currency
             FROM journal_entries e JOIN postings p ON p.entry_id = e.id AND p.account_id LIKE 'processor_clearing:%'
            WHERE e.processor_ref IS NOT NULL AND e.created_at >= $1 AND e.created_at < $2""",
        start, end,
    )


async def restaurant_balances(conn: asyncpg.Connection, owner_id: str, pending_since: datetime,
                              window_since: datetime) -> list[asyncpg.Record]:
    """The restaurant's payable accounts, one row per currency: the balance, and what split entries
    credited to it since `pending_since` and since `window_since` (the earlier of the two)."""
    return await conn.fetch(
        """SELECT a.currency, a.balance, s.pending_credits, s.window_credits
             FROM ledger_accounts a
             CROSS JOIN LATERAL (
                  SELECT coalesce(-sum(p.amount) FILTER (WHERE e.created_at >= $2), 0)::bigint AS pending_credits,
                         coalesce(-sum(p.amount) FILTER (WHERE e.created_at >= $3), 0)::bigint AS window_credits
                    FROM postings p JOIN journal_entries e ON e.id = p.entry_id
                   WHERE p.account_id = a.id AND e.kind = 'split' AND e.created_at >= least($2, $3)) s
            WHERE a.kind = 'restaurant_payable' AND a.owner_id = $1
            ORDER BY a.currency""",
        owner_id, pending_since, window_since,
    )


# The tenant's orders are those whose splits it is the restaurant of (`order_restaurants`, written with each
# split: orders posts the split with the tenant as the restaurant, even one crediting it nothing); their split
# and refund entries of the period, summed per order and currency. An entry's reference is the order id,
# `<order>:cancel` or `<order>:tip:<n>`: its first part is the order.
_STATEMENT = """
WITH mine AS (SELECT order_id FROM order_restaurants WHERE restaurant_id = $1)
SELECT split_part(e.reference, ':', 1) AS order_id, e.currency, min(e.created_at) AS first_at,
       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'split' AND a.kind = 'customer_card_clearing'), 0)::bigint
           AS gross,
       coalesce(-sum(p.amount) FILTER (WHERE e.kind = 'split' AND a.kind = 'tax_payable'), 0)::bigint AS tax,
       coalesce(-sum(p.amount) FILTER (WHERE e.kind = 'split' AND a.kind = 'restaurant_payable'), 0)::bigint
           AS restaurant,
       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'refund' AND a.kind = 'platform_refunds'), 0)::bigint
           AS refunded_by_platform,
       coalesce(sum(p.amount) FILTER (WHERE e.kind = 'refund' AND a.kind = 'restaurant_payable'), 0)::bigint
           AS refunded_by_restaurant,
       coalesce(array_agg(DISTINCT e.reference) FILTER (WHERE e.kind = 'split'), '{}') AS splits
  FROM journal_entries e
  JOIN postings p ON p.entry_id = e.id
  JOIN ledger_accounts a ON a.id = p.account_id
 WHERE e.created_at >= $2 AND e.created_at < $3 AND e.kind IN ('split', 'refund')
   AND split_part(e.reference, ':', 1) IN (SELECT order_id FROM mine)
 GROUP BY 1, 2
 ORDER BY 1, 2"""


async def restaurant_statement(conn: asyncpg.Connection, owner_id: str, start: datetime,
                               end: datetime) -> list[asyncpg.Record]:
    """Per order of the restaurant (and currency), what its split and refund entries in [start, end)
    moved: the customer's charge, tax, the restaurant's share, refunds borne by the platform and by
    the restaurant, and the references of its splits; ordered by order id."""
    return await conn.fetch(_STATEMENT, owner_id, start, end)


async def record_order_restaurant(conn: asyncpg.Connection, reference: str, restaurant_id: str) -> None:
    """Note the restaurant a split of `reference` settles for (its order: the reference's first part);
    the first split of an order names it for good."""
    await conn.execute(
        "INSERT INTO order_restaurants (order_id, restaurant_id) VALUES (split_part($1, ':', 1), $2) "
        "ON CONFLICT (order_id) DO NOTHING", reference, restaurant_id)


async def restaurant_of_order(conn: asyncpg.Connection, order_id: str) -> str | None:
    """The restaurant tenant whose order `order_id` is (its splits' restaurant, as the statement attributes
    orders); None for an order never split."""
    return await conn.fetchval("SELECT restaurant_id FROM order_restaurants WHERE order_id = $1", order_id)
