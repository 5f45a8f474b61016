"""Payments: tokenized cards, payment intents (Stripe semantics), the double-entry
ledger, wallets, payouts, fraud screening, reconciliation and signed webhooks.

The public interface for other packages (`orders/`):
`PaymentsService.authorize / capture / void / refund / post_split / restaurant_statement`, taking the
caller's asyncpg connection, and the types they use; the payloads of the events that
announce money movements (`PaymentCaptured`, `PaymentRefunded`; every event type is in
`payments.event_types`, docs/EVENTS.md).
"""

from payments.errors import (
    InsufficientBalance,
    PaymentDeclined,
    PaymentRequiresAction,
    ProcessorError,
    ProcessorUnavailable,
)
from payments.event_types import PaymentCaptured, PaymentRefunded
from payments.merchant import Charge, StatementMovement
from payments.model import Split
from payments.service import WALLET, Authorization, PaymentsService, RiskContext

__all__ = [
    "WALLET",
    "Authorization",
    "Charge",
    "InsufficientBalance",
    "PaymentCaptured",
    "PaymentDeclined",
    "PaymentRefunded",
    "PaymentRequiresAction",
    "PaymentsService",
    "ProcessorError",
    "ProcessorUnavailable",
    "RiskContext",
    "Split",
    "StatementMovement",
]
