"""The catalog: tenants, stores, menus with modifiers, opening hours, zones, stock, discovery.

Public interface for other packages (`orders/`): `CatalogService` (found in the app under
`catalog.web.CATALOG`) with `cart_quote` (store, special days, menu and stock for a quote in one read),
`quote_context`, `store_tenant`, `resolve_cart`, `reserve` and `release`,
each taking the caller's asyncpg connection, and the types below.
"""

from catalog.errors import InvalidSelection, ItemUnavailable, OutOfStock
from catalog.menu import CartQuote
from catalog.messages import CartLineInput, SelectedOption
from catalog.model import QuoteContext, ResolvedLine, ResolvedOption
from catalog.service import CatalogService

__all__ = [
    "CartLineInput",
    "CartQuote",
    "CatalogService",
    "InvalidSelection",
    "ItemUnavailable",
    "OutOfStock",
    "QuoteContext",
    "ResolvedLine",
    "ResolvedOption",
    "SelectedOption",
]
