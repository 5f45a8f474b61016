"""HTTP helpers every package's `web.py` uses.

- `endpoint(...)` declares a route's options once: which roles may call it,
  whether an `Idempotency-Key` is required, and its wire types. The auth and
  idempotency middlewares and the OpenAPI generator all read the same record.
- `decode_body` / `decode_query` turn input into a typed msgspec message or
  raise a `DomainError` with the field path, so handlers never see bad input.
  Text PostgreSQL cannot store (a NUL, a lone surrogate) is refused there too,
  for every field at once (`refuse_unstorable`), never per field.
- `json_response` encodes a message once with msgspec.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from kernel.errors import DomainError, Forbidden, InvalidJson, NotFound, Unauthenticated, ValidationFailed
from kernel.pagination import refuse_malformed_cursor

T = TypeVar("T")
# An error a route can answer with, as `endpoint(errors=...)` declares it: a status alone, an error type
# (its status and stable code) or a (status, code) pair for a code raised without a type of its own.
ErrorDeclaration = int | type[DomainError] | tuple[int, str]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CUSTOMER = "customer"
COURIER = "courier"
STAFF = "staff"
OPERATOR = "operator"
# Reads the privacy access log (who read whose personal data) and nothing else.
AUDITOR = "auditor"
ROLES = frozenset({CUSTOMER, COURIER, STAFF, OPERATOR, AUDITOR})
PUBLIC: frozenset[str] = frozenset()  # no principal needed

ENDPOINT_ATTR = "__fooddispatch_endpoint__"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an account with one role; staff and API keys belong to one tenant. A
    store-scoped API key (a restaurant tablet's) acts for `store_ids` only; None: every store of
    the tenant (staff accounts, tenant-wide keys, operators)."""

    account_id: str
    role: str
    tenant_id: str | None = None
    via: str = "token"  # "token" | "api_key"
    name: str | None = None
    store_ids: frozenset[str] | None = None
    api_version: str | None = None  # an API key's pinned API version (fooddispatch/versions.py)

    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def may_act_for_store(self, store_id: str) -> bool:
        """Whether the store scope allows `store_id` (the tenant check is the caller's, as before)."""
        return self.store_ids is None or store_id in self.store_ids


def refuse_store_scoped(who: Principal, what: str) -> None:
    """A store-scoped key runs one store's tablet; the tenant's own settings (its keys, webhook
    endpoints, stores) are not its to change. 403, not 404: the tenant is the caller's own, so a
    404 would hide nothing, and a role that may not call a route is 403 everywhere else."""
    if who.store_ids is not None:
        raise Forbidden(f"a store-scoped API key may not manage {what}")


def merchant_tenant(who: Principal, named: str | None, what: str) -> str:
    """The tenant whose money (balance, statements, payouts) the caller reads: staff and tenant-wide API
    keys their own (naming another in `tenant_id` is 404, the answer for any resource of another tenant);
    an operator the one it names (422 without); a store-scoped key none (403: the money is the tenant's)."""
    refuse_store_scoped(who, what)
    if who.is_operator():
        if named is None:
            raise ValidationFailed("operators name the tenant (tenant_id)", param="tenant_id")
        return named
    if not who.tenant_id:
        raise Forbidden("this account belongs to no restaurant tenant")
    if named is not None and named != who.tenant_id:
        raise NotFound("no such tenant", param="tenant_id")
    return who.tenant_id


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
    error_codes: tuple[tuple[int, str], ...] = ()  # (status, code) pairs declared besides the common ones
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
    errors: Iterable[ErrorDeclaration] = (),
    websocket: bool = False,
    auth_in_first_frame: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a route's options. `auth_in_first_frame` lets a websocket route open
    without credentials; its handler must then authenticate from the first frame. `errors`
    are the answers the route gives besides the ones every route of its kind gives (the
    OpenAPI document lists each status with its codes)."""
    role_set = None if roles is None else frozenset(roles)
    if role_set is not None and not role_set <= ROLES:
        raise ValueError(f"unknown roles {set(role_set - ROLES)}")
    statuses, codes = _declared_errors(errors)
    spec = EndpointSpec(
        roles=role_set,
        idempotent=idempotent,
        body=body,
        query=query,
        response=response,
        status=status,
        summary=summary,
        tags=tuple(tags),
        errors=statuses,
        error_codes=codes,
        websocket=websocket,
        extra={"auth_in_first_frame": auth_in_first_frame},
    )

    def mark(handler: Handler) -> Handler:
        setattr(handler, ENDPOINT_ATTR, spec)
        return handler

    return mark


def _declared_errors(errors: Iterable[ErrorDeclaration]) -> tuple[tuple[int, ...], tuple[tuple[int, str], ...]]:
    statuses: list[int] = []
    codes: list[tuple[int, str]] = []
    for declared in errors:
        if isinstance(declared, int):
            status = declared
        elif isinstance(declared, tuple):
            status = declared[0]
            codes.append(declared)
        else:
            status = declared.status
            codes.append((status, declared.code))
        if status not in statuses:
            statuses.append(status)
    return tuple(statuses), tuple(codes)


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


# PostgreSQL's text and jsonb hold neither NUL nor a UTF-16 surrogate (the driver cannot even
# encode one): such a string reaching a query is a 500. msgspec already refuses lone surrogate
# escapes and invalid UTF-8 in JSON, so in a body only `\u0000` gets through; aiohttp decodes
# `%00` in paths and queries, and header bytes it cannot read as UTF-8 into surrogates.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_JSON_NUL = b"\\u0000"


def unstorable_path(value: Any, path: str = "") -> str | None:
    """The path (`items[0].name`, msgspec's style) of the first string in `value` (decoded JSON:
    dicts, lists, strings; keys included) that PostgreSQL cannot store; "" for `value` itself;
    None when every string is storable."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = _UNSTORABLE.sub("?", key) if isinstance(key, str) else str(key)  # never echo a NUL back
            at = f"{path}.{name}" if path else name
            if name != key:
                return at
            found = unstorable_path(item, at)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def refuse_unstorable(value: Any, prefix: str | None = None) -> None:
    """422 `validation_error` naming the field when a string in `value` cannot be stored."""
    found = unstorable_path(value)
    if found is None:
        return
    param = f"{prefix}.{found}" if prefix and found else (prefix or found or None)
    raise ValidationFailed("text must not contain NUL characters or unpaired UTF-16 surrogates", param=param)


def decode_json(raw: bytes, type_: type[T]) -> T:
    """Decode bytes into `type_`: malformed JSON is 400, a schema violation or text that cannot
    be stored (a NUL) 422 with the path."""
    try:
        decoded = msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise InvalidJson(f"request body is not valid JSON: {exc}") from None
    if _JSON_NUL in raw:  # the only spelling of NUL in JSON; the walk runs only then
        refuse_unstorable(msgspec.json.decode(raw))
    return decoded


async def decode_body(request: web.Request, type_: type[T]) -> T:
    raw = await request.read()
    if not raw:
        raise InvalidJson("request body is empty; a JSON object is required")
    return decode_json(raw, type_)


def decode_query(request: web.Request, type_: type[T]) -> T:
    """Query strings are text; msgspec converts '5' to 5 and 'true' to True (strict=False). A cursor
    of the wrong shape is 400 `cursor_invalid` (kernel/pagination.py), any other bad value 422."""
    query = dict(request.query)
    refuse_unstorable(query)
    try:
        return msgspec.convert(query, type_, strict=False)
    except msgspec.ValidationError as exc:
        message, param = _param_from(exc)
        refuse_malformed_cursor(param)  # 400 cursor_invalid, the same on every list
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
