"""Who accepts offers: each courier's acceptance learned from its answers, per band of trip time.

Couriers differ (real fleets see 15-25 % of offers declined, most of them by a few couriers), and a
declined offer costs its orders the offer timeout. The cost model prices that risk
(`cost.pair_costs`, from `Courier.acceptance`); this module estimates it. Pure: counts in, chances out.

Three levels, each shrunk towards the one above by a few pseudo-offers, so one early decline does
not brand a courier and a courier with no history gets the fleet's rate:
- the fleet: accepted / offered, starting from "everyone accepts" (`prior_offers` pseudo-offers all
  accepted), so a fleet that never declines prices no risk at all;
- a courier: its own answers, shrunk towards the fleet's rate by `courier_weight` offers;
- a courier and band (`cost.OFFER_BANDS_S`: short, medium, long trips): shrunk towards the
  courier's rate by `band_weight` offers; a courier who takes short trips but not long ones shows here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from dispatch.cost import OFFER_BANDS_S, offer_bands

N_BANDS = len(OFFER_BANDS_S) + 1


def offer_band(trip_s: float) -> int:
    """The band of an offer whose trip (to the restaurant and on to the customers) takes `trip_s`."""
    return int(offer_bands(np.array([trip_s]))[0])


@dataclass(frozen=True, slots=True)
class AcceptanceLearning:
    prior_offers: float = 10.0  # pseudo-offers, all accepted, behind the fleet's rate
    courier_weight: float = 4.0  # offers before a courier's own answers outweigh the fleet's rate
    band_weight: float = 4.0  # offers in a band before they outweigh the courier's rate

    def __post_init__(self) -> None:
        if min(self.prior_offers, self.courier_weight, self.band_weight) <= 0:
            raise ValueError("prior_offers, courier_weight and band_weight must be positive")


@dataclass(slots=True)
class AcceptanceBook:
    """Offers made and accepted, per courier and band. Mutable: a replay adds each answer as it
    comes; the live dispatcher builds one per round from stored counts (`from_counts`)."""

    learning: AcceptanceLearning = field(default_factory=AcceptanceLearning)
    offered: Counter[tuple[str, int]] = field(default_factory=Counter)
    accepted: Counter[tuple[str, int]] = field(default_factory=Counter)
    fleet_offered: int = 0
    fleet_accepted: int = 0

    @classmethod
    def from_counts(cls, rows: Iterable[tuple[str, int, int, int]],
                    learning: AcceptanceLearning | None = None) -> AcceptanceBook:
        """From (courier id, band, offers, accepted) rows; the fleet's totals are their sums."""
        book = cls(learning or AcceptanceLearning())
        for courier_id, band, offers, accepted in rows:
            book.add(courier_id, band, offers, accepted)
        return book

    def add(self, courier_id: str, band: int, offers: int, accepted: int) -> None:
        if not 0 <= accepted <= offers or not 0 <= band < N_BANDS:
            raise ValueError("need 0 <= accepted <= offers and a known band")
        self.offered[(courier_id, band)] += offers
        self.accepted[(courier_id, band)] += accepted
        self.fleet_offered += offers
        self.fleet_accepted += accepted

    def observe(self, courier_id: str, trip_s: float, accepted: bool) -> None:
        """One answer: `courier_id` accepted (or declined, or let lapse) an offer of a `trip_s` trip."""
        self.add(courier_id, offer_band(trip_s), 1, int(accepted))

    def fleet_rate(self) -> float:
        prior = self.learning.prior_offers
        return (self.fleet_accepted + prior) / (self.fleet_offered + prior)

    def acceptance(self, courier_id: str) -> tuple[float, ...]:
        """The chance `courier_id` accepts an offer, per band; () when no one has ever declined
        (the cost model then prices no risk, exactly as for a perfect fleet)."""
        if self.fleet_accepted == self.fleet_offered:
            return ()
        fleet = self.fleet_rate()
        learning = self.learning
        bands = [(self.offered.get((courier_id, b), 0), self.accepted.get((courier_id, b), 0)) for b in range(N_BANDS)]
        offers = sum(n for n, _ in bands)
        courier = (sum(a for _, a in bands) + learning.courier_weight * fleet) / (offers + learning.courier_weight)
        return tuple((a + learning.band_weight * courier) / (n + learning.band_weight) for n, a in bands)
