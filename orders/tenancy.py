"""Which stores a caller may act for: a restaurant's staff, its own tenant's; operators, any.

Another tenant's store and an unknown one get the same 404 `resource_missing`, checked before anything
else of the request is looked at, so no answer tells a store of another tenant from no store.
The owner comes from the catalog (`store_tenant`), the package that owns stores.
"""

from __future__ import annotations

import asyncpg

from kernel.errors import NotFound
from kernel.http import Principal
from orders.ports import Catalog


def tenant_scope(who: Principal) -> str | None:
    """The tenant `who` is limited to (None: an operator, every tenant). Staff without a tenant
    get a scope that matches no store."""
    return None if who.is_operator() else (who.tenant_id or "")


class StoreAccess:
    def __init__(self, pool: asyncpg.Pool, catalog: Catalog) -> None:
        self.pool = pool
        self.catalog = catalog

    async def owner(self, store_id: str, scope: str | None) -> str:
        async with self.pool.acquire() as conn:
            return await self.owner_on(conn, store_id, scope)

    async def owner_on(self, conn: asyncpg.Connection, store_id: str, scope: str | None) -> str:
        """The tenant that owns `store_id`, when a caller limited to `scope` may act for it."""
        owner = await self.catalog.store_tenant(conn, store_id)
        if owner is None or (scope is not None and owner != scope):
            raise NotFound("no such store", param="store_id")
        return owner
