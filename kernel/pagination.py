"""Cursor pagination: one rule for every list's cursor.

A list hands out `next_cursor`; the client passes it back (`cursor`, or `starting_after` on the
Stripe-shaped payments lists) unchanged. A cursor the list cannot have handed out is 400
`cursor_invalid` naming the parameter, on every list, before any handler runs:

- an id cursor (the last id of the previous page) is declared `Annotated[str, id_cursor(prefix)]`:
  an id of exactly that kind, so another kind's id (`ord_...` on a payouts list) is refused like
  garbage;
- an opaque cursor (a sort key, `encode_opaque`) is declared `OpaqueCursor` and read back with
  `decode_opaque`.

`kernel.http.decode_query`, the one decoder of every query, refuses a cursor that breaks its
declared shape through `refuse_malformed_cursor`; a handler never checks a cursor by hand.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import msgspec

from kernel.errors import DomainError
from kernel.ids import id_pattern

# The names a list's cursor parameter goes by.
CURSOR_PARAMS = frozenset({"cursor", "starting_after", "ending_before"})
_HINT = "pass a page's next_cursor back unchanged"


class CursorInvalid(DomainError):
    status = 400
    code = "cursor_invalid"


def id_cursor(prefix: str, what: str = "the last id of the previous page") -> msgspec.Meta:
    """The shape of a cursor that is an id `new_id(prefix)` made: `Annotated[str, id_cursor("ord")]`."""
    return msgspec.Meta(pattern=id_pattern(prefix), description=f"{what} (its `next_cursor`)")


OpaqueCursor = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,256}$",
                                            description="the previous page's `next_cursor`, unchanged")]


def refuse_malformed_cursor(param: str | None) -> None:
    """400 `cursor_invalid` when the query parameter `param`, which broke its declared shape, is a cursor."""
    if param in CURSOR_PARAMS:
        raise CursorInvalid(f"{param} is not a cursor this list handed out: {_HINT}", param=param)


def encode_opaque(value: Any) -> str:
    """A cursor carrying `value` (JSON-able: a sort key), URL-safe."""
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_opaque(text: str, param: str = "cursor") -> Any:
    """The value `encode_opaque` put in `text`; 400 `cursor_invalid` when it holds none."""
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError):  # binascii.Error and JSONDecodeError are ValueErrors
        raise CursorInvalid(f"{param} is not a cursor this list handed out: {_HINT}", param=param) from None
