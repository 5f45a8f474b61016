"""API versions, named by the date they were released, as Stripe's are.

A request names its version in the `FoodDispatch-Version` header; without one, an API key's
requests get the version pinned on the key when it was made (`api_keys.api_version`), and
everyone else (a bearer token, no credentials) the current one. An unknown version is 400
`api_version_unknown`, naming the known ones. Every response says the version it was answered
with, in the same header.

Handlers always build the newest shape. A response-shape change is one `Change` here, with the
function that turns the newest shape back into the shape before it; for a request of an older
version, the middleware applies the downgrades of every newer version, newest first, to the JSON
of each route whose declared response type the change names (Stripe's "version change modules").
The changelog (`GET /v1/changelog`, and a section of the OpenAPI description) is generated from
`VERSIONS`, so the table is the one place a version is written down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from aiohttp import web

from kernel.errors import DomainError
from kernel.fielddoc import doc
from kernel.http import PRINCIPAL_KEY, Handler, Principal, endpoint, endpoint_spec, json_response
from orders.messages import OrderPage
from payments.messages import WalletTransactions

HEADER = "FoodDispatch-Version"
API_VERSION_KEY = web.RequestKey("api_version", str)

Body = dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One change of a response's shape: `description` for the changelog; `response`, the declared
    response type of the routes it changes; `downgrade`, the newest shape to the shape before."""

    description: str
    response: type
    downgrade: Callable[[Body], Body]


@dataclass(frozen=True)
class ApiVersion:
    name: str  # the release date, YYYY-MM-DD: names sort in release order
    summary: str
    changes: tuple[Change, ...] = ()


def _order_page_without_has_more(page: Body) -> Body:
    page.pop("has_more", None)
    return page


def _wallet_transactions_without_currency(page: Body) -> Body:
    for item in page.get("data", []):
        item.pop("currency", None)
    return page


# Oldest first. A new version is a new row here, with the changes that make it new.
VERSIONS: tuple[ApiVersion, ...] = (
    ApiVersion("2026-11-01", "The first dated version: the API as it was when versions began. API keys "
                             "made before versions existed are pinned to it."),
    ApiVersion("2026-12-07", "Order lists say whether another page follows.", changes=(
        Change("Order lists (`GET /v1/orders`, `GET /v1/stores/{store_id}/orders`) have `has_more`: true when "
               "another page follows (its cursor is `next_cursor`). Before: no `has_more`; a page was the last "
               "when `next_cursor` was null.", OrderPage, _order_page_without_has_more),
        Change("Wallet histories (`GET /v1/wallets/me/transactions`, `GET /v1/wallets/{owner}/transactions`) say "
               "each movement's `currency`, and without a `currency` parameter list every currency's movements. "
               "Before: no `currency` on a movement; without the parameter, EUR only.", WalletTransactions,
               _wallet_transactions_without_currency),
    )),
)
KNOWN: tuple[str, ...] = tuple(v.name for v in VERSIONS)
CURRENT = KNOWN[-1]


class ApiVersionUnknown(DomainError):
    status = 400
    code = "api_version_unknown"


def requested_version(header: str | None, who: Principal | None) -> str:
    """The version a request is answered with: its header's, else its API key's pin, else the current."""
    if header is not None:
        named = header.strip()
        if named not in KNOWN:
            raise ApiVersionUnknown(f"unknown API version {named[:40]!r}: the known versions are {', '.join(KNOWN)}",
                                    param=HEADER, extra={"known_versions": list(KNOWN)})
        return named
    if who is not None and who.api_version is not None:
        # A pin this process does not know (written by a newer release): the first known version after it.
        return next((v for v in KNOWN if v >= who.api_version), CURRENT)
    return CURRENT


def downgrades(version: str, response: Any) -> list[Callable[[Body], Body]]:
    """The downgrades that turn `response`'s newest shape into `version`'s, in the order to apply them."""
    return [change.downgrade for v in reversed(VERSIONS) if v.name > version
            for change in v.changes if change.response is response]


def _answered_as(response: web.StreamResponse, steps: list[Callable[[Body], Body]]) -> web.StreamResponse:
    if not steps or not isinstance(response, web.Response) or response.status >= 300:
        return response
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return response
    body = msgspec.json.decode(response.body)
    for step in steps:
        body = step(body)
    response.body = msgspec.json.encode(body)
    return response


@web.middleware
async def version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After authentication (a key's pin is known then), outside idempotency (a stored response is
    the newest shape; a replay is answered in the replaying request's version)."""
    version = requested_version(request.headers.get(HEADER), request.get(PRINCIPAL_KEY))
    request[API_VERSION_KEY] = version
    response = await handler(request)
    spec = endpoint_spec(request.match_info.handler)
    if spec is None or spec.response is None:
        return response
    return _answered_as(response, downgrades(version, spec.response))


async def stamp_version(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response of a request whose version is known says it, errors too."""
    version = request.get(API_VERSION_KEY)
    if version is not None:
        response.headers[HEADER] = version


# ---- the changelog -------------------------------------------------------------------------------------

class ChangeOut(msgspec.Struct, frozen=True):
    """One response-shape change a version made."""

    description: Annotated[str, doc("What changed", "Order lists gain `has_more`.")]
    affects: Annotated[list[str], doc("The operations whose responses changed", ["GET /v1/orders"])]


class VersionOut(msgspec.Struct, frozen=True):
    """An API version and what it changed."""

    version: Annotated[str, doc("The version's date, as the header takes it", "2026-12-07")]
    summary: Annotated[str, doc("The version in a sentence", "Order lists say whether a page follows.")]
    changes: Annotated[list[ChangeOut], doc("Its response-shape changes")]


class Changelog(msgspec.Struct, frozen=True):
    """The API versions, newest first."""

    current: Annotated[str, doc("The newest version: what a request without a pin or header gets", "2026-12-07")]
    header: Annotated[str, doc("The request header that picks a version", "FoodDispatch-Version")]
    versions: Annotated[list[VersionOut], doc("Every version, newest first")]


def _routes_answering(app: web.Application, response: type) -> list[str]:
    found = []
    for route in app.router.routes():
        spec = endpoint_spec(route.handler)
        if route.method != "HEAD" and route.resource is not None and spec is not None and spec.response is response:
            found.append(f"{route.method} {route.resource.canonical}")
    return sorted(found)


def changelog(app: web.Application) -> Changelog:
    return Changelog(current=CURRENT, header=HEADER, versions=[
        VersionOut(v.name, v.summary, [ChangeOut(c.description, _routes_answering(app, c.response)) for c in v.changes])
        for v in reversed(VERSIONS)])


def changelog_markdown() -> str:
    """The changelog as a section of the OpenAPI description."""
    lines = ["## API versions", "",
             f"Send `{HEADER}: <version>` to choose one; without it, an API key's requests use the version "
             f"pinned on the key when it was made, a bearer token's the current one ({CURRENT}). Every response "
             f"carries `{HEADER}`. An unknown version is 400 `api_version_unknown`. Newest first:", ""]
    for v in reversed(VERSIONS):
        lines.append(f"- **{v.name}**: {v.summary}")
        lines += [f"  - {c.description}" for c in v.changes]
    return "\n".join(lines)


def header_parameter() -> dict[str, Any]:
    """The request header, as an OpenAPI parameter of every operation."""
    return {"name": HEADER, "in": "header", "required": False,
            "schema": {"type": "string", "enum": list(KNOWN), "examples": [CURRENT]},
            "description": f"The API version to answer with (default: the API key's pinned version, else {CURRENT}); "
                           "see the changelog in the description and at GET /v1/changelog."}


routes = web.RouteTableDef()


@routes.get("/v1/changelog")
@endpoint(roles=None, response=Changelog, tags=["meta"],
          summary="The API versions, newest first, and the response-shape changes each made")
async def get_changelog(request: web.Request) -> web.Response:
    return json_response(changelog(request.app))


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.on_response_prepare.append(stamp_version)
