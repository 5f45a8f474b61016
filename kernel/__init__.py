"""The shared kernel: money, ids, clocks, the base error, the event envelope and
outbox, and the HTTP helpers every package's web layer uses. Imports nothing of ours."""

from kernel.clock import Clock, ManualClock, SystemClock
from kernel.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidJson,
    InvalidTransition,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from kernel.ids import new_id
from kernel.money import CurrencyError, Money, convert, format_money, round_half_even

__all__ = [
    "Clock",
    "Conflict",
    "CurrencyError",
    "DomainError",
    "Forbidden",
    "InvalidJson",
    "InvalidTransition",
    "ManualClock",
    "Money",
    "NotFound",
    "RateLimited",
    "SystemClock",
    "Unauthenticated",
    "ValidationFailed",
    "convert",
    "format_money",
    "new_id",
    "round_half_even",
]
