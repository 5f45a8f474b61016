"""The vault (AES-GCM, key ids, fingerprints) and the processor's resilience."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.exceptions import InvalidTag

from kernel.money import Money
from payments.processor import (
    CardForProcessor,
    CircuitBreaker,
    ProcessorRefusedError,
    ProcessorUnavailableError,
    ResilientProcessor,
    TestModeProcessor,
)
from payments.vault import Vault, VaultError

KEY = base64.b64encode(b"k" * 32).decode()
NEW_KEY = base64.b64encode(os.urandom(32)).decode()


def test_vault_round_trips_and_binds_the_ciphertext_to_its_method() -> None:
    vault = Vault(KEY)
    sealed = vault.seal("4242424242424242", "pm_1")
    assert b"4242" not in sealed.ciphertext
    assert vault.open(sealed, "pm_1") == "4242424242424242"
    with pytest.raises(InvalidTag):
        vault.open(sealed, "pm_2")


def test_rotation_opens_old_cards_with_the_retired_key_and_seals_new_ones_with_the_active_one() -> None:
    old = Vault(KEY)
    sealed = old.seal("4242424242424242", "pm_1")
    rotated = Vault(NEW_KEY, retired_keys_b64=(KEY,))
    assert rotated.active_key_id != sealed.key_id
    assert rotated.open(sealed, "pm_1") == "4242424242424242"
    assert rotated.seal("4242424242424242", "pm_2").key_id == rotated.active_key_id
    with pytest.raises(VaultError):
        Vault(NEW_KEY).open(sealed, "pm_1")


def test_fingerprint_is_keyed_and_stable() -> None:
    vault = Vault(KEY)
    assert vault.fingerprint("4242424242424242") == Vault(KEY).fingerprint("4242424242424242")
    assert vault.fingerprint("4242424242424242") != vault.fingerprint("5555555555554444")
    assert vault.fingerprint("4242424242424242") != Vault(NEW_KEY).fingerprint("4242424242424242")
    with pytest.raises(VaultError):
        Vault(base64.b64encode(b"short").decode())


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CARD = CardForProcessor("4242424242424242", 12, 2030)


async def test_retries_use_the_same_key_so_a_lost_response_does_not_charge_twice() -> None:
    inner = TestModeProcessor(lose_responses=True)
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        inner.lose_responses = len(slept) < 2  # the third attempt gets its answer

    wrapped = ResilientProcessor(inner, CircuitBreaker(Ticks()), retries=2, backoff=0.01, sleep=sleep)
    result = await wrapped.authorize(CARD, Money(1000, "EUR"), "pi_1")
    assert result.outcome == "authorized"
    assert (await inner.authorizations()) == 1 and inner.calls == 3
    assert slept[1] > slept[0]  # exponential backoff


async def test_declines_are_answers_and_are_not_retried() -> None:
    inner = TestModeProcessor()
    wrapped = ResilientProcessor(inner, CircuitBreaker(Ticks()), retries=3, backoff=0)
    result = await wrapped.authorize(CardForProcessor("4000000000000002", 1, 2030), Money(1, "EUR"), "pi_2")
    assert (result.outcome, result.decline_code) == ("declined", "generic_decline")
    assert inner.calls == 1


async def test_timeouts_count_as_failures_and_the_breaker_opens_then_half_opens() -> None:
    ticks = Ticks()
    inner = TestModeProcessor(latency=0.2)
    breaker = CircuitBreaker(ticks, threshold=2, cooldown=10)
    wrapped = ResilientProcessor(inner, breaker, timeout=0.01, retries=1, backoff=0)
    with pytest.raises(ProcessorUnavailableError):
        await wrapped.authorize(CARD, Money(1, "EUR"), "pi_3")
    assert breaker.state == "open"
    calls = inner.calls
    with pytest.raises(ProcessorUnavailableError, match="circuit open"):
        await wrapped.authorize(CARD, Money(1, "EUR"), "pi_3")
    assert inner.calls == calls  # an open circuit does not call
    ticks.now = 11
    inner.latency = 0
    assert breaker.state == "half_open"
    assert (await wrapped.authorize(CARD, Money(1, "EUR"), "pi_3")).outcome == "authorized"
    assert breaker.state == "closed"
    assert (await inner.authorizations()) == 1


@pytest.mark.parametrize("number,outcome,code", [
    ("4242424242424242", "authorized", None), ("4000000000000002", "declined", "generic_decline"),
    ("4000000000009995", "declined", "insufficient_funds"), ("4000000000000069", "declined", "expired_card"),
    ("4000000000000127", "declined", "incorrect_cvc"), ("4000000000000119", "declined", "processing_error"),
    ("4000002500003155", "requires_action", None), ("4100000000000019", "declined", "fraudulent"),
])
async def test_test_cards_behave_like_stripes(number: str, outcome: str, code: str | None) -> None:
    result = await TestModeProcessor().authorize(CardForProcessor(number, 1, 2030), Money(500, "EUR"), "k")
    assert (result.outcome, result.decline_code) == (outcome, code)


async def test_a_refusal_is_an_answer_not_retried_and_not_a_breaker_failure() -> None:
    inner = TestModeProcessor()
    breaker = CircuitBreaker(Ticks(), threshold=1, cooldown=10)
    wrapped = ResilientProcessor(inner, breaker, retries=3, backoff=0)
    with pytest.raises(ProcessorRefusedError) as refused:
        await wrapped.capture("ch_unknown", Money(100, "EUR"), "pi_9:capture")
    assert refused.value.code == "resource_missing"
    assert inner.calls == 1 and breaker.state == "closed"
