"""Identifiers: prefixed, time-ordered, URL-safe (`ord_01J...`).

Time-ordered ids keep B-tree inserts at the right edge of the index and make
cursor pagination by id equal to pagination by creation time.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def id_pattern(prefix: str | None = None) -> str:
    """A regex that matches exactly the ids `new_id(prefix)` makes (any prefix when None): the one
    shape a path id or a pagination cursor is checked against at the edge."""
    head = prefix if prefix is not None else "[a-z]{1,8}"
    return f"^{head}_[0-9A-HJKMNP-TV-Z]{{26}}$"


def new_id(prefix: str) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, with a type prefix."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(millis, 10)}{_b32(rand, 16)}"
