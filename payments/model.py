"""The pure payments domain: cards, the payment-intent state machine, ledger
postings and the fraud score. No I/O, no asyncio.

Ledger sign convention: a posting's amount is positive for a debit and negative
for a credit, so every journal entry sums to zero. An account's *natural*
balance is what its owner would call its balance: debits minus credits for a
debit-normal account (cash, receivables, expenses), credits minus debits for a
credit-normal one (wallets, payables, revenue). Wallet-like accounts are
`non_negative`: no entry may take their natural balance below zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction

from kernel.errors import InvalidTransition, ValidationFailed
from kernel.money import Money, currency_exponent, is_known_currency, round_half_even

# ---------------------------------------------------------------- cards

_DIGITS = re.compile(r"^\d{12,19}$")


def normalize_number(raw: str) -> str:
    """Digits only; spaces and dashes are how people type card numbers."""
    return raw.replace(" ", "").replace("-", "")


def luhn_valid(number: str) -> bool:
    if not _DIGITS.match(number):
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_brand(number: str) -> str:
    """The network from the BIN (issuer identification number) ranges."""
    two, four, six = int(number[:2]), int(number[:4]), int(number[:6])
    if number.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 222100 <= six <= 272099:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if four == 6011 or two == 65 or 644 <= int(number[:3]) <= 649 or 622126 <= six <= 622925:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (36, 38, 39) or 300 <= int(number[:3]) <= 305:
        return "diners"
    if two == 62:
        return "unionpay"
    return "unknown"


def cvc_length(brand: str) -> int:
    return 4 if brand == "amex" else 3


@dataclass(frozen=True, slots=True)
class CardInput:
    number: str
    exp_month: int
    exp_year: int
    cvc: str

    def __repr__(self) -> str:  # never let a PAN or CVC reach a log through repr()
        return f"CardInput(last4={self.number[-4:]!r}, exp={self.exp_month:02d}/{self.exp_year})"


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What may be shown and stored in the clear."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int


def validate_card(card: CardInput, today: date) -> CardFacts:
    """Luhn, expiry and CVC format; raises ValidationFailed with Stripe's codes.
    Messages never echo the number."""
    number = card.number
    if not luhn_valid(number):
        raise ValidationFailed("Your card number is incorrect.", param="card.number", code="incorrect_number")
    if not 1 <= card.exp_month <= 12:
        raise ValidationFailed("Your card's expiration month is invalid.", param="card.exp_month",
                               code="invalid_expiry_month")
    if (card.exp_year, card.exp_month) < (today.year, today.month) or card.exp_year > today.year + 50:
        raise ValidationFailed("Your card's expiration year is invalid.", param="card.exp_year",
                               code="invalid_expiry_year")
    brand = card_brand(number)
    if not card.cvc.isdigit() or len(card.cvc) != cvc_length(brand):
        raise ValidationFailed("Your card's security code is invalid.", param="card.cvc", code="invalid_cvc")
    return CardFacts(brand=brand, last4=number[-4:], exp_month=card.exp_month, exp_year=card.exp_year)


# ---------------------------------------------------------------- intents

REQUIRES_PAYMENT_METHOD = "requires_payment_method"
REQUIRES_CONFIRMATION = "requires_confirmation"
REQUIRES_ACTION = "requires_action"
PROCESSING = "processing"
REQUIRES_CAPTURE = "requires_capture"
SUCCEEDED = "succeeded"
CANCELED = "canceled"

_CONFIRM_OUTCOMES = {REQUIRES_ACTION, PROCESSING, REQUIRES_CAPTURE, SUCCEEDED, REQUIRES_PAYMENT_METHOD, CANCELED}
TRANSITIONS: dict[str, frozenset[str]] = {
    REQUIRES_PAYMENT_METHOD: frozenset({REQUIRES_CONFIRMATION} | _CONFIRM_OUTCOMES),
    REQUIRES_CONFIRMATION: frozenset(_CONFIRM_OUTCOMES),
    REQUIRES_ACTION: frozenset(_CONFIRM_OUTCOMES - {REQUIRES_ACTION}),
    PROCESSING: frozenset({REQUIRES_CAPTURE, SUCCEEDED, REQUIRES_PAYMENT_METHOD, REQUIRES_ACTION, CANCELED}),
    REQUIRES_CAPTURE: frozenset({SUCCEEDED, CANCELED}),
    SUCCEEDED: frozenset(),
    CANCELED: frozenset(),
}

# Where the hold on the customer's funds stands; every hold ends exactly once.
HOLD_NONE = "none"
HOLD_HELD = "held"
HOLD_CAPTURED = "captured"
HOLD_RELEASED = "released"


def transition(current: str, target: str) -> str:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"You cannot move a PaymentIntent from status {current} to {target}.",
            code="payment_intent_unexpected_state", extra={"type": "invalid_request_error"},
        )
    return target


def starts_new_attempt(status: str, last_error: dict[str, object] | None) -> bool:
    """Whether confirming an intent with a payment method starts a new authorization attempt: its last
    one failed (declined, blocked by the risk rules, or 3-D Secure failed all leave it
    `requires_payment_method` with its `last_payment_error`), so the processor must be asked afresh,
    under a key of the new attempt's own. An intent never confirmed yet (no error) is still on its first."""
    return status == REQUIRES_PAYMENT_METHOD and last_error is not None


def check_capture(status: str, capturable: Money, amount: Money) -> None:
    if status != REQUIRES_CAPTURE:
        transition(status, SUCCEEDED)
    if amount.currency != capturable.currency:
        raise ValidationFailed("capture currency differs from the authorization", param="amount_to_capture")
    if not 0 < amount.amount <= capturable.amount:
        raise ValidationFailed(
            f"amount_to_capture must be between 1 and the authorized {capturable.amount}",
            param="amount_to_capture", code="amount_too_large", extra={"type": "invalid_request_error"},
        )


def check_refund(status: str, captured: int, refunded: int, amount: Money) -> None:
    if status != SUCCEEDED:
        raise InvalidTransition("only a succeeded PaymentIntent can be refunded",
                                code="charge_not_refundable", extra={"type": "invalid_request_error"})
    if amount.amount <= 0 or refunded + amount.amount > captured:
        raise ValidationFailed(
            f"refund of {amount.amount} exceeds what remains refundable ({captured - refunded})",
            param="amount", code="amount_too_large", extra={"type": "invalid_request_error"},
        )


# ---------------------------------------------------------------- ledger


@dataclass(frozen=True, slots=True)
class AccountKind:
    name: str
    normal: str  # "debit" | "credit"
    non_negative: bool
    owned: bool  # one account per owner (customer, restaurant, courier) and currency


ACCOUNT_KINDS = {k.name: k for k in (
    AccountKind("customer_card_clearing", "credit", False, False),  # captured customer money awaiting its split
    AccountKind("processor_clearing", "debit", False, False),  # owed to us by the card processor
    AccountKind("customer_wallet", "credit", True, True),
    AccountKind("wallet_holds", "credit", True, False),  # wallet money held by authorized intents
    AccountKind("restaurant_payable", "credit", True, True),  # the restaurant balance
    AccountKind("courier_earnings", "credit", True, True),  # the courier wallet
    AccountKind("platform_revenue", "credit", False, False),
    AccountKind("tax_payable", "credit", False, False),
    AccountKind("payouts_in_transit", "credit", True, False),
    AccountKind("platform_cash", "debit", False, False),  # the bank account payouts leave from
    AccountKind("platform_refunds", "debit", False, False),  # refunds borne by the platform (expense)
    AccountKind("platform_promotions", "debit", False, False),  # promotional credit granted (expense)
    # The platform's position in one currency from conversions: what it took in (credit) and paid out
    # (debit) of that currency; the pair of a conversion's currencies, at their rates, is its FX result.
    AccountKind("fx_clearing", "credit", False, False),
)}


@dataclass(frozen=True, slots=True)
class Account:
    kind: str
    currency: str
    owner: str | None = None

    def __post_init__(self) -> None:
        spec = ACCOUNT_KINDS.get(self.kind)
        if spec is None:
            raise ValueError(f"unknown account kind {self.kind!r}")
        if spec.owned != (self.owner is not None):
            raise ValueError(f"account kind {self.kind} {'needs' if spec.owned else 'takes no'} owner")

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.owner}:{self.currency}" if self.owner else f"{self.kind}:{self.currency}"

    @property
    def spec(self) -> AccountKind:
        return ACCOUNT_KINDS[self.kind]

    def natural(self, amount: int) -> int:
        """How a posting of `amount` (debit-positive) changes this account's natural balance."""
        return amount if self.spec.normal == "debit" else -amount

    @classmethod
    def parse(cls, account_id: str) -> Account:
        parts = account_id.split(":")
        if len(parts) == 3:
            return cls(parts[0], parts[2], parts[1])
        return cls(parts[0], parts[1])


@dataclass(frozen=True, slots=True)
class Posting:
    account: Account
    amount: int  # debit positive, credit negative, minor units of account.currency


def debit(account: Account, amount: int) -> Posting:
    return Posting(account, amount)


def credit(account: Account, amount: int) -> Posting:
    return Posting(account, -amount)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An immutable set of postings that sum to zero in one currency."""

    id: str
    kind: str  # capture, split, refund, wallet_hold, payout, ...
    currency: str
    postings: tuple[Posting, ...]
    actor: str  # who moved the money (an account id or "system")
    reason: str = ""
    reference: str | None = None  # the order (or other business object) that caused it
    intent_id: str | None = None
    refund_id: str | None = None
    payout_id: str | None = None
    processor_ref: str | None = None  # charge or refund id at the processor, for reconciliation
    idempotency_key: str | None = None
    reverses: str | None = None


class UnbalancedEntry(ValueError):
    pass


def check_entry(entry: JournalEntry) -> None:
    """≥ 2 postings, one currency, no zero or repeated accounts, sum zero."""
    if not is_known_currency(entry.currency):
        raise UnbalancedEntry(f"unknown currency {entry.currency!r}")
    if len(entry.postings) < 2:
        raise UnbalancedEntry("an entry needs at least two postings")
    seen: set[str] = set()
    total = 0
    for p in entry.postings:
        if p.account.currency != entry.currency:
            raise UnbalancedEntry("currencies never mix inside an entry")
        if p.amount == 0:
            raise UnbalancedEntry("a posting of zero moves nothing")
        if p.account.id in seen:
            raise UnbalancedEntry(f"account {p.account.id} appears twice")
        seen.add(p.account.id)
        total += p.amount
    if total != 0:
        raise UnbalancedEntry(f"postings sum to {total}, not zero")


def entry(kind: str, currency: str, postings: Iterable[Posting], **kw: object) -> JournalEntry:
    """Build an entry, dropping zero postings (a split with no courier fee, say)."""
    from kernel.ids import new_id

    kept = tuple(p for p in postings if p.amount != 0)
    made = JournalEntry(id=new_id("je"), kind=kind, currency=currency, postings=kept, **kw)  # type: ignore[arg-type]
    check_entry(made)
    return made


def apply_to_balances(balances: dict[str, int], entry_: JournalEntry) -> str | None:
    """Apply an entry to natural balances in place if no non-negative account goes
    below zero; returns the offending account id (and changes nothing) otherwise."""
    new: dict[str, int] = {}
    for p in entry_.postings:
        value = balances.get(p.account.id, 0) + p.account.natural(p.amount)
        if p.account.spec.non_negative and value < 0:
            return p.account.id
        new[p.account.id] = value
    balances.update(new)
    return None


@dataclass(frozen=True, slots=True)
class Split:
    """How a captured customer charge divides, in minor units of `currency`."""

    currency: str
    customer_charged: int
    restaurant_payable: int
    restaurant_id: str
    courier_earnings: int
    courier_id: str | None
    platform_revenue: int
    tax_payable: int
    # What the platform adds from `platform_promotions` (an expense) to what the customer paid: a member's
    # discount (memberships), so the parts are those of the same bill without it.
    platform_funded: int = 0

    def check(self) -> None:
        parts = (self.restaurant_payable, self.courier_earnings, self.platform_revenue, self.tax_payable)
        if min((self.customer_charged, self.platform_funded, *parts)) < 0:
            raise ValidationFailed("split amounts must not be negative", param="split")
        if self.customer_charged + self.platform_funded != sum(parts):
            raise ValidationFailed(
                f"split does not balance: charged {self.customer_charged} + funded {self.platform_funded} "
                f"!= {sum(parts)}", param="split", code="split_unbalanced",
            )
        if self.courier_earnings and not self.courier_id:
            raise ValidationFailed("courier earnings need a courier_id", param="split.courier_id")


def split_postings(split: Split) -> list[Posting]:
    c = split.currency
    postings = [
        debit(Account("customer_card_clearing", c), split.customer_charged),
        credit(Account("restaurant_payable", c, split.restaurant_id), split.restaurant_payable),
        credit(Account("platform_revenue", c), split.platform_revenue),
        credit(Account("tax_payable", c), split.tax_payable),
        debit(Account("platform_promotions", c), split.platform_funded),
    ]
    if split.courier_id:
        postings.append(credit(Account("courier_earnings", c, split.courier_id), split.courier_earnings))
    return postings


# ---------------------------------------------------------------- fraud


@dataclass(frozen=True, slots=True)
class FraudRules:
    """Thresholds and weights; every rule adds its weight to a score capped at 100."""

    window_seconds: int = 3600
    card_velocity: int = 5  # confirmations per card fingerprint per window
    customer_velocity: int = 8
    device_velocity: int = 10
    ip_velocity: int = 20
    velocity_weight: int = 30
    card_testing_declines: int = 3  # small declines per fingerprint, customer or IP per window
    card_testing_small_amount: int = 500  # minor units at or below which a decline counts as "small"
    card_testing_weight: int = 80
    first_order_large_amount: int = 15_000  # minor units (150.00 in a 2-decimal currency)
    first_order_weight: int = 40
    cards_per_customer: int = 4  # distinct fingerprints per customer per day
    cards_weight: int = 35
    promo_accounts_sharing: int = 2  # distinct accounts using one promo with one card/device
    promo_weight: int = 70
    elevated_at: int = 65
    block_at: int = 75
    # The two amounts above are minor units of a two-decimal currency (€5.00, €150.00); these currencies
    # have their own (small, large), any other the same face value in its minor units.
    amounts_by_currency: tuple[tuple[str, int, int], ...] = (
        ("JPY", 500, 20_000), ("KRW", 5_000, 200_000), ("KWD", 1_500, 45_000), ("BHD", 2_000, 55_000))

    def amounts_for(self, currency: str | None) -> tuple[int, int]:
        """(card-testing small amount, large first order) in minor units of `currency` (None: as given)."""
        small, large = self.card_testing_small_amount, self.first_order_large_amount
        if currency is None:
            return small, large
        for code, s, l_ in self.amounts_by_currency:
            if code == currency:
                return s, l_
        factor = Fraction(10 ** currency_exponent(currency), 100)
        return round_half_even(small * factor), round_half_even(large * factor)


@dataclass(frozen=True, slots=True)
class FraudSignals:
    amount: int
    card_attempts: int = 0
    customer_attempts: int = 0
    device_attempts: int = 0
    ip_attempts: int = 0
    small_declines: int = 0
    distinct_cards: int = 0
    first_order: bool = False
    promo_accounts: int = 0
    currency: str | None = None  # of `amount`; None: the rules' amounts as given


ALLOW = "normal"
ELEVATED = "elevated"
HIGHEST = "highest"


@dataclass(frozen=True, slots=True)
class FraudAssessment:
    score: int
    level: str  # normal: allow, elevated: require authentication, highest: block
    reasons: tuple[str, ...] = field(default_factory=tuple)


def assess(signals: FraudSignals, rules: FraudRules = FraudRules()) -> FraudAssessment:
    score = 0
    reasons: list[str] = []

    def hit(weight: int, reason: str) -> None:
        nonlocal score
        score += weight
        reasons.append(reason)

    velocity = [
        ("card", signals.card_attempts, rules.card_velocity),
        ("customer", signals.customer_attempts, rules.customer_velocity),
        ("device", signals.device_attempts, rules.device_velocity),
        ("ip", signals.ip_attempts, rules.ip_velocity),
    ]
    over = [name for name, seen, limit in velocity if seen > limit]
    if over:
        hit(rules.velocity_weight * len(over), f"velocity:{','.join(over)}")
    if signals.small_declines >= rules.card_testing_declines:
        hit(rules.card_testing_weight, "card_testing")
    if signals.first_order and signals.amount >= rules.amounts_for(signals.currency)[1]:
        hit(rules.first_order_weight, "new_account_large_first_order")
    if signals.distinct_cards > rules.cards_per_customer:
        hit(rules.cards_weight, "many_cards_on_account")
    if signals.promo_accounts >= rules.promo_accounts_sharing:
        hit(rules.promo_weight, "promo_abuse_shared_card_or_device")
    score = min(score, 100)
    level = HIGHEST if score >= rules.block_at else ELEVATED if score >= rules.elevated_at else ALLOW
    return FraudAssessment(score, level, tuple(reasons))
