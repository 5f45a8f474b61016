"""Probes generated from the served OpenAPI document: every string parameter of every route (path,
query, body fields at any depth) gets a NUL, an overlong and an odd-Unicode value, with valid
credentials for the route, and no answer may be a 5xx. A NUL is refused with a 4xx (422
`validation_error` naming the parameter for paths and queries, before any handler runs); every list
refuses a malformed cursor the same way (400 `cursor_invalid`) and every path id of the wrong shape is
404 `resource_missing`."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from edge_world import LAT, LNG, World, build_world, fresh_key

from kernel.ids import new_id

NUL = "a\x00b"
# RTL override, emoji with a joiner, stacked combining marks, BOM and zero-width space, a wide ligature
ODD = "\u202egnp.exe\u202c \U0001f354\u200d\U0001f525 e\u0301\u0301\u0301 \ufeff\u200b \ufdfd"
NOT_UTF8 = "\udcff"  # sent as the byte %FF, which is not UTF-8
SURROGATE = "\ue000SURROGATE\ue000"  # placeholder: written into the raw JSON as the escape "\ud800"
LONG_BODY = "x" * 100_000
LONG_URL = "x" * 6_000  # a path or query value still under aiohttp's 8 KiB request line
CURSOR_NAMES = {"cursor", "starting_after", "ending_before"}
Step = str | int


class Spec:
    """The served OpenAPI document and helpers to read its schemas."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas = doc["components"]["schemas"]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.schemas[schema["$ref"].rsplit("/", 1)[-1]]
        if "anyOf" in schema:
            concrete = [b for b in schema["anyOf"] if self.resolve(b).get("type") != "null"]
            if concrete:
                return self.resolve(concrete[0])
        return schema

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, methods in self.doc["paths"].items():
            for method, op in methods.items():
                if path.startswith("/v1/"):
                    yield path, method, op

    def sample(self, schema: dict[str, Any], name: str, world: World) -> Any:
        """A schema-valid value with only the required fields; names the world knows get real ids."""
        s = self.resolve(schema)
        if "enum" in s:
            return s["enum"][0]
        if "const" in s:
            return s["const"]
        kind = s.get("type")
        if kind == "object":
            props = s.get("properties", {})
            return {k: self.sample(props[k], k, world) for k in s.get("required", []) if k in props}
        if kind == "array":
            return [self.sample(s.get("items", {}), name, world) for _ in range(max(1, s.get("minItems", 0)))]
        if kind == "integer":
            return max(s.get("minimum", 1), min(1, s.get("maximum", 1)))
        if kind == "number":
            value = {"lat": LAT, "lng": LNG}.get(name, 1.0)
            return max(s.get("minimum", value), min(value, s.get("maximum", value)))
        if kind == "boolean":
            return False
        if name in world.ids:
            return world.ids[name]
        if s.get("format") == "date":
            return "2030-01-01"
        if s.get("format") == "date-time":
            return "2030-01-01T12:00:00Z"
        if name == "email":
            return f"{fresh_key()}@example.com"
        return "probe-" + "x" * max(0, s.get("minLength", 0) - 6)

    def string_fields(self, schema: dict[str, Any], at: tuple[tuple[Step, dict[str, Any]], ...] = (),
                      seen: frozenset[str] = frozenset()) -> Iterator[tuple[tuple[Step, dict[str, Any]], ...]]:
        """Every place a string can go in a body: a list of (key or index, schema of that child) steps."""
        if "$ref" in schema:
            ref = schema["$ref"].rsplit("/", 1)[-1]
            if ref in seen:
                return
            seen = seen | {ref}
            schema = self.schemas[ref]
        if "anyOf" in schema:
            for branch in schema["anyOf"]:
                yield from self.string_fields(branch, at, seen)
            return
        kind = schema.get("type")
        if kind == "string" or (kind is None and any(isinstance(e, str) for e in schema.get("enum", []))):
            yield at
        elif kind == "object":
            for key, child in schema.get("properties", {}).items():
                yield from self.string_fields(child, (*at, (key, child)), seen)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                yield from self.string_fields(extra, (*at, ("probe_key", extra)), seen)
        elif kind == "array":
            yield from self.string_fields(schema.get("items", {}), (*at, (0, schema.get("items", {}))), seen)

    def place(self, base: Any, steps: tuple[tuple[Step, dict[str, Any]], ...], value: str, world: World) -> Any:
        body = copy.deepcopy(base)
        node = body
        for i, (key, child) in enumerate(steps):
            if i == len(steps) - 1:
                if isinstance(key, int):
                    node[:1] = [value]
                else:
                    node[key] = value
            elif isinstance(key, int):
                if not node:
                    node.append(self.sample(child, "", world))
                node = node[0]
            else:
                if not isinstance(node.get(key), dict | list):
                    node[key] = self.sample(child, str(key), world)
                node = node[key]
        return body


def _quote(text: str) -> str:
    return quote(text, safe="", errors="surrogateescape")


def dotted(steps: tuple[tuple[Step, Any], ...]) -> str:
    out = ""
    for key, _ in steps:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


class Prober:
    """Sends one request per probe and records what breaks the rules."""

    def __init__(self, client: Any, spec: Spec, world: World) -> None:
        self.client, self.spec, self.world = client, spec, world
        self.failures: list[str] = []
        self.sent = 0

    def base(self, path: str, op: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], Any]:
        params = op.get("parameters", [])
        path_values = {p["name"]: self.world.path_value(path, p["name"]) for p in params if p["in"] == "path"}
        query = {p["name"]: str(self.spec.sample(p["schema"], p["name"], self.world))
                 for p in params if p["in"] == "query" and p.get("required")}
        if any(p["in"] == "query" and p["name"] == "tenant_id" for p in params):
            query["tenant_id"] = self.world.ids["tenant_id"]  # the operator names the tenant it reads
        body = None
        if "requestBody" in op:
            body = self.spec.sample(op["requestBody"]["content"]["application/json"]["schema"], "", self.world)
        return path_values, query, body

    async def send(self, method: str, path: str, op: dict[str, Any], path_values: dict[str, str],
                   query: dict[str, str], body: Any) -> tuple[int, Any]:
        url = path
        for name, value in path_values.items():
            url = url.replace("{" + name + "}", _quote(value))
        if query:
            url += "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in query.items())
        headers = dict(self.world.headers[self.world.role_for(op.get("x-roles"))])
        if op.get("x-idempotent"):
            headers["Idempotency-Key"] = fresh_key()
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).replace(json.dumps(SURROGATE)[1:-1], "\\ud800").encode()
        self.sent += 1
        try:
            resp = await self.client.request(method.upper(), url, data=data, headers=headers)
            payload = await resp.json() if resp.content_type == "application/json" else await resp.text()
        except aiohttp.ClientError as exc:  # the server dropped the connection: as bad as a 500
            return 599, f"connection failed: {exc!r}"
        return resp.status, payload

    def check(self, label: str, status: int, payload: Any, probe: str, param: str | None) -> None:
        if status >= 500:
            self.failures.append(f"{label}: {status} {str(payload)[:300]}")
        elif probe == NUL and not 400 <= status < 500:
            self.failures.append(f"{label}: NUL accepted with {status}")
        elif probe == NUL and param is not None:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            if (status, error.get("code"), error.get("param")) != (422, "validation_error", param):
                self.failures.append(f"{label}: NUL gave {status} {error} instead of 422 validation_error {param}")

    async def probe_operation(self, path: str, method: str, op: dict[str, Any]) -> None:
        path_values, query, body = self.base(path, op)
        for p in op.get("parameters", []):
            if p["in"] not in ("path", "query") or self.spec.resolve(p["schema"]).get("type") not in ("string", None):
                continue
            for probe in (NUL, LONG_URL, ODD, NOT_UTF8):
                values, q = dict(path_values), dict(query)
                (values if p["in"] == "path" else q)[p["name"]] = probe
                label = f"{method.upper()} {path} {p['in']} {p['name']}={probe[:12]!r}"
                status, payload = await self.send(method, path, op, values, q, body)
                self.check(label, status, payload, probe, p["name"])
        if body is None:
            return
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        for steps in self.spec.string_fields(schema):
            for probe in (NUL, LONG_BODY, ODD, SURROGATE):
                probed = self.spec.place(body, steps, probe, self.world)
                status, payload = await self.send(method, path, op, path_values, query, probed)
                self.check(f"{method.upper()} {path} body {dotted(steps)}={probe[:12]!r}", status, payload, probe,
                           None)
            if steps and steps[-1][0] == "probe_key":  # a map's key is text too
                probed = self.spec.place(body, (*steps[:-1], ("a\x00b", steps[-1][1])), "v", self.world)
                status, payload = await self.send(method, path, op, path_values, query, probed)
                self.check(f"{method.upper()} {path} body key {dotted(steps)}", status, payload, NUL, None)


@pytest.fixture
async def probe(client, make_principal) -> Prober:
    world = await build_world(client, make_principal)
    resp = await client.get("/openapi.json")
    return Prober(client, Spec(await resp.json()), world)


@pytest.mark.slow
async def test_every_string_parameter_refuses_nul_and_survives_odd_text(probe: Prober) -> None:
    operations = list(probe.spec.operations())
    assert len(operations) > 80  # the document really lists the API
    for path, method, op in operations:
        await probe.probe_operation(path, method, op)
    assert probe.sent > 600
    assert not probe.failures, "\n".join(probe.failures)


def _good_cursor(schema: dict[str, Any]) -> str | None:
    """A cursor of the shape the list declares (the last id of a page it could have handed out)."""
    pattern = schema.get("pattern", "")
    if pattern.startswith("^[0-9]"):
        return "12345"
    prefix = re.match(r"\^([a-z]+)_", pattern)
    return new_id(prefix.group(1)) if prefix else None  # an opaque cursor: only the list can make one


async def test_every_list_refuses_a_malformed_cursor_the_same_way(probe: Prober) -> None:
    """400 `cursor_invalid` naming the parameter, on every list with a cursor: garbage, an empty one, an id
    of another kind (`zzz_...` where the list pages by `ord_` ids); a cursor of the list's own shape pages."""
    lists = [(path, method, op, p["name"], probe.spec.resolve(p["schema"])) for path, method, op in
             probe.spec.operations() for p in op.get("parameters", [])
             if p["in"] == "query" and p["name"] in CURSOR_NAMES]
    assert len(lists) >= 14
    for path, method, op, name, schema in lists:
        path_values, query, _ = probe.base(path, op)
        for garbage in ("garbage!", "ord_", "x" * 300, "%%", "", new_id("zzz"), "eyJub3QiOiJhIGtleSJ9"):
            status, payload = await probe.send(method, path, op, path_values, {**query, name: garbage}, None)
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            if (status, error.get("code"), error.get("param")) != (400, "cursor_invalid", name):
                probe.failures.append(f"{method.upper()} {path}?{name}={garbage[:10]}: {status} {error}")
        good = _good_cursor(schema)
        if good is not None:
            status, payload = await probe.send(method, path, op, path_values, {**query, name: good}, None)
            if status != 200:
                probe.failures.append(f"{method.upper()} {path}?{name}={good}: {status} {payload}")
    assert not probe.failures, "\n".join(probe.failures)


async def test_a_path_id_of_the_wrong_shape_is_not_found_everywhere(probe: Prober) -> None:
    checked = 0
    for path, method, op in probe.spec.operations():
        path_values, query, body = probe.base(path, op)
        for name in path_values:
            if not (name == "id" or name.endswith("_id")):
                continue
            for wrong in ("nope", "ord_x", "x" * 300):
                checked += 1
                status, payload = await probe.send(method, path, op, {**path_values, name: wrong}, query, body)
                error = payload.get("error", {}) if isinstance(payload, dict) else {}
                if (status, error.get("code")) != (404, "resource_missing"):
                    probe.failures.append(f"{method.upper()} {path} {name}={wrong[:10]}: {status} {error}")
    assert checked > 100
    assert not probe.failures, "\n".join(probe.failures)


async def test_stored_headers_that_are_not_utf8_are_refused_before_any_handler(client, probe: Prober) -> None:
    """aiohttp reads header bytes that are not UTF-8 as surrogates; the one rule refuses them."""
    host, port = client.server.host, client.server.port
    auth = probe.world.headers["customer"]["Authorization"].encode()
    for header in (b"Idempotency-Key: k\xff1", b"X-Api-Key: fdk_\xff", b"Authorization: Bearer \xff",
                   b"X-Request-Id: r\xff"):
        reader, writer = await asyncio.open_connection(host, port)
        request = (b"POST /v1/payment_methods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 2\r\n")
        if not header.startswith(b"Authorization"):
            request += b"Authorization: " + auth + b"\r\n"
        writer.write(request + header + b"\r\n\r\n{}")
        await writer.drain()
        answer = await reader.read()
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 422"), (header, answer[:300])
        assert json.loads(body)["error"]["code"] == "validation_error"
        assert json.loads(body)["error"]["param"] == header.split(b":")[0].decode()
