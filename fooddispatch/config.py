"""Settings: one typed object read from the environment and validated at start.

Every variable is documented in the README's configuration table; the names
are the same in docker-compose.yml (a test checks that).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernel.clientip import parse_networks


class ConfigError(ValueError):
    """A bad setting; the message names the variable and what it should be."""


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range [{lo}, {hi}]")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name) or None
    if raw is not None and not raw.startswith(tuple(f"{s}://" for s in schemes)):
        raise ConfigError(f"{name} must start with one of {', '.join(s + '://' for s in schemes)}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    specs = tuple(part.strip() for part in (env.get(name) or "").split(",") if part.strip())
    try:
        parse_networks(specs)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return specs


def _tracking_link_secret(env: Mapping[str, str], data_dir: Path) -> str:
    secret = env.get("FOODDISPATCH_TRACKING_LINK_SECRET") or _local_secret(data_dir, "tracking_link_secret")
    if len(secret) < 32:
        raise ConfigError("FOODDISPATCH_TRACKING_LINK_SECRET must be at least 32 characters")
    return secret


def _tile_url(env: Mapping[str, str]) -> str | None:
    url = _url(env, "FOODDISPATCH_MAP_TILE_URL", ("http", "https"))
    if url is not None and not all(part in url for part in ("{z}", "{x}", "{y}")):
        raise ConfigError("FOODDISPATCH_MAP_TILE_URL must contain {z}, {x} and {y}")
    return url


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".fooddispatch")
    database_url: str | None = None  # None: start the embedded PostgreSQL in data_dir
    redis_url: str | None = None  # None: start the embedded Redis in data_dir
    # REDIS_URL names a seed node of a Redis/Valkey Cluster (fooddispatch/livestore.py).
    redis_cluster: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    jwt_kid: str = "k1"
    jwt_ttl_seconds: int = 3600
    vault_key: str | None = field(default=None, repr=False)  # base64 AES-256 key for the card vault
    # A checkout hold that no order claimed (an intent a checkout's 402 left waiting for an order,
    # `awaiting_order`, authorized since: after 3-D Secure, or confirmed again after a decline) is
    # voided this long after its authorization. Intents created through the API are never voided.
    payments_unused_hold_seconds: int = 3600
    redis_prefix: str = "fd:"
    db_pool_min: int = 2
    db_pool_max: int = 20
    max_body_bytes: int = 1_048_576
    rate_limit_per_minute: int = 600  # per principal (or client IP when anonymous)
    rate_limit_burst: int = 100
    tenant_rate_limit_per_minute: int = 6000
    tenant_rate_limit_burst: int = 1000
    dispatch_interval_seconds: float = 5.0
    offer_ttl_seconds: int = 30
    # Simulated seconds per real second that the ops console reads its KPIs in (the demo runs its
    # city at --speed while the server keeps the wall clock); 1 in production.
    ops_time_scale: float = 1.0
    log_level: str = "info"
    log_json: bool | None = None  # None: JSON lines when stderr is not a terminal
    region: str = "demo"
    region_timezone: str = "UTC"  # IANA name; the hours of day the dispatcher learns speeds by are local
    tracking_retention_days: int = 30  # location history partitions older than this are dropped
    tracking_stale_seconds: int = 60  # a courier silent this long leaves the available index
    # Retention (docs/PRIVACY.md): Idempotency-Key records (never below the 24 h replay window) and
    # finished webhook deliveries (merchant and payment) are deleted this long after they were written.
    idempotency_retention_hours: int = 24
    webhook_retention_days: int = 30
    # Signs customer tracking links (orders/tracking_link.py); apart from the JWT secret, so neither
    # kind of token passes for the other. A link expires this long after it was issued.
    tracking_link_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    tracking_link_ttl_seconds: int = 86400
    # The apps' maps draw streets from this tile server ({z}/{x}/{y}); None: zones, restaurants and
    # routes on a plain background (works offline). The attribution is shown on every map.
    map_tile_url: str | None = None
    map_attribution: str = "© OpenStreetMap contributors"
    # Local development and tests only: webhooks may go over plain http to loopback and private
    # addresses (`kernel.netguard`). Off, only https to public addresses is allowed.
    webhooks_allow_private: bool = False
    # Load balancers in front of the app (IPs or CIDR networks): only a request from one of them
    # may name its client in X-Forwarded-For (the fraud screen's client IP). Empty: the peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Bounds on database time (see fooddispatch/database.py): one statement (server-side
    # statement_timeout; the client gives up half a second later, for a server that stopped
    # answering), one wait for a pooled connection, and all of a request's waits for connections.
    db_statement_timeout_seconds: float = 3.0
    db_acquire_timeout_seconds: float = 3.0
    db_request_deadline_seconds: float = 5.0
    # `serve`'s HTTP connections: a request header must be complete this long after its first
    # byte, and a connection with no request in progress is closed after the idle time.
    http_header_timeout_seconds: float = 10.0
    http_idle_timeout_seconds: float = 60.0
    # Events every consumer group has are kept this long (outbox rows, their processed-event records,
    # stream entries), then pruned; a consumer group silent this long no longer holds events back.
    event_retention_hours: int = 24
    # /readyz reports a consumer group that has work and made no progress for this long.
    consumer_stall_seconds: int = 30
    # A restaurant's balance (`GET /v1/merchant/balance`, payments/merchant.py): what orders delivered
    # this recently credited is pending; this share of what the refund window's orders credited is
    # reserved for refunds the restaurant bears; a merchant refunds an order at most this old.
    merchant_pending_hours: int = 24
    merchant_refund_reserve_bps: int = 500
    merchant_refund_max_age_days: int = 7
    merchant_refund_max_share_bps: int = 10_000  # refunds of an order in all, of its charge
    merchant_refund_limit_overrides: tuple[tuple[str, int, int], ...] = ()  # (tenant, share bps, age days)
    # The platform's commission on a restaurant's food sales (basis points), and per-tenant contract
    # rates that replace it: ((tenant id, bps), ...), from "ten_a=1200,ten_b=1000".
    merchant_commission_bps: int = 1500
    merchant_commission_overrides: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("FOODDISPATCH_DATA_DIR") or ".fooddispatch")
        jwt_secret = env.get("FOODDISPATCH_JWT_SECRET") or _local_secret(data_dir, "jwt_secret")
        if len(jwt_secret) < 32:
            raise ConfigError("FOODDISPATCH_JWT_SECRET must be at least 32 characters")
        log_level = (env.get("FOODDISPATCH_LOG_LEVEL") or "info").lower()
        if log_level not in {"debug", "info", "warning", "error"}:
            raise ConfigError("FOODDISPATCH_LOG_LEVEL must be one of debug, info, warning, error")
        log_json_raw = (env.get("FOODDISPATCH_LOG_JSON") or "").lower()
        if log_json_raw not in {"", "true", "false", "1", "0"}:
            raise ConfigError("FOODDISPATCH_LOG_JSON must be true or false")
        allow_private_raw = (env.get("FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE") or "false").lower()
        if allow_private_raw not in {"true", "false", "1", "0"}:
            raise ConfigError("FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE must be true or false")
        cluster_raw = (env.get("FOODDISPATCH_REDIS_CLUSTER") or "false").lower()
        if cluster_raw not in {"true", "false", "1", "0"}:
            raise ConfigError("FOODDISPATCH_REDIS_CLUSTER must be true or false")
        region_timezone = env.get("FOODDISPATCH_REGION_TIMEZONE") or "UTC"
        try:
            ZoneInfo(region_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"FOODDISPATCH_REGION_TIMEZONE={region_timezone!r} is not an IANA time zone") from None
        return cls(
            data_dir=data_dir,
            database_url=_url(env, "DATABASE_URL", ("postgres", "postgresql")),
            redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
            redis_cluster=cluster_raw in {"true", "1"},
            host=env.get("FOODDISPATCH_HOST") or "127.0.0.1",
            port=_int(env, "FOODDISPATCH_PORT", 8080, 0, 65535),
            jwt_secret=jwt_secret,
            jwt_kid=env.get("FOODDISPATCH_JWT_KID") or "k1",
            jwt_ttl_seconds=_int(env, "FOODDISPATCH_JWT_TTL_SECONDS", 3600, 60, 86400 * 30),
            vault_key=env.get("FOODDISPATCH_VAULT_KEY") or _local_secret(data_dir, "vault_key", 32),
            payments_unused_hold_seconds=_int(env, "FOODDISPATCH_PAYMENTS_UNUSED_HOLD_SECONDS", 3600, 60, 7 * 86400),
            redis_prefix=env.get("FOODDISPATCH_REDIS_PREFIX") or "fd:",
            db_pool_min=_int(env, "FOODDISPATCH_DB_POOL_MIN", 2, 1, 100),
            db_pool_max=_int(env, "FOODDISPATCH_DB_POOL_MAX", 20, 1, 500),
            max_body_bytes=_int(env, "FOODDISPATCH_MAX_BODY_BYTES", 1_048_576, 1024, 64 * 1_048_576),
            rate_limit_per_minute=_int(env, "FOODDISPATCH_RATE_LIMIT_PER_MINUTE", 600, 1, 10_000_000),
            rate_limit_burst=_int(env, "FOODDISPATCH_RATE_LIMIT_BURST", 100, 1, 10_000_000),
            tenant_rate_limit_per_minute=_int(
                env, "FOODDISPATCH_TENANT_RATE_LIMIT_PER_MINUTE", 6000, 1, 100_000_000
            ),
            tenant_rate_limit_burst=_int(env, "FOODDISPATCH_TENANT_RATE_LIMIT_BURST", 1000, 1, 100_000_000),
            dispatch_interval_seconds=_float(env, "FOODDISPATCH_DISPATCH_INTERVAL", 5.0, 0.1, 300.0),
            offer_ttl_seconds=_int(env, "FOODDISPATCH_OFFER_TTL_SECONDS", 30, 5, 600),
            ops_time_scale=_float(env, "FOODDISPATCH_OPS_TIME_SCALE", 1.0, 0.1, 600.0),
            log_level=log_level,
            log_json=None if log_json_raw == "" else log_json_raw in {"true", "1"},
            region=env.get("FOODDISPATCH_REGION") or "demo",
            region_timezone=region_timezone,
            tracking_retention_days=_int(env, "FOODDISPATCH_TRACKING_RETENTION_DAYS", 30, 1, 3650),
            tracking_stale_seconds=_int(env, "FOODDISPATCH_TRACKING_STALE_SECONDS", 60, 5, 3600),
            tracking_link_secret=_tracking_link_secret(env, data_dir),
            tracking_link_ttl_seconds=_int(env, "FOODDISPATCH_TRACKING_LINK_TTL_SECONDS", 86400, 300, 30 * 86400),
            map_tile_url=_tile_url(env),
            map_attribution=env.get("FOODDISPATCH_MAP_ATTRIBUTION") or "© OpenStreetMap contributors",
            webhooks_allow_private=allow_private_raw in {"true", "1"},
            trusted_proxies=_networks(env, "FOODDISPATCH_TRUSTED_PROXIES"),
            db_statement_timeout_seconds=_float(env, "FOODDISPATCH_DB_STATEMENT_TIMEOUT", 3.0, 0.1, 3600.0),
            db_acquire_timeout_seconds=_float(env, "FOODDISPATCH_DB_ACQUIRE_TIMEOUT", 3.0, 0.1, 600.0),
            db_request_deadline_seconds=_float(env, "FOODDISPATCH_DB_REQUEST_DEADLINE", 5.0, 0.1, 3600.0),
            http_header_timeout_seconds=_float(env, "FOODDISPATCH_HTTP_HEADER_TIMEOUT", 10.0, 0.5, 600.0),
            http_idle_timeout_seconds=_float(env, "FOODDISPATCH_HTTP_IDLE_TIMEOUT", 60.0, 1.0, 3600.0),
            event_retention_hours=_int(env, "FOODDISPATCH_EVENT_RETENTION_HOURS", 24, 1, 24 * 90),
            consumer_stall_seconds=_int(env, "FOODDISPATCH_CONSUMER_STALL_SECONDS", 30, 1, 3600),
            **_merchant_settings(env), **_retention_settings(env),
        )

    def replace(self, **changes: object) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)  # type: ignore[arg-type]


ENV_VARS = (
    "FOODDISPATCH_DATA_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "FOODDISPATCH_REDIS_CLUSTER",
    "FOODDISPATCH_HOST",
    "FOODDISPATCH_PORT",
    "FOODDISPATCH_JWT_SECRET",
    "FOODDISPATCH_JWT_KID",
    "FOODDISPATCH_JWT_TTL_SECONDS",
    "FOODDISPATCH_VAULT_KEY",
    "FOODDISPATCH_PAYMENTS_UNUSED_HOLD_SECONDS",
    "FOODDISPATCH_REDIS_PREFIX",
    "FOODDISPATCH_DB_POOL_MIN",
    "FOODDISPATCH_DB_POOL_MAX",
    "FOODDISPATCH_MAX_BODY_BYTES",
    "FOODDISPATCH_RATE_LIMIT_PER_MINUTE",
    "FOODDISPATCH_RATE_LIMIT_BURST",
    "FOODDISPATCH_TENANT_RATE_LIMIT_PER_MINUTE",
    "FOODDISPATCH_TENANT_RATE_LIMIT_BURST",
    "FOODDISPATCH_DISPATCH_INTERVAL",
    "FOODDISPATCH_OFFER_TTL_SECONDS",
    "FOODDISPATCH_OPS_TIME_SCALE",
    "FOODDISPATCH_LOG_LEVEL",
    "FOODDISPATCH_LOG_JSON",
    "FOODDISPATCH_REGION",
    "FOODDISPATCH_REGION_TIMEZONE",
    "FOODDISPATCH_TRACKING_RETENTION_DAYS",
    "FOODDISPATCH_TRACKING_STALE_SECONDS",
    "FOODDISPATCH_TRACKING_LINK_SECRET",
    "FOODDISPATCH_TRACKING_LINK_TTL_SECONDS",
    "FOODDISPATCH_MAP_TILE_URL",
    "FOODDISPATCH_MAP_ATTRIBUTION",
    "FOODDISPATCH_WEBHOOKS_ALLOW_PRIVATE",
    "FOODDISPATCH_TRUSTED_PROXIES",
    "FOODDISPATCH_DB_STATEMENT_TIMEOUT",
    "FOODDISPATCH_DB_ACQUIRE_TIMEOUT",
    "FOODDISPATCH_DB_REQUEST_DEADLINE",
    "FOODDISPATCH_HTTP_HEADER_TIMEOUT",
    "FOODDISPATCH_HTTP_IDLE_TIMEOUT",
    "FOODDISPATCH_EVENT_RETENTION_HOURS",
    "FOODDISPATCH_CONSUMER_STALL_SECONDS",
    "FOODDISPATCH_MERCHANT_PENDING_HOURS",
    "FOODDISPATCH_MERCHANT_REFUND_RESERVE_BPS",
    "FOODDISPATCH_MERCHANT_REFUND_MAX_AGE_DAYS",
    "FOODDISPATCH_MERCHANT_COMMISSION_BPS",
    "FOODDISPATCH_MERCHANT_COMMISSION_OVERRIDES",
    "FOODDISPATCH_MERCHANT_REFUND_MAX_SHARE_BPS",
    "FOODDISPATCH_MERCHANT_REFUND_LIMIT_OVERRIDES",
)


def _retention_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """How long what is kept only for a while is kept (docs/PRIVACY.md)."""
    return {
        # never below the 24 h in which an Idempotency-Key replays (fooddispatch/idempotency.py)
        "idempotency_retention_hours": _int(env, "FOODDISPATCH_IDEMPOTENCY_RETENTION_HOURS", 24, 24, 24 * 90),
        "webhook_retention_days": _int(env, "FOODDISPATCH_WEBHOOK_RETENTION_DAYS", 30, 1, 3650),
    }


def _merchant_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The merchant money settings (balance, statements, merchant refunds)."""
    return {
        "merchant_pending_hours": _int(env, "FOODDISPATCH_MERCHANT_PENDING_HOURS", 24, 0, 24 * 90),
        "merchant_refund_reserve_bps": _int(env, "FOODDISPATCH_MERCHANT_REFUND_RESERVE_BPS", 500, 0, 10_000),
        "merchant_refund_max_age_days": _int(env, "FOODDISPATCH_MERCHANT_REFUND_MAX_AGE_DAYS", 7, 1, 365),
        "merchant_refund_max_share_bps": _int(env, "FOODDISPATCH_MERCHANT_REFUND_MAX_SHARE_BPS", 10_000, 0, 10_000),
        "merchant_refund_limit_overrides": _refund_limit_overrides(
            env, "FOODDISPATCH_MERCHANT_REFUND_LIMIT_OVERRIDES"),
        "merchant_commission_bps": _int(env, "FOODDISPATCH_MERCHANT_COMMISSION_BPS", 1500, 0, 10_000),
        "merchant_commission_overrides": _commission_overrides(env, "FOODDISPATCH_MERCHANT_COMMISSION_OVERRIDES"),
    }


def _commission_overrides(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in (p.strip() for p in (env.get(name) or "").split(",")):
        if not part:
            continue
        tenant, _, bps = part.partition("=")
        if not tenant.strip() or not bps.strip().isdigit() or int(bps) > 10_000:
            raise ConfigError(f"{name}: {part!r} is not <tenant id>=<basis points 0..10000>")
        out.append((tenant.strip(), int(bps)))
    return tuple(out)


def _refund_limit_overrides(env: Mapping[str, str], name: str) -> tuple[tuple[str, int, int], ...]:
    """`ten_a=5000:3,ten_b=10000:14`: a tenant's merchant-refund limits by contract (share of the charge in
    basis points, age of the order in days)."""
    out = []
    for part in (p.strip() for p in (env.get(name) or "").split(",")):
        if not part:
            continue
        tenant, _, limits = part.partition("=")
        share, _, days = limits.strip().partition(":")
        if not tenant.strip() or not share.isdigit() or not days.isdigit() or int(share) > 10_000 \
                or not 1 <= int(days) <= 365:
            raise ConfigError(f"{name}: {part!r} is not <tenant id>=<basis points 0..10000>:<days 1..365>")
        out.append((tenant.strip(), int(share), int(days)))
    return tuple(out)


def _local_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """A secret generated once per data folder, so a local `token` command and a
    running `serve` on the same folder agree without any configuration."""
    import base64

    path = data_dir / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(base64.b64encode(secrets.token_bytes(nbytes)).decode())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # exclusive: of two processes starting together, one secret wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
