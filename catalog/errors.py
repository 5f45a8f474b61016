"""The catalog's errors, each with a stable code. Rendered by the one error middleware."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, ValidationFailed


class StoreNotFound(NotFound):
    """Unknown store, or another tenant's store: the two are never told apart. Every 404 says
    `resource_missing` (the README's promise); `param` and the message say what was missing."""

    default_param = "store_id"


class TenantNotFound(NotFound):
    """Unknown tenant, or not the caller's."""

    default_param = "tenant_id"


class ItemNotFound(NotFound):
    """Unknown menu item on this store."""

    default_param = "item_id"


class ItemUnavailable(ValidationFailed):
    """The item or option exists but cannot be ordered now (hidden, sold out, no stock)."""

    code = "item_unavailable"


class InvalidSelection(ValidationFailed):
    """A cart line breaks a modifier rule (min/max selections, per-option quantity, unknown option)."""

    code = "invalid_selection"


class OutOfStock(Conflict):
    """Not enough stock left for an item; `param` is the item id."""

    code = "out_of_stock"


class CurrencyFixed(Conflict):
    """A store's prices (menu, delivery fee bands) are minor units of its currency: changing the
    currency under them would reprice everything by a factor (€10.00 read as ¥1,000)."""

    code = "store_currency_fixed"
