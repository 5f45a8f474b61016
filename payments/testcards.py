"""The test mode's guide for API users, written from the tables the code runs on: the built-in processor's
test cards (`processor.TEST_CARDS`), what a failed 3-D Secure challenge answers, and the fraud screen's
thresholds (`model.FraudRules`). The API docs show it (the OpenAPI `payments` tag), so they cannot say
something the processor does not do. Pure."""

from __future__ import annotations

from payments.model import FraudRules
from payments.processor import AUTHENTICATION_FAILED, AUTHORIZED, REQUIRES_ACTION, TEST_CARDS

_WHAT = {AUTHORIZED: "authorizes", REQUIRES_ACTION: "asks for 3-D Secure"}


def describe_test_mode(rules: FraudRules | None = None) -> str:
    """Markdown: the test cards and what each does, 3-D Secure, and how the fraud screen decides."""
    rules = rules or FraudRules()
    failed_code, failed_decline, _message = AUTHENTICATION_FAILED
    return "\n\n".join((
        "## Test mode: cards and scenarios\n\n"
        "Payments run on a built-in test-mode processor with Stripe's test card numbers. Save a card with "
        "`POST /v1/payment_methods` (an expiry month not in the past, a CVC of 3 digits, 4 for Amex) and confirm "
        "a PaymentIntent, or check out, with it. A decline answers 402 with the error's `code`, `decline_code` "
        "and `message` below, and leaves the intent in `requires_payment_method` with them in `last_error`.",
        _cards_table(),
        "Any other valid card number authorizes.",
        "**3-D Secure.** A card that asks for it leaves the intent in `requires_action` with a `next_action` "
        "(a checkout answers 402 `authentication_required` naming the intent). Test mode stands in for the "
        "issuer's page: confirm the intent again with `{\"authentication\": \"succeeded\"}` and it authorizes, "
        f"or with `{{\"authentication\": \"failed\"}}` and it is declined with `code` `{failed_code}`, "
        f"`decline_code` `{failed_decline}`.",
        _fraud(rules),
    ))


def _cards_table() -> str:
    rows = ["| Card number | Scenario | `code` | `decline_code` | `message` |", "| --- | --- | --- | --- | --- |"]
    for number, (outcome, code, decline_code, message) in TEST_CARDS.items():
        scenario = _WHAT.get(outcome, "declined")
        rows.append(f"| `{number}` | {scenario} | {_cell(code)} | {_cell(decline_code)} | {message or ''} |")
    return "\n".join(rows)


def _cell(value: str | None) -> str:
    return f"`{value}`" if value else ""


def _fraud(r: FraudRules) -> str:
    window = f"{r.window_seconds // 60} minutes"
    return (
        f"**Fraud screen.** Every card confirmation is scored before the processor is called (0 to 100; "
        f"`GET /v1/fraud/decisions` lists the decisions). From {r.elevated_at} the customer must pass 3-D Secure "
        f"whatever the card (`next_action.reason` `risk_review`); from {r.block_at} the payment is declined "
        f"with `decline_code` `fraudulent` without reaching the processor. The rules, with their weights:\n\n"
        f"- more than {r.card_velocity} confirmations with one card, {r.customer_velocity} by one customer, "
        f"{r.device_velocity} from one device or {r.ip_velocity} from one IP in {window}: "
        f"+{r.velocity_weight} for each;\n"
        f"- {r.card_testing_declines} declines of amounts up to {r.card_testing_small_amount} minor units by "
        f"one card, customer or IP in {window} (card testing): +{r.card_testing_weight};\n"
        f"- a first order of {r.first_order_large_amount} minor units or more: +{r.first_order_weight};\n"
        f"- more than {r.cards_per_customer} cards on one customer in a day: +{r.cards_weight};\n"
        f"- one promotion code used by {r.promo_accounts_sharing} or more accounts with one card or device: "
        f"+{r.promo_weight}."
    )
