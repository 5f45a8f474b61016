"""OpenAPI 3.1, generated from the route table and the msgspec types each
handler declared with `endpoint(...)`; nothing here is written by hand."""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import msgspec
from aiohttp import web

from fooddispatch import versions
from fooddispatch.errors import _HTTP_CODES as HTTP_CODES  # aiohttp's own errors: bad_request, payload_too_large
from fooddispatch.errors import UNAVAILABLE
from fooddispatch.idempotency import (
    KEY_MISSING,
    MAX_KEY_LENGTH,
    READS,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyResponseUnavailable,
    IdempotencyUnavailable,
)
from fooddispatch.identity import API_KEY_REVOKED, InvalidToken, TokenExpired, TokenRevoked
from fooddispatch.privacy.messages import ORDER_READS, PERSON_READS, REASON_EXAMPLE, REASON_LENGTH
from kernel.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidJson,
    NotFound,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from kernel.http import EndpointSpec, endpoint_spec, json_response
from kernel.pagination import CURSOR_PARAMS, CursorInvalid

_ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: one object under `error`. Branch on `code`, never on `message`.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "description": "What went wrong. Some codes add fields (e.g. `decline_code` on `card_declined`, "
                           "a fresh `quote` on `price_changed`).",
            "examples": [{"code": "validation_error", "message": "Expected `int`, got `str`", "param": "tip"}],
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error", "not_found"],
                         "description": "Stable machine-readable code; each operation's error responses list "
                                        "the codes it can answer with (`x-error-codes`)"},
                "message": {"type": "string", "examples": ["Expected `int`, got `str`"],
                            "description": "Human-readable explanation, for logs and developers (may change)"},
                "param": {"type": ["string", "null"], "examples": ["lines[0].quantity", None],
                          "description": "The offending field path, query parameter or header, when one is to blame"},
            },
        }
    },
}
_STATUS_TEXT = {
    400: "Malformed request", 401: "Missing or invalid credentials", 402: "Payment declined",
    403: "Role not allowed", 404: "Not found", 409: "Conflict with the current state", 410: "Gone",
    413: "Body too large", 422: "Validation failed", 429: "Rate limited", 502: "Upstream refused",
    503: "A dependency is unavailable; retry after `Retry-After`",
}
# The code a status alone stands for, when a route declares the status without an error type.
_BASE_ERRORS: dict[int, type[DomainError]] = {
    cls.status: cls for cls in (Unauthenticated, Forbidden, NotFound, Conflict, ValidationFailed)
}
# Path parameters: what they name and an example (ids are `prefix_` + 26 Crockford base32 characters).
_ULID = "01JE3ZK4Q8N3W6V5T2R1P0M9XA"
_PATH_PARAMS: dict[str, tuple[str, str]] = {
    "order_id": ("The order's id", f"ord_{_ULID}"),
    "store_id": ("The store's id", f"sto_{_ULID}"),
    "tenant_id": ("The tenant's (merchant's) id", f"ten_{_ULID}"),
    "endpoint_id": ("The webhook endpoint's id", f"whe_{_ULID}"),
    "key_id": ("The API key's id", f"key_{_ULID}"),
    "courier_id": ("The courier's account id", f"cou_{_ULID}"),
    "dead_letter_id": ("The dead letter's id", f"dlq_{_ULID}"),
    "event_id": ("The event's id", f"evt_{_ULID}"),
    "item_id": ("The menu item's id, as the menu names it", "margherita"),
    "region": ("The dispatch region's name", "berlin"),
    "day": ("A calendar day, YYYY-MM-DD", "2026-12-24"),
    "owner": ("The balance owner's account id (a customer, courier or tenant)", f"cou_{_ULID}"),
    "token": ("The tracking link's signed token, as the link carries it", "tl_01JE3ZK4Q8.sig"),
    "link_id": ("The tracking link's id, or `*` for every link issued so far", f"tl_{_ULID}"),
}
# `{id}` names what the path segment before it names.
_ID_OF: dict[str, tuple[str, str]] = {
    "payment_methods": ("The saved card's id", f"pm_{_ULID}"),
    "payment_intents": ("The PaymentIntent's id", f"pi_{_ULID}"),
    "refunds": ("The refund's id", f"re_{_ULID}"),
    "payouts": ("The payout's id", f"po_{_ULID}"),
    "device_keys": ("The device key's id", f"dev_{_ULID}"),
    "plans": ("The membership plan's id", f"plan_{_ULID}"),
    "subscriptions": ("The subscription's id", f"sub_{_ULID}"),
    "invoices": ("The invoice's id", f"in_{_ULID}"),
    "conversion_quotes": ("The conversion quote's id", f"cvq_{_ULID}"),
    "conversions": ("The conversion's id", f"fxc_{_ULID}"),
}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
# A tag's description (Markdown), given by the component that wires the package (`describe_tag`).
TAG_DESCRIPTIONS = web.AppKey("openapi_tag_descriptions", dict[str, str])


def _operations(app: web.Application) -> list[tuple[str, str, EndpointSpec | None, Any]]:
    found = []
    for route in app.router.routes():
        if route.method == "HEAD" or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:
            continue  # static folders
        found.append((path, route.method.lower(), endpoint_spec(route.handler), route.handler))
    return found


def build_openapi(app: web.Application, title: str = "fooddispatch", version: str = "0.1.0") -> dict[str, Any]:
    ops = _operations(app)
    ref, components = _schemas(ops)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, spec, handler in ops:
        paths.setdefault(path, {})[method] = op = _operation(path, method, spec, handler, ref, components)
        if (method.upper(), path) in PERSON_READS:
            op.setdefault("parameters", []).append(_REASON)
        elif (method.upper(), path) in ORDER_READS:
            op.setdefault("parameters", []).append(_ORDER_REASON)
    described = app.get(TAG_DESCRIPTIONS, {})
    used = sorted({tag for methods in paths.values() for op in methods.values() for tag in op.get("tags", ())})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Real-time food delivery: catalog, orders, payments, tracking and dispatch. "
                                "The websockets are described in the AsyncAPI document `/asyncapi.json`."
                                + "".join(f" The `{tag}` tag's description is a guide." for tag in used
                                          if tag in described)
                                + "\n\n" + versions.changelog_markdown()},
        "tags": [{"name": tag, **({"description": described[tag]} if tag in described else {})} for tag in used],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    }


# An operator's view of a customer or courier says why (docs/PRIVACY.md, fooddispatch/privacy/reads.py).
# Declared required: these are operators' routes, and only a restaurant's wallet may be read without one.
_REASON = {"name": "reason", "in": "query", "required": True,
           "description": "Why the person's data is read (recorded in the access log); a restaurant's wallet is "
                          "read without one",
           "schema": {"type": "string", "minLength": REASON_LENGTH[0], "maxLength": REASON_LENGTH[1],
                      "examples": [REASON_EXAMPLE]}}

# An operator's view of an order is logged for its customer and courier; the reason is optional there.
_ORDER_REASON = {**_REASON, "required": False,
                 "description": "Operators: why they read the order (recorded in the access log for the order's "
                                "customer and courier); without one, the route's purpose is recorded"}


def _schemas(ops: list[tuple[str, str, EndpointSpec | None, Any]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """Each declared body, response and query type's schema (a `$ref`), and the components they refer to."""
    types: list[Any] = []
    for _path, _method, spec, _h in ops:
        if spec is None:
            continue
        for t in (spec.body, spec.response, spec.query):
            if t is not None and t not in types:
                types.append(t)
    schemas_for, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    for schema in components.values():
        for prop in schema.get("properties", {}).values():
            _hoist(prop)
    components["Error"] = _ERROR_SCHEMA
    return dict(zip(types, schemas_for, strict=True)), components


def _hoist(prop: dict[str, Any]) -> None:
    """An optional field documented on its type (`Annotated[str, doc(...)] | None`): its description
    and examples belong to the property, where readers and tools look."""
    for branch in prop.get("anyOf", ()):
        for key in ("description", "examples"):
            if key in branch and key not in prop:
                prop[key] = branch[key]


def _operation(path: str, method: str, spec: EndpointSpec | None, handler: Any, ref: dict[Any, Any],
               components: dict[str, Any]) -> dict[str, Any]:
    """One operation: from the handler's `endpoint(...)` declaration, or its docstring alone."""
    op: dict[str, Any] = {"operationId": f"{method}_{handler.__name__}", "responses": {}}
    doc = (handler.__doc__ or "").strip()
    params = [_path_param(path, name) for name in _PARAM.findall(path)]
    writes = method.upper() not in READS and not (spec is not None and spec.websocket)
    if writes:
        params.append(_idempotency_header(required=spec is not None and spec.idempotent))
    if spec is None:
        op["summary"] = doc.splitlines()[0] if doc else handler.__name__
        op["description"] = doc or op["summary"]
        op["responses"]["200"] = {"description": "OK"}
    else:
        _declared(op, spec, doc or "", handler.__name__, params, ref, components)
        for status, codes in sorted(_error_codes(spec, writes, params).items()):
            listed = ", ".join(f"`{code}`" for code in codes) or "(undeclared)"
            op["responses"][str(status)] = {
                "description": f"{_STATUS_TEXT.get(status, 'Error')}. `error.code`: {listed}",
                "x-error-codes": codes,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
    op["parameters"] = [*params, versions.header_parameter()]
    return op


def _declared(op: dict[str, Any], spec: EndpointSpec, doc: str, name: str, params: list[dict[str, Any]],
              ref: dict[Any, Any], components: dict[str, Any]) -> None:
    """What `endpoint(...)` declared: summary, tags, roles, the query's parameters, body and answer."""
    op["summary"] = spec.summary or (doc.splitlines()[0] if doc else name)
    op["description"] = _description(spec, doc, op["summary"])
    if spec.tags:
        op["tags"] = list(spec.tags)
    if spec.roles:
        op["security"] = [{"bearer": []}, {"apiKey": []}]
        op["x-roles"] = sorted(spec.roles)
    if spec.idempotent:
        op["x-idempotent"] = True
    if spec.query is not None:
        qschema = _resolve(ref[spec.query], components)
        required = set(qschema.get("required", []))
        for field, prop in qschema.get("properties", {}).items():
            param = {"name": field, "in": "query", "required": field in required, "schema": prop}
            param.update({k: prop[k] for k in ("description",) if k in prop})
            params.append(param)
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[spec.body]}}}
    if spec.websocket:
        op["description"] += "\n\nWebSocket endpoint (upgrade)."
        op["responses"]["101"] = {"description": "Switching Protocols (websocket)"}
    elif spec.response is not None:
        op["responses"][str(spec.status)] = {
            "description": _answer(spec.response), "content": {"application/json": {"schema": ref[spec.response]}}
        }
    else:
        op["responses"][str(spec.status)] = {"description": "Done; no body" if spec.status == 204 else "OK"}


def _description(spec: EndpointSpec, doc: str, summary: str) -> str:
    """The handler's docstring (else the summary), then who may call and how to retry safely."""
    text = doc or summary
    if spec.roles:
        text += "\n\nCallers: " + ", ".join(sorted(spec.roles)) + " (bearer token or API key)."
    else:
        text += "\n\nNo credentials needed."
    if spec.idempotent:
        text += " Requires an `Idempotency-Key` header."
    return text


def _answer(response: Any) -> str:
    """A success answer's description: the first paragraph of its Struct's docstring (a list: of its items')."""
    if get_origin(response) is list:
        return "A list, each item: " + _answer(get_args(response)[0])
    text = (response.__doc__ or "") if isinstance(response, type) and issubclass(response, msgspec.Struct) else ""
    paragraph = " ".join(line.strip() for line in text.strip().split("\n\n")[0].splitlines())
    return paragraph or getattr(response, "__name__", "OK")


def _error_codes(spec: EndpointSpec, writes: bool, params: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Every error answer an operation can give, status by status, with the codes of each: the ones
    every operation of its kind gives, then the ones its `endpoint(errors=...)` declared."""
    codes: dict[int, list[str]] = {}

    def add(status: int, *names: str) -> None:
        listed = codes.setdefault(status, [])
        listed += [name for name in names if name not in listed]

    add(400, HTTP_CODES[400])  # a request line or header the server cannot read
    add(versions.ApiVersionUnknown.status, versions.ApiVersionUnknown.code)  # every operation takes the header
    add(RateLimited.status, RateLimited.code)
    add(503, *(code for code, _wait, _message in UNAVAILABLE.values()))
    if writes:
        add(IdempotencyKeyReused.status, IdempotencyKeyReused.code)
        add(IdempotencyInProgress.status, IdempotencyInProgress.code, IdempotencyResponseUnavailable.code)
        add(IdempotencyUnavailable.status, IdempotencyUnavailable.code)
        add(ValidationFailed.status, ValidationFailed.code)  # a malformed Idempotency-Key
        if spec.idempotent:
            add(400, KEY_MISSING)
    if spec.body is not None:
        add(InvalidJson.status, InvalidJson.code)
        add(413, HTTP_CODES[413])
        add(ValidationFailed.status, ValidationFailed.code)
    if spec.roles:
        add(Unauthenticated.status, Unauthenticated.code, TokenExpired.code, InvalidToken.code, API_KEY_REVOKED,
            TokenRevoked.code)
        add(Forbidden.status, Forbidden.code)
    if spec.query is not None or params:  # the edge refuses bad queries, NUL in any parameter: 422
        add(ValidationFailed.status, ValidationFailed.code)
    if any(p["in"] == "query" and p["name"] in CURSOR_PARAMS for p in params):
        add(CursorInvalid.status, CursorInvalid.code)
    if any(p["in"] == "path" for p in params):  # a path id that names nothing: 404
        add(NotFound.status, NotFound.code)
    for status, code in spec.error_codes:
        add(status, code)
    for status in spec.errors:
        base = _BASE_ERRORS.get(status)
        if not codes.get(status) and base is not None:
            add(status, base.code)
        add(status)
    return codes


def _path_param(path: str, name: str) -> dict[str, Any]:
    described = _PATH_PARAMS.get(name)
    if name == "id":
        segments = path.split("/")
        described = _ID_OF.get(segments[segments.index("{id}") - 1])
    text, example = described or (f"The {name.replace('_', ' ')}", "x")
    return {"name": name, "in": "path", "required": True, "description": text,
            "schema": {"type": "string", "examples": [example]}}


def _idempotency_header(*, required: bool) -> dict[str, Any]:
    """Every write honours the header (fooddispatch.idempotency); some require it."""
    return {
        "name": "Idempotency-Key", "in": "header", "required": required,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]+$"},
        "description": "Makes the write safe to retry: the same key with the same request returns the first "
                       "response (header `Idempotent-Replayed: true`) without running it again; with another "
                       "request it is 400 `idempotency_key_reused`; while the first still runs, 409 "
                       "`idempotency_in_progress`. Printable ASCII; keys are per caller and kept 24 h."
                       + (" Required on this operation." if required else ""),
    }


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    target = schema.get("$ref")
    if target:
        return components[target.rsplit("/", 1)[-1]]
    return schema


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fooddispatch API</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.4rem} .op{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.4rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:600;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.put,.patch{color:#a60}.delete{color:#c22}
code{background:#f4f4f4;padding:0 .3rem} pre{background:#f8f8f8;padding:.5rem;overflow:auto;font-size:12px}
summary{cursor:pointer}
</style></head><body><h1>fooddispatch API</h1>
<p>Generated from <a href="/openapi.json">/openapi.json</a>. Works offline.
The websockets (frames, close codes): <a href="/asyncapi.json">/asyncapi.json</a> (AsyncAPI 3.0), below the routes.</p>
<div id="guides"></div><div id="ops"></div>
<h2>Websockets</h2><div id="sockets"></div>
<script>
fetch('/openapi.json').then(r=>r.json()).then(spec=>{
  for(const tag of spec.tags||[]){
    if(!tag.description)continue;
    const d=document.createElement('details');d.className='op';const s=document.createElement('summary');
    s.textContent='Guide: '+tag.name;const pre=document.createElement('pre');pre.style.whiteSpace='pre-wrap';
    pre.textContent=tag.description;d.append(s,pre);document.getElementById('guides').appendChild(d);
  }
  const root=document.getElementById('ops');
  for(const [path,methods] of Object.entries(spec.paths)){
    for(const [method,op] of Object.entries(methods)){
      const d=document.createElement('details');d.className='op';
      const s=document.createElement('summary');
      s.innerHTML=`<span class="m ${method}">${method}</span><code></code> <span></span>`;
      s.querySelector('code').textContent=path;s.querySelector('span:last-child').textContent=op.summary||'';
      d.appendChild(s);const pre=document.createElement('pre');
      pre.textContent=JSON.stringify(op,null,2);d.appendChild(pre);root.appendChild(d);
    }
  }
});
fetch('/asyncapi.json').then(r=>r.json()).then(doc=>{
  const root=document.getElementById('sockets');
  for(const [name,ch] of Object.entries(doc.channels)){
    const d=document.createElement('details');d.className='op';
    const s=document.createElement('summary');
    s.innerHTML='<span class="m get">ws</span><code></code> <span></span>';
    s.querySelector('code').textContent=ch.address;s.querySelector('span:last-child').textContent=name;
    d.appendChild(s);const pre=document.createElement('pre');
    const ops=Object.values(doc.operations).filter(o=>o.channel.$ref==='#/channels/'+name);
    const frames=ops.map(o=>({action:o.action,messages:o.messages.map(m=>{
      const id=m.$ref.split('/').pop();const msg=doc.components.messages[id];
      return {type:msg.name,summary:msg.summary,schema:doc.components.schemas[id]};})}));
    pre.textContent=JSON.stringify({description:ch.description,close_codes:ch['x-close-codes'],error_codes:ch['x-error-codes'],frames},null,2);
    d.appendChild(pre);root.appendChild(d);
  }
});
</script></body></html>"""


async def openapi_handler(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return json_response(build_openapi(request.app))


async def docs_handler(request: web.Request) -> web.Response:
    """A self-contained API reference page."""
    return web.Response(text=_DOCS_PAGE, content_type="text/html")


def describe_tag(app: web.Application, tag: str, description: str) -> None:
    """Give the operations tagged `tag` a description in the document (call before the app starts)."""
    app.setdefault(TAG_DESCRIPTIONS, {})[tag] = description


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_handler)
    app.router.add_get("/docs", docs_handler)
