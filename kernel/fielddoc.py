"""Documentation of wire fields for the OpenAPI document, with msgspec's own machinery.

`doc(description, *examples)` is the `msgspec.Meta` a field of a wire Struct carries next to its type
(`name: Annotated[str, doc("The store's name", "Pizza Uno")]`); msgspec puts both into the JSON schema,
so the reference an app developer reads is the type the server decodes with. The constants below are
the fields many packages share, documented once. A Struct's docstring is its schema's description.
"""

from __future__ import annotations

from typing import Any

from msgspec import Meta


def doc(description: str, *examples: Any) -> Meta:
    """A field's description and its examples, which must validate against the type. Only a field whose
    type is another Struct (or a list or an optional one) goes without: that Struct documents its fields."""
    return Meta(description=description, examples=list(examples)) if examples else Meta(description=description)


# Money: an integer number of minor units plus an ISO 4217 currency, never a float.
AMOUNT = doc("Amount in integer minor units of `currency` (cents for EUR: 1250 is 12.50)", 1250)
CURRENCY = doc("ISO 4217 currency code, upper case", "EUR")
# Pagination: lists answer `data`, `has_more` and `next_cursor`; the next page is asked with `cursor`.
LIMIT = doc("How many items to return at most", 20)
CURSOR = doc("Where to continue: the `next_cursor` of the previous page; absent for the first page",
             "ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA")
NEXT_CURSOR = doc("Pass as `cursor` to fetch the next page; null on the last page",
                  "ord_01JE3ZK4Q8N3W6V5T2R1P0M9XA")
HAS_MORE = doc("Whether another page follows this one", False)
# Places: WGS84 degrees.
LAT = doc("Latitude in WGS84 degrees", 52.5200)
LNG = doc("Longitude in WGS84 degrees", 13.4050)
