"""The pure payments core: cards, the intent state machine, ledger entries, fraud scores."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import InvalidTransition, ValidationFailed
from payments import model
from payments.model import Account, CardInput, FraudRules, FraudSignals, Split, assess, credit, debit


@pytest.mark.parametrize("number,brand", [
    ("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
    ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3566002020360505", "jcb"),
    ("36227206271667", "diners"), ("6200000000000005", "unionpay"),
])
def test_brand_comes_from_the_bin_and_test_numbers_pass_luhn(number: str, brand: str) -> None:
    assert model.luhn_valid(number)
    assert model.card_brand(number) == brand


def test_luhn_rejects_a_single_wrong_digit_and_non_digits() -> None:
    assert not model.luhn_valid("4242424242424241")
    assert not model.luhn_valid("42424242424242a2")
    assert not model.luhn_valid("4242")


def test_validate_card_checks_expiry_and_cvc_length_without_echoing_the_number() -> None:
    today = date(2026, 5, 1)
    facts = model.validate_card(CardInput("4242424242424242", 5, 2026, "123"), today)
    assert (facts.brand, facts.last4) == ("visa", "4242")
    with pytest.raises(ValidationFailed) as exc:
        model.validate_card(CardInput("4242424242424242", 4, 2026, "123"), today)
    assert exc.value.code == "invalid_expiry_year"
    with pytest.raises(ValidationFailed) as exc:
        model.validate_card(CardInput("378282246310005", 4, 2030, "123"), today)
    assert exc.value.code == "invalid_cvc"
    with pytest.raises(ValidationFailed) as exc:
        model.validate_card(CardInput("4242424242424241", 4, 2030, "123"), today)
    assert exc.value.code == "incorrect_number"
    assert "4242424242424241" not in exc.value.message
    assert "4242424242424242" not in repr(CardInput("4242424242424242", 1, 2030, "123"))


def test_intent_state_machine_follows_stripe() -> None:
    assert model.transition("requires_confirmation", "requires_capture") == "requires_capture"
    assert model.transition("requires_capture", "canceled") == "canceled"
    for terminal in ("succeeded", "canceled"):
        with pytest.raises(InvalidTransition):
            model.transition(terminal, "requires_capture")
    with pytest.raises(InvalidTransition):
        model.transition("requires_capture", "requires_action")


def test_capture_and_refund_limits() -> None:
    from kernel.money import Money

    model.check_capture("requires_capture", Money(1000, "EUR"), Money(1000, "EUR"))
    with pytest.raises(ValidationFailed):
        model.check_capture("requires_capture", Money(1000, "EUR"), Money(1001, "EUR"))
    with pytest.raises(InvalidTransition):
        model.check_capture("succeeded", Money(0, "EUR"), Money(1, "EUR"))
    model.check_refund("succeeded", 800, 300, Money(500, "EUR"))
    with pytest.raises(ValidationFailed):
        model.check_refund("succeeded", 800, 300, Money(501, "EUR"))


def test_entries_must_balance_in_one_currency() -> None:
    eur, usd = Account("platform_revenue", "EUR"), Account("platform_revenue", "USD")
    cash = Account("platform_cash", "EUR")
    model.entry("x", "EUR", [debit(cash, 100), credit(eur, 100)], actor="t")
    with pytest.raises(model.UnbalancedEntry):
        model.entry("x", "EUR", [debit(cash, 100), credit(eur, 99)], actor="t")
    with pytest.raises(model.UnbalancedEntry):
        model.entry("x", "EUR", [debit(cash, 100), credit(usd, 100)], actor="t")
    with pytest.raises(model.UnbalancedEntry):
        model.entry("x", "EUR", [debit(cash, 100)], actor="t")


def test_a_wallet_cannot_go_below_zero_and_a_rejected_entry_changes_nothing() -> None:
    wallet = Account("customer_wallet", "EUR", "cus_1")
    spend = model.entry("spend", "EUR", [debit(wallet, 10), credit(Account("wallet_holds", "EUR"), 10)], actor="t")
    balances = {wallet.id: 5}
    assert model.apply_to_balances(balances, spend) == wallet.id
    assert balances == {wallet.id: 5}


def test_split_must_balance_and_name_its_courier() -> None:
    ok = Split("EUR", 2500, 1800, "res_1", 400, "cou_1", 200, 100)
    ok.check()
    postings = model.split_postings(ok)
    assert sum(p.amount for p in postings) == 0
    with pytest.raises(ValidationFailed):
        Split("EUR", 2500, 1800, "res_1", 400, "cou_1", 200, 99).check()
    with pytest.raises(ValidationFailed):
        Split("EUR", 2500, 1800, "res_1", 400, None, 200, 100).check()


def test_a_split_the_platform_funds_part_of_debits_its_promotions_and_still_balances() -> None:
    # A member paid 2100 of a 2500 bill; the platform adds the 400 it waived, the parts are the full bill's.
    member = Split("EUR", 2100, 1800, "res_1", 400, "cou_1", 200, 100, platform_funded=400)
    member.check()
    postings = {p.account.id: p.amount for p in model.split_postings(member)}
    assert postings["platform_promotions:EUR"] == 400 and sum(postings.values()) == 0
    with pytest.raises(ValidationFailed):
        Split("EUR", 2100, 1800, "res_1", 400, "cou_1", 200, 100, platform_funded=399).check()
    with pytest.raises(ValidationFailed):
        Split("EUR", 2900, 1800, "res_1", 400, "cou_1", 200, 100, platform_funded=-400).check()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10_000), st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1,
                max_size=20))
def test_split_entries_always_sum_to_zero(parts: list[tuple[int, int, int]]) -> None:
    for restaurant, courier, fee in parts:
        split = Split("EUR", restaurant + courier + fee + 7, restaurant, "res_1", courier, "cou_1", fee, 7)
        split.check()
        made = model.entry("split", "EUR", model.split_postings(split), actor="t")
        assert sum(p.amount for p in made.postings) == 0


def test_fraud_levels_allow_step_up_and_block() -> None:
    rules = FraudRules()
    assert assess(FraudSignals(amount=1000), rules).level == "normal"
    first = assess(FraudSignals(amount=20_000, first_order=True, distinct_cards=5), rules)
    assert first.score == 75 and first.level == "highest"
    elevated = assess(FraudSignals(amount=1000, card_attempts=6, distinct_cards=5), rules)
    assert elevated.score == 65 and elevated.level == "elevated"
    assert elevated.reasons == ("velocity:card", "many_cards_on_account")
    testing = assess(FraudSignals(amount=100, small_declines=3), rules)
    assert testing.level == "highest" and "card_testing" in testing.reasons
    assert assess(FraudSignals(amount=1, card_attempts=99, customer_attempts=99, device_attempts=99,
                               ip_attempts=99, small_declines=9), rules).score == 100


def test_the_instant_cash_out_fee_floor_is_in_the_payouts_currency() -> None:
    from kernel.money import Money
    from payments.wallets import instant_fee

    assert instant_fee(Money(1000, "EUR")) == 50  # 1.5 % = 15 cents, floored at €0.50
    assert instant_fee(Money(100_000, "EUR")) == 1500
    assert instant_fee(Money(1000, "JPY")) == 75  # ¥75, not ¥50 read from EUR cents
    assert instant_fee(Money(10_000, "KWD")) == 150  # 0.150 KWD
    assert instant_fee(Money(300, "JPY")) == 75
    assert instant_fee(Money(30, "JPY")) == 29  # never the whole amount


def test_fraud_amount_thresholds_are_in_the_payments_currency() -> None:
    from payments.model import FraudRules, FraudSignals, assess

    rules = FraudRules()
    assert rules.amounts_for(None) == rules.amounts_for("EUR") == (500, 15_000)
    assert rules.amounts_for("JPY") == (500, 20_000)  # ¥20,000, not ¥15,000 read from EUR cents
    assert rules.amounts_for("KWD") == (1_500, 45_000)
    assert rules.amounts_for("OMR") == (5_000, 150_000)  # three decimals, the same face value
    big_eur = FraudSignals(amount=15_000, first_order=True, currency="EUR")
    same_in_jpy = FraudSignals(amount=15_000, first_order=True, currency="JPY")
    assert "new_account_large_first_order" in assess(big_eur, rules).reasons
    assert "new_account_large_first_order" not in assess(same_in_jpy, rules).reasons
