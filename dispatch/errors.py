"""The dispatch package's errors, each with a stable `code` and HTTP status."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound


class RegionNotFound(NotFound):
    """Unknown region. Every 404 says `not_found`; `param` says which."""


class LeaseLost(Conflict):
    """This process no longer holds the region's lease (a newer fencing token has written)."""

    code = "lease_lost"


__all__ = ["LeaseLost", "RegionNotFound"]
