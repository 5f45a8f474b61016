"""Webhook signatures, one scheme for every outgoing webhook (orders, payments).

Header `Fooddispatch-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`,
the same construction as Stripe's, so existing verifiers (including
`stripe.Webhook.construct_event`) accept it. During secret rotation a delivery
carries one `v1=` per active secret; a verifier accepts any that matches.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

SIGNATURE_HEADER = "Fooddispatch-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    pass


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Iterable[str], timestamp: int | None = None) -> str:
    """The header value for `body` signed with each of `secrets` (newest first)."""
    ts = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={ts}"] + [f"v1={_mac(secret, ts, body)}" for secret in secrets]
    if len(parts) == 1:
        raise ValueError("at least one secret is needed to sign")
    return ",".join(parts)


def verify(body: bytes, header: str, secret: str, tolerance: int = DEFAULT_TOLERANCE_SECONDS,
           now: int | None = None) -> int:
    """Check a signature header; returns its timestamp or raises SignatureError."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("header has no timestamp or no v1 signature")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance window (possible replay)")
    expected = _mac(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches")
    return timestamp
