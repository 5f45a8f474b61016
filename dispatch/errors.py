"""The dispatch package's errors, each with a stable `code` and HTTP status."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound


class RegionNotFound(NotFound):
    """Unknown region. Every 404 says `resource_missing`; `param` says which."""

    default_param = "region"


class LeaseLost(Conflict):
    """This process no longer holds the region's lease (a newer fencing token has written)."""

    code = "lease_lost"


__all__ = ["LeaseLost", "RegionNotFound"]
