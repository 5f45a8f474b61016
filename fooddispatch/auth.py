"""Authentication middleware and the identity routes.

A bearer JWT or an API key (`Authorization: Bearer fdk_...` or `X-Api-Key`)
becomes the request's principal. The route's `endpoint(roles=...)` decides
who may call it: no principal on a protected route is 401, a wrong role 403.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from catalog.web import CATALOG
from fooddispatch.identity import API_KEY_PREFIX, INVALID_CREDENTIALS, EmailTaken, IdentityService
from fooddispatch.keys import DB
from kernel.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from kernel.fielddoc import doc
from kernel.http import (
    OPERATOR,
    PRINCIPAL_KEY,
    ROLES,
    STAFF,
    Handler,
    decode_body,
    endpoint,
    endpoint_spec,
    json_response,
    principal,
    refuse_store_scoped,
)

IDENTITY_SERVICE = web.AppKey("identity_service", IdentityService)


def _credentials(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    api_key = request.headers.get("X-Api-Key")
    if api_key:
        return api_key.strip()
    if request.headers.get("Upgrade", "").lower() == "websocket":
        # Browsers cannot set headers on a websocket; allow ?access_token= there only.
        return request.query.get("access_token")
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = endpoint_spec(request.match_info.handler)
    credentials = _credentials(request)
    if credentials:
        identity = request.app[IDENTITY_SERVICE]
        if credentials.startswith(API_KEY_PREFIX):
            request[PRINCIPAL_KEY] = await identity.principal_for_api_key(credentials)
        else:
            request[PRINCIPAL_KEY] = identity.tokens.verify(credentials)
    if spec is not None and spec.roles:
        who = request.get(PRINCIPAL_KEY)
        if who is None:
            if spec.websocket and spec.extra.get("auth_in_first_frame"):
                return await handler(request)
            raise Unauthenticated(
                "authentication required: send a bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if who.role not in spec.roles:
            raise Forbidden(f"role {who.role!r} may not call this route")
    return await handler(request)


ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
EMAIL = doc("The account's email address (the login)", "ada@example.com")
PASSWORD = doc("The password (at least 8 characters)", "correct horse battery")
NAME = doc("The person's name", "Ada Lovelace")
ACCOUNT_ID = doc("The account's id; its prefix tells the role (cus, cou, stf, opr)", f"cus_{ULID}")
ROLE = doc("customer, courier, staff or operator", "customer")
TENANT = doc("Staff and API keys: the tenant (merchant) they belong to", f"ten_{ULID}")


class Register(msgspec.Struct, forbid_unknown_fields=True):
    """A new customer account."""

    email: Annotated[str, EMAIL] = msgspec.field()
    password: Annotated[str, PASSWORD] = msgspec.field()
    name: Annotated[str | None, NAME] = None


class Login(msgspec.Struct, forbid_unknown_fields=True):
    """Email and password."""

    email: Annotated[str, EMAIL]
    password: Annotated[str, PASSWORD]


class TokenResponse(msgspec.Struct):
    """A bearer token for the account: send it as `Authorization: Bearer <token>`."""

    token: Annotated[str, doc("The bearer token (a JWT)", "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln")]
    account_id: Annotated[str, ACCOUNT_ID]
    role: Annotated[str, ROLE]
    tenant_id: Annotated[str | None, TENANT] = None


class CreateAccount(msgspec.Struct, forbid_unknown_fields=True):
    """An account of any role, made by an operator."""

    role: Annotated[str, ROLE]
    email: Annotated[str | None, EMAIL] = None
    password: Annotated[str | None, PASSWORD] = None
    name: Annotated[str | None, NAME] = None
    tenant_id: Annotated[str | None, TENANT] = None


class AccountResponse(msgspec.Struct):
    """An account."""

    account_id: Annotated[str, ACCOUNT_ID]
    role: Annotated[str, ROLE]
    tenant_id: Annotated[str | None, TENANT] = None
    name: Annotated[str | None, NAME] = None


class CreateApiKey(msgspec.Struct, forbid_unknown_fields=True):
    """A restaurant API key (for a tablet or an integration)."""

    name: Annotated[str, doc("What the key is for", "Kitchen tablet")]
    # A restaurant tablet's key: it acts for this store of the tenant only (its orders, its feed,
    # its catalog routes) and manages nothing of the tenant's. Omitted: every store of the tenant.
    store_id: Annotated[str | None, doc("A tablet's key: it acts for this store only and manages nothing of the "
                                        "tenant's; left out, every store of the tenant", f"sto_{ULID}")] = None


class ApiKeyCreated(msgspec.Struct):
    """A new API key: send it as `X-Api-Key`. Shown once."""

    id: Annotated[str, doc("The key's id (to revoke it)", f"key_{ULID}")]
    tenant_id: Annotated[str, doc("The tenant it belongs to", f"ten_{ULID}")]
    key: Annotated[str, doc("The key itself, shown only now", "fdk_9b2f4c7e1d0a8b3c")]  # shown once
    store_id: Annotated[str | None, doc("The one store it acts for; null: every store", None)] = None
    api_version: Annotated[str | None, doc("The API version the key's requests get without a "
                                           "FoodDispatch-Version header", "2026-12-07")] = None


def _check_email(email: str) -> None:
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise ValidationFailed("email is not a valid address", param="email")


routes = web.RouteTableDef()


@routes.post("/v1/auth/register")
@endpoint(roles=None, body=Register, response=TokenResponse, status=201, summary="Register a customer", tags=["auth"],
          errors=[EmailTaken])
async def register(request: web.Request) -> web.Response:
    body = await decode_body(request, Register)
    _check_email(body.email)
    identity = request.app[IDENTITY_SERVICE]
    who = await identity.register_customer(body.email, body.password, body.name)
    return json_response(TokenResponse(identity.tokens.issue(who), who.account_id, who.role), status=201)


@routes.post("/v1/auth/login")
@endpoint(roles=None, body=Login, response=TokenResponse, summary="Log in with email and password", tags=["auth"],
          errors=[(Unauthenticated.status, INVALID_CREDENTIALS)])
async def login(request: web.Request) -> web.Response:
    body = await decode_body(request, Login)
    identity = request.app[IDENTITY_SERVICE]
    who = await identity.login(body.email, body.password)
    return json_response(TokenResponse(identity.tokens.issue(who), who.account_id, who.role, who.tenant_id))


@routes.get("/v1/me")
@endpoint(roles=ROLES, response=AccountResponse, summary="The calling principal", tags=["auth"])
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return json_response(AccountResponse(who.account_id, who.role, who.tenant_id, who.name))


@routes.post("/v1/accounts")
@endpoint(roles={OPERATOR}, body=CreateAccount, response=AccountResponse, status=201,
          summary="Create an account of any role (operators)", tags=["auth"], errors=[EmailTaken])
async def create_account(request: web.Request) -> web.Response:
    body = await decode_body(request, CreateAccount)
    if body.email:
        _check_email(body.email)
    who = await request.app[IDENTITY_SERVICE].create_account(
        body.role, email=body.email, password=body.password, name=body.name, tenant_id=body.tenant_id
    )
    return json_response(AccountResponse(who.account_id, who.role, who.tenant_id, who.name), status=201)


@routes.post("/v1/tenants/{tenant_id}/api_keys")
@endpoint(roles={STAFF, OPERATOR}, body=CreateApiKey, response=ApiKeyCreated, status=201, errors=[403, 404, 422],
          summary="Create a restaurant API key (shown once); with a store_id, a key for that store only "
                  "(a tablet's); a store-scoped key may not create keys (403)", tags=["auth"])
async def create_api_key(request: web.Request) -> web.Response:
    tenant_id = request.match_info["tenant_id"]
    who = principal(request)
    if who.role != OPERATOR and who.tenant_id != tenant_id:  # another tenant: 404 before the body is read
        raise NotFound("no such tenant", param="tenant_id")
    refuse_store_scoped(who, "API keys")
    body = await decode_body(request, CreateApiKey)
    if body.store_id is not None:
        await _check_store_of(request, tenant_id, body.store_id)
    identity = request.app[IDENTITY_SERVICE]
    key_id, secret = await identity.create_api_key(tenant_id, body.name, who, body.store_id)
    return json_response(ApiKeyCreated(key_id, tenant_id, secret, body.store_id, identity.api_version), status=201)


async def _check_store_of(request: web.Request, tenant_id: str, store_id: str) -> None:
    """A key's store is one of its tenant's: another tenant's store is the same 404 as none."""
    async with request.app[DB].acquire() as conn:
        owner = await request.app[CATALOG].store_tenant(conn, store_id)
    if owner != tenant_id:
        raise NotFound("no such store", param="store_id")


@routes.delete("/v1/api_keys/{key_id}")
@endpoint(roles={STAFF, OPERATOR}, status=204, summary="Revoke an API key", tags=["auth"])
async def revoke_api_key(request: web.Request) -> web.Response:
    await request.app[IDENTITY_SERVICE].revoke_api_key(request.match_info["key_id"], principal(request))
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
