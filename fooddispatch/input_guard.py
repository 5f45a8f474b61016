"""The edge rules for what no handler decodes through `kernel.http` (path ids, cursors, headers),
the same for every route:

- text PostgreSQL cannot store (a NUL, an unpaired UTF-16 surrogate) in a path parameter, a query
  parameter or a header the app keeps is 422 `validation_error` naming it, before authentication
  or any handler runs (bodies get the same rule in `kernel.http`'s decoding);
- a path id that cannot be one of ours (wrong prefix or shape) is 404 `resource_missing`, after the role
  check and before any handler looks at the body or the database, so no route answers 422 or 200
  for an id that cannot exist.
"""

from __future__ import annotations

import re

from aiohttp import web

from kernel.errors import NotFound, ValidationFailed
from kernel.http import Handler, unstorable_path
from kernel.ids import id_pattern

# Headers whose value reaches PostgreSQL, the identity lookup or a response header: aiohttp reads
# header bytes that are not UTF-8 as surrogates (its HTTP parser itself refuses a NUL in a header).
STORED_HEADERS = ("Idempotency-Key", "X-Request-Id", "Authorization", "X-Api-Key")
_MESSAGE = "text must not contain NUL characters or unpaired UTF-16 surrogates"

# Path parameters that name one of our ids, with the prefix `new_id` gives it. `id` (payment
# methods, intents, refunds, payouts) is checked for the shape only. Not here: `item_id` (menu
# items are named by the merchant), `owner` (wallets of restaurants), `region`, `day`.
PATH_ID_PREFIXES: dict[str, str | None] = {
    "order_id": "ord", "store_id": "sto", "tenant_id": "ten", "endpoint_id": "whe", "key_id": "key",
    "courier_id": "cou", "dead_letter_id": "dlq", "event_id": "evt", "id": None,
}
_PATH_IDS = {name: re.compile(id_pattern(prefix)) for name, prefix in PATH_ID_PREFIXES.items()}


def unstorable_param(request: web.Request) -> str | None:
    """The name of the first path parameter, query parameter or kept header whose text cannot be
    stored, or None."""
    for name, value in request.match_info.items():
        if unstorable_path(value) is not None:
            return name
    for name, value in request.query.items():  # every value of a repeated name, and the names
        found = unstorable_path({name: value})
        if found is not None:
            return found
    headers = request.headers
    for name in STORED_HEADERS:
        header = headers.get(name)
        if header is not None and unstorable_path(header) is not None:
            return name
    return None


@web.middleware
async def input_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    param = unstorable_param(request)
    if param is not None:
        raise ValidationFailed(_MESSAGE, param=param)
    return await handler(request)


@web.middleware
async def path_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    for name, value in request.match_info.items():
        shape = _PATH_IDS.get(name)
        if shape is not None and not shape.match(value):
            raise NotFound(f"no such {name.removesuffix('_id').replace('_', ' ') or 'object'}", param=name)
    return await handler(request)
