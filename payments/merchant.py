"""A restaurant's balance as its staff see it: the ledger's `restaurant_payable` account of the
tenant, per currency, divided into what may be paid out now and what is held back. Pure.

- `pending`: what orders delivered in the last `pending_hours` credited (their money is still
  settling with the card processor, and the order is still fresh for complaints);
- `reserved_for_refunds`: `refund_reserve_bps` of what orders credited over the merchant refund
  window (`refund_window_days`), out of what is not pending, so a refund the restaurant bears can
  be paid from its balance;
- `available`: the rest. The three always add up to the ledger balance (`total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction

from kernel.money import round_half_even


@dataclass(frozen=True, slots=True)
class MerchantMoneyPolicy:
    pending_hours: int = 24
    refund_reserve_bps: int = 500
    refund_window_days: int = 7

    def pending_since(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.pending_hours)

    def window_since(self, now: datetime) -> datetime:
        return now - timedelta(days=self.refund_window_days)


@dataclass(frozen=True, slots=True)
class BalanceParts:
    currency: str
    total: int
    available: int
    pending: int
    reserved_for_refunds: int


def balance_parts(currency: str, total: int, pending_credits: int, window_credits: int,
                  policy: MerchantMoneyPolicy) -> BalanceParts:
    """Divide a ledger balance `total` given what splits credited in the pending period and in
    the refund window; every part is between 0 and `total`, and they add up to it."""
    total = max(total, 0)  # restaurant_payable is non-negative in the ledger; this is belt and braces
    pending = min(total, max(pending_credits, 0))
    reserve = round_half_even(Fraction(max(window_credits, 0) * policy.refund_reserve_bps, 10_000))
    reserved = min(total - pending, reserve)
    return BalanceParts(currency, total, total - pending - reserved, pending, reserved)


@dataclass(frozen=True, slots=True)
class StatementMovement:
    """What one order's ledger entries moved in a period, as a merchant's statement reads it
    (positive minor units; `restaurant` is its share from splits, before refunds)."""

    order_id: str
    currency: str
    first_at: datetime
    gross: int  # what the customer was charged
    tax: int
    restaurant: int
    refunded_by_platform: int
    refunded_by_restaurant: int
    splits: tuple[str, ...]  # the ledger references of the order's splits in the period


@dataclass(frozen=True, slots=True)
class Charge:
    """What an intent captured and what of it was refunded: what a refund of it may still take."""

    intent_id: str
    currency: str
    captured: int
    refunded: int

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded


def next_payout_run(every: str, weekday: int | None, after: datetime) -> datetime:
    """The first midnight UTC after `after` (daily), or the first one on `weekday` (0 = Monday)."""
    day = datetime.combine(after.astimezone(UTC).date() + timedelta(days=1), time(), UTC)
    if every == "weekly" and weekday is not None:
        day += timedelta(days=(weekday - day.weekday()) % 7)
    return day
