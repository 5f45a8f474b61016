"""Merchant refund limits: the platform's, or a tenant's own by contract (FOODDISPATCH_MERCHANT_REFUND_LIMIT_
OVERRIDES), checked without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fooddispatch.config import ConfigError, Settings
from kernel.errors import DomainError
from orders.merchant_refunds import RefundLimits, check_limits
from payments import Charge

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def charge(captured: int, refunded: int = 0) -> Charge:
    return Charge(intent_id="pi_1", currency="EUR", captured=captured, refunded=refunded)


def refused(limits: RefundLimits, amount: int, age: timedelta, refunded: int = 0) -> str | None:
    try:
        check_limits([charge(10_000, refunded)], amount, NOW - age, NOW, limits)
    except DomainError as exc:
        return exc.code
    return None


def test_a_tenants_contract_replaces_the_platform_limits_for_it_only() -> None:
    limits = RefundLimits(max_share_bps=2_000, max_age_days=7, per_tenant=(("ten_a", 5_000, 2),))
    a, b = limits.of("ten_a"), limits.of("ten_b")
    assert (a.max_share_bps, a.max_age_days) == (5_000, 2) and b is limits
    assert refused(a, 5_000, timedelta(days=1)) is None  # a's share: half the charge
    assert refused(b, 5_000, timedelta(days=1)) == "refund_limit_exceeded"  # the platform's: a fifth
    assert refused(a, 100, timedelta(days=3)) == "refund_window_closed"  # a's window: two days
    assert refused(b, 100, timedelta(days=3)) is None
    assert refused(a, 4_001, timedelta(days=1), refunded=1_000) == "refund_limit_exceeded"  # in all, every bearer


def test_the_overrides_are_read_from_the_environment_and_bad_ones_refused() -> None:
    settings = Settings.from_env({"FOODDISPATCH_MERCHANT_REFUND_LIMIT_OVERRIDES": "ten_a=5000:3, ten_b=10000:14"})
    assert settings.merchant_refund_limit_overrides == (("ten_a", 5_000, 3), ("ten_b", 10_000, 14))
    for bad in ("ten_a=5000", "ten_a=20000:3", "ten_a=5000:0", "=5000:3", "ten_a=x:3"):
        with pytest.raises(ConfigError):
            Settings.from_env({"FOODDISPATCH_MERCHANT_REFUND_LIMIT_OVERRIDES": bad})
