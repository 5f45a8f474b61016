"""The catalog's errors, each with a stable code. Rendered by the one error middleware."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, ValidationFailed


class StoreNotFound(NotFound):
    """Unknown store, or another tenant's store: the two are never told apart."""

    code = "store_not_found"


class TenantNotFound(NotFound):
    code = "tenant_not_found"


class ItemNotFound(NotFound):
    code = "item_not_found"


class ItemUnavailable(ValidationFailed):
    """The item or option exists but cannot be ordered now (hidden, sold out, no stock)."""

    code = "item_unavailable"


class InvalidSelection(ValidationFailed):
    """A cart line breaks a modifier rule (min/max selections, per-option quantity, unknown option)."""

    code = "invalid_selection"


class OutOfStock(Conflict):
    """Not enough stock left for an item; `param` is the item id."""

    code = "out_of_stock"


class StaleVersion(Conflict):
    code = "stale_version"
