"""How the catalog facade is put together: its collaborators are built in its constructor with the
dependencies they use, share one cache of parsed store rules, and none holds a reference back to
the facade (the merchant side tells discovery of a change through discovery's own `changed`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from catalog.service import CatalogService
from kernel.clock import ManualClock

POOL = object()  # never used by the constructor


def facade() -> CatalogService:
    return CatalogService(POOL, ManualClock(datetime(2026, 12, 7, tzinfo=UTC)),  # type: ignore[arg-type]
                          default_region="berlin")


def collaborators(service: CatalogService) -> dict[str, Any]:
    return {name: part for name, part in vars(service).items() if type(part).__module__.startswith("catalog.")}


def test_catalog_collaborators_hold_no_reference_back_to_the_facade() -> None:
    service = facade()
    for name, part in collaborators(service).items():
        for attr, value in vars(part).items():
            assert value is not service, f"{name}.{attr} is the facade"
            assert getattr(value, "__self__", None) is not service, f"{name}.{attr} is a method of the facade"


def test_catalog_collaborators_share_the_rules_cache_and_tell_discovery_of_changes() -> None:
    service = facade()
    assert {type(p).__name__ for p in collaborators(service).values()} >= {"Merchant", "Customer", "Checkout"}
    assert service.customer.rules is service.checkout.rules is service.rules  # parsed once per store version
    assert service.merchant.pool is service.customer.pool is POOL
    assert service.merchant.default_region == "berlin"
    assert not service.customer._dirty
    service.merchant.on_change()  # what a committed merchant command calls
    assert service.customer._dirty  # discovery looks for the change before its next answer
