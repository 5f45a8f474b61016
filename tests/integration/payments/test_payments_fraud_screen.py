"""The fraud screen's windows in real Redis (one script call per screening): each signal counts what it should,
old attempts leave their window, the promo sharing signal counts accounts."""

from __future__ import annotations

from datetime import UTC, datetime

from kernel.clock import ManualClock
from payments.live import FraudScreen
from payments.model import ALLOW, HIGHEST, FraudRules


def screen_with(redis, settings, clock: ManualClock, **rules: int) -> FraudScreen:
    return FraudScreen(redis, settings.redis_prefix, clock, FraudRules(**rules))


async def test_card_velocity_counts_attempts_across_customers_within_the_window(redis, settings) -> None:
    clock = ManualClock(datetime(2024, 6, 3, 10, 0, tzinfo=UTC))
    screen = screen_with(redis, settings, clock, card_velocity=3, velocity_weight=80)
    results = []
    for i in range(4):
        results.append(await screen.screen(attempt_id=f"pi_{i}", customer_id=f"cus_{i}", fingerprint="fp_1",
                                           amount=1000, ip=None, device_id=None, first_order=False, promo_code=None))
    assert [r.level for r in results] == [ALLOW, ALLOW, ALLOW, HIGHEST]
    assert results[-1].reasons == ("velocity:card",)
    clock.advance(3601)  # the first four left the window
    later = await screen.screen(attempt_id="pi_9", customer_id="cus_9", fingerprint="fp_1", amount=1000, ip=None,
                                device_id=None, first_order=False, promo_code=None)
    assert later.level == ALLOW


async def test_many_cards_small_declines_and_a_shared_promo_device_are_each_seen(redis, settings) -> None:
    clock = ManualClock(datetime(2024, 6, 3, 10, 0, tzinfo=UTC))
    screen = screen_with(redis, settings, clock, cards_per_customer=2, cards_weight=35, card_testing_declines=2,
                         promo_accounts_sharing=2, promo_weight=70)

    async def attempt(i: int, customer: str, card: str, device: str | None = None, promo: str | None = None):
        return await screen.screen(attempt_id=f"pi_{i}", customer_id=customer, fingerprint=card, amount=300,
                                   ip="10.0.0.1", device_id=device, first_order=False, promo_code=promo)

    for i, card in enumerate(["fp_a", "fp_b"]):
        assert (await attempt(i, "cus_1", card)).reasons == ()
    assert (await attempt(2, "cus_1", "fp_c")).reasons == ("many_cards_on_account",)
    await screen.record_decline(attempt_id="pi_d1", customer_id="cus_2", fingerprint="fp_x", ip=None, amount=300)
    await screen.record_decline(attempt_id="pi_d2", customer_id="cus_2", fingerprint="fp_y", ip=None, amount=300)
    assert (await attempt(3, "cus_2", "fp_z")).reasons == ("card_testing",)
    assert (await attempt(4, "cus_3", "fp_p", device="dev_1", promo="WELCOME")).reasons == ()
    shared = await attempt(5, "cus_4", "fp_q", device="dev_1", promo="WELCOME")
    assert shared.reasons == ("promo_abuse_shared_card_or_device",)
