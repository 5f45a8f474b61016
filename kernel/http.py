"""HTTP helpers every package's `web.py` uses.

- `endpoint(...)` declares a route's options once: which roles may call it,
  whether an `Idempotency-Key` is required, and its wire types. The auth and
  idempotency middlewares and the OpenAPI generator all read the same record.
- `decode_body` / `decode_query` turn input into a typed msgspec message or
  raise a `DomainError` with the field path, so handlers never see bad input.
- `json_response` encodes a message once with msgspec.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from kernel.errors import InvalidJson, Unauthenticated, ValidationFailed

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CUSTOMER = "customer"
COURIER = "courier"
STAFF = "staff"
OPERATOR = "operator"
ROLES = frozenset({CUSTOMER, COURIER, STAFF, OPERATOR})
PUBLIC: frozenset[str] = frozenset()  # no principal needed

ENDPOINT_ATTR = "__fooddispatch_endpoint__"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an account with one role; staff and API keys belong to one tenant."""

    account_id: str
    role: str
    tenant_id: str | None = None
    via: str = "token"  # "token" | "api_key"
    name: str | None = None

    def is_operator(self) -> bool:
        return self.role == OPERATOR


PRINCIPAL_KEY = web.RequestKey("principal", Principal)
IDEMPOTENCY_KEY = web.RequestKey("idempotency_key", str)
REQUEST_ID_KEY = web.RequestKey("request_id", str)


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    roles: frozenset[str] | None  # None: public (a principal is attached if a token is sent)
    idempotent: bool = False
    body: Any = None
    query: Any = None
    response: Any = None
    status: int = 200
    summary: str = ""
    tags: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()
    websocket: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def endpoint(
    *,
    roles: Iterable[str] | None,
    idempotent: bool = False,
    body: Any = None,
    query: Any = None,
    response: Any = None,
    status: int = 200,
    summary: str = "",
    tags: Iterable[str] = (),
    errors: Iterable[int] = (),
    websocket: bool = False,
    auth_in_first_frame: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a route's options. `auth_in_first_frame` lets a websocket route open
    without credentials; its handler must then authenticate from the first frame."""
    role_set = None if roles is None else frozenset(roles)
    if role_set is not None and not role_set <= ROLES:
        raise ValueError(f"unknown roles {set(role_set - ROLES)}")
    spec = EndpointSpec(
        roles=role_set,
        idempotent=idempotent,
        body=body,
        query=query,
        response=response,
        status=status,
        summary=summary,
        tags=tuple(tags),
        errors=tuple(errors),
        websocket=websocket,
        extra={"auth_in_first_frame": auth_in_first_frame},
    )

    def mark(handler: Handler) -> Handler:
        setattr(handler, ENDPOINT_ATTR, spec)
        return handler

    return mark


def endpoint_spec(handler: Any) -> EndpointSpec | None:
    return getattr(handler, ENDPOINT_ATTR, None)


_PATH_RE = re.compile(r" - at `\$(?P<path>[^`]*)`")


def _param_from(error: msgspec.ValidationError) -> tuple[str, str | None]:
    text = str(error)
    match = _PATH_RE.search(text)
    if not match:
        return text, None
    path = match.group("path").lstrip(".")
    return text[: match.start()], path or None


def validation_error(error: msgspec.ValidationError, prefix: str | None = None) -> ValidationFailed:
    message, param = _param_from(error)
    if prefix:
        param = f"{prefix}.{param}" if param else prefix
    return ValidationFailed(message, param=param)


def decode_json(raw: bytes, type_: type[T]) -> T:
    """Decode bytes into `type_`: malformed JSON is 400, a schema violation 422 with the path."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"request body is not valid JSON: {exc}") from None


async def decode_body(request: web.Request, type_: type[T]) -> T:
    raw = await request.read()
    if not raw:
        raise InvalidJson("request body is empty; a JSON object is required")
    return decode_json(raw, type_)


def decode_query(request: web.Request, type_: type[T]) -> T:
    """Query strings are text; msgspec converts '5' to 5 and 'true' to True (strict=False)."""
    try:
        return msgspec.convert(dict(request.query), type_, strict=False)
    except msgspec.ValidationError as exc:
        message, param = _param_from(exc)
        raise ValidationFailed(message, param=param) from None


_encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encoder.encode(obj), status=status, content_type="application/json", headers=headers
    )


def principal(request: web.Request) -> Principal:
    """The authenticated caller. Routes that declare roles always have one."""
    found = request.get(PRINCIPAL_KEY)
    if found is None:
        raise Unauthenticated("authentication required")
    return found


def optional_principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL_KEY)


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, for services that also key their own rows on it."""
    return request.get(IDEMPOTENCY_KEY)
