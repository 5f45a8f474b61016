"""OpenAPI 3.1, generated from the route table and the msgspec types each
handler declared with `endpoint(...)`; nothing here is written by hand."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from fooddispatch import versions
from fooddispatch.idempotency import MAX_KEY_LENGTH, READS
from kernel.http import EndpointSpec, endpoint_spec, json_response

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable machine-readable code"},
                "message": {"type": "string"},
                "param": {"type": ["string", "null"], "description": "the offending field path"},
            },
        }
    },
}
_STATUS_TEXT = {
    400: "Malformed request", 401: "Missing or invalid credentials", 402: "Payment declined",
    403: "Role not allowed", 404: "Not found", 409: "Conflict with the current state",
    413: "Body too large", 422: "Validation failed", 429: "Rate limited",
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
        paths.setdefault(path, {})[method] = _operation(path, method, spec, handler, ref, components)
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
    components["Error"] = _ERROR_SCHEMA
    return dict(zip(types, schemas_for, strict=True)), components


def _operation(path: str, method: str, spec: EndpointSpec | None, handler: Any, ref: dict[Any, Any],
               components: dict[str, Any]) -> dict[str, Any]:
    """One operation: from the handler's `endpoint(...)` declaration, or its docstring alone."""
    op: dict[str, Any] = {"operationId": f"{method}_{handler.__name__}", "responses": {}}
    doc = (handler.__doc__ or "").strip()
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]
    writes = method.upper() not in READS and not (spec is not None and spec.websocket)
    if writes:
        params.append(_idempotency_header(required=spec is not None and spec.idempotent))
    if spec is None:
        op["summary"] = doc.splitlines()[0] if doc else handler.__name__
        op["responses"]["200"] = {"description": "OK"}
    else:
        _declared(op, spec, doc or "", handler.__name__, params, ref, components)
        for status in sorted(_error_statuses(spec, writes, params)):
            op["responses"][str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
    op["parameters"] = [*params, versions.header_parameter()]
    return op


def _declared(op: dict[str, Any], spec: EndpointSpec, doc: str, name: str, params: list[dict[str, Any]],
              ref: dict[Any, Any], components: dict[str, Any]) -> None:
    """What `endpoint(...)` declared: summary, tags, roles, the query's parameters, body and answer."""
    op["summary"] = spec.summary or (doc.splitlines()[0] if doc else name)
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
            params.append({"name": field, "in": "query", "required": field in required, "schema": prop})
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref[spec.body]}}}
    if spec.websocket:
        op["description"] = (doc + "\n\nWebSocket endpoint (upgrade).").strip()
        op["responses"]["101"] = {"description": "Switching Protocols (websocket)"}
    elif spec.response is not None:
        op["responses"][str(spec.status)] = {
            "description": "OK", "content": {"application/json": {"schema": ref[spec.response]}}
        }
    else:
        op["responses"][str(spec.status)] = {"description": "OK"}


def _error_statuses(spec: EndpointSpec, writes: bool, params: list[dict[str, Any]]) -> set[int]:
    """The error answers an operation can give, besides the ones it declared."""
    statuses = set(spec.errors) | {400, 429}
    if writes:
        statuses.add(409)  # idempotency_in_progress
    if spec.body is not None:
        statuses |= {413, 422}
    if spec.roles:
        statuses |= {401, 403}
    if spec.query is not None or params:  # the edge refuses bad queries, NUL in any parameter: 422
        statuses |= {422}
    if any(p["in"] == "path" for p in params):  # a path id that names nothing: 404
        statuses |= {404}
    return statuses


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
