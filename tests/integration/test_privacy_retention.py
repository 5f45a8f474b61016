"""Retention (docs/PRIVACY.md): one pass of `PrivacyService.purge_expired` deletes location history,
finished webhook deliveries and Idempotency-Key records older than their periods, by the injected clock
(the keys by the database's, as their replay window is), and keeps what is younger or still pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fooddispatch.identity import IdentityService, Tokens
from fooddispatch.privacy.service import PrivacyService, Retention
from kernel.clock import ManualClock
from tracking import store as tracking_store

NOW = datetime(2031, 5, 20, 12, 0, tzinfo=UTC)
RETENTION = Retention(location_history=timedelta(days=30), idempotency=timedelta(hours=48),
                      webhook_deliveries=timedelta(days=7))


async def _fix(conn, courier_id: str, at: datetime, seq: int) -> None:
    await conn.execute(
        f"INSERT INTO {tracking_store.HISTORY_TABLE} (courier_id, recorded_at, received_at, seq, lat, lng, "
        "dispatchable) VALUES ($1, $2, $2, $3, 52.5, 13.4, true)", courier_id, at, seq)


async def _merchant_delivery(conn, delivery_id: str, status: str, completed_at: datetime | None) -> None:
    await conn.execute(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, next_attempt_at, "
        "created_at, completed_at) VALUES ($1, 'whe_1', $1, 'order.placed', '\\x7b7d'::bytea, $2, $3, $3, $4)",
        delivery_id, status, NOW - timedelta(days=60), completed_at)
    await conn.execute("INSERT INTO webhook_attempts (delivery_id, attempt, at, duration_ms) VALUES ($1, 1, $2, 5)",
                       delivery_id, NOW - timedelta(days=60))


async def _payment_delivery(conn, delivery_id: str, status: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO payment_webhook_deliveries (id, endpoint_id, event_id, event_type, payload, status, "
        "next_attempt_at, delivered_at) VALUES ($1, 'pwe_1', $1, 'payment.captured', '{}', $2, $3, "
        "CASE WHEN $2 = 'delivered' THEN $3::timestamptz END)", delivery_id, status, at)


async def _world(conn) -> None:
    await _fix(conn, "cou_a", NOW - timedelta(days=45), 1)  # its whole day partition goes
    await _fix(conn, "cou_a", NOW - timedelta(days=30, hours=1), 2)  # in the day that straddles the cut-off
    await _fix(conn, "cou_a", NOW - timedelta(days=29, hours=23), 3)  # just inside
    await _fix(conn, "cou_a", NOW - timedelta(hours=1), 4)
    await _merchant_delivery(conn, "whd_old", "succeeded", NOW - timedelta(days=8))
    await _merchant_delivery(conn, "whd_failed_old", "failed", NOW - timedelta(days=8))
    await _merchant_delivery(conn, "whd_recent", "succeeded", NOW - timedelta(days=6))
    await _merchant_delivery(conn, "whd_pending", "pending", None)  # however old: still to deliver
    await conn.execute("INSERT INTO payment_webhook_endpoints (id, url, secret, event_types, created_by) "
                       "VALUES ('pwe_1', 'https://x.example/hook', 's', '{*}', 'opr_1')")
    await _payment_delivery(conn, "pwd_old", "delivered", NOW - timedelta(days=8))
    await _payment_delivery(conn, "pwd_recent", "delivered", NOW - timedelta(days=1))
    await _payment_delivery(conn, "pwd_pending", "pending", NOW - timedelta(days=60))
    for key, age in (("old", timedelta(hours=49)), ("recent", timedelta(hours=47))):
        await conn.execute("INSERT INTO idempotency_keys (principal, key, fingerprint, created_at) "
                           "VALUES ('token:cus_1', $1, 'f', now() - $2::interval)", key, age)


async def test_one_pass_deletes_what_is_past_its_period_and_keeps_the_rest(db) -> None:
    await tracking_store.ensure_partitions(db, [NOW.date() - timedelta(days=d) for d in (0, 1, 29, 30, 31, 45)])
    async with db.acquire() as conn:
        await _world(conn)
    clock = ManualClock(NOW)
    service = PrivacyService(db, clock, IdentityService(db, Tokens({"k": "s"}, "k", 60)), retention=RETENTION)
    gone = await service.purge_expired()
    assert gone["merchant_webhook_deliveries"] == 2 and gone["payment_webhook_deliveries"] == 1
    assert gone["idempotency_records"] == 1
    async with db.acquire() as conn:
        seqs = await conn.fetch(f"SELECT seq FROM {tracking_store.HISTORY_TABLE} ORDER BY seq")
        assert [r["seq"] for r in seqs] == [3, 4]
        assert [r["id"] for r in await conn.fetch("SELECT id FROM webhook_deliveries ORDER BY id")] == [
            "whd_pending", "whd_recent"]
        assert {r["delivery_id"] for r in await conn.fetch("SELECT delivery_id FROM webhook_attempts")} == {
            "whd_pending", "whd_recent"}
        assert [r["id"] for r in await conn.fetch("SELECT id FROM payment_webhook_deliveries ORDER BY id")] == [
            "pwd_pending", "pwd_recent"]
        assert [r["key"] for r in await conn.fetch("SELECT key FROM idempotency_keys")] == ["recent"]
    # a day later by the clock: what was just inside its period is past it now
    clock.advance(timedelta(days=1, hours=1).total_seconds())
    again = await service.purge_expired()
    assert again["payment_webhook_deliveries"] == 0 and again["merchant_webhook_deliveries"] == 1
    async with db.acquire() as conn:
        seqs = await conn.fetch(f"SELECT seq FROM {tracking_store.HISTORY_TABLE} ORDER BY seq")
        assert [r["seq"] for r in seqs] == [4]
