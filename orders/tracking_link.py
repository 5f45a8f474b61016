"""Tracking links: a URL (`/t/{token}`) that shows one order's progress to whoever holds it, without a login.

The token is `<claims>.<signature>`, both base64url without padding: the claims are compact JSON
`{"o": order id, "l": link id, "i": issued at (unix ms), "e": expires at (unix s)}` and the signature
is HMAC-SHA256 over the claims part with the tracking-link secret (a setting, apart from the JWT
secret, so neither kind of token is ever accepted as the other). Signed, not encrypted: the order id is
readable (the page calls the API with it); nothing else about the order is in the token.

A link is valid while its signature checks and it has not expired, unless revoked: the revocation list
(`link_store`) names one link, or every link of the order issued up to a time. Pure: no I/O, no clock.

Links belong to orders, not tracking: a link is a grant to read one order, and who may see an order (and
so share it, or stop sharing it) is orders' rule (`lifecycle.can_see`); tracking only serves the live
feed to whoever the composition root lets in, as it does for a customer's bearer token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

import msgspec

from kernel.ids import new_id
from orders.errors import TrackingLinkGone, TrackingLinkInvalid

MAX_TOKEN_CHARS = 400  # order ids and link ids are short; anything longer is not ours


class LinkClaims(msgspec.Struct, frozen=True):
    o: str  # the order
    l: str  # noqa: E741 - the link's id (short names keep the URL short)
    i: int  # issued at, unix milliseconds (a revocation of "every link" covers links issued up to it)
    e: int  # expires at, unix seconds

    @property
    def order_id(self) -> str:
        return self.o

    @property
    def link_id(self) -> str:
        return self.l


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LinkClaims).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


LINK_ID = re.compile(r"^tl_[0-9A-HJKMNP-TV-Z]{26}$")  # what `new_link_id` makes (kernel.ids' shape)


def new_link_id() -> str:
    return new_id("tl")


class LinkSigner:
    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValueError("the tracking-link secret must be at least 32 characters")
        self._key = hashlib.sha256(b"fooddispatch tracking link\x00" + secret.encode()).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def sign(self, claims: LinkClaims) -> str:
        body = _b64(_encode(claims))
        return f"{body}.{self._mac(body)}"

    def read(self, token: str, now_s: float) -> LinkClaims:
        """The claims of a token signed here and not expired at `now_s`. Raises `TrackingLinkInvalid`
        (404) for anything else we did not sign, `TrackingLinkGone` (410, `tracking_link_expired`)
        once it has expired."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise TrackingLinkInvalid("no such tracking link", param="token")
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            raise TrackingLinkInvalid("no such tracking link", param="token")
        try:
            claims = _decode(_unb64(body))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise TrackingLinkInvalid("no such tracking link", param="token") from None
        if now_s >= claims.e:
            raise TrackingLinkGone("this tracking link has expired", param="token")
        return claims
