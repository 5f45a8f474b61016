"""The OpenAPI document is a reference an app developer can build from: every operation says what it
does, every parameter and every schema property (components included, at any depth) has a description
and an example that validates against its own schema, and every error answer lists its `error.code`s.

Built from the route table without servers: `create_app` does no I/O until it starts."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fooddispatch.app import create_app
from fooddispatch.config import Settings
from fooddispatch.openapi import build_openapi
from kernel.errors import DomainError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("catalog", "orders", "payments", "dispatch", "tracking", "geo", "memberships", "kernel", "fooddispatch")
# Codes no HTTP answer carries, and why.
NEVER_ANSWERED = {
    "conflict": "the base type of every 409, never raised itself",
    "invalid_webhook_url": "orders.errors.InvalidWebhookUrl is never raised (netguard's webhook_url_forbidden is)",
    "lease_lost": "dispatch's region lease, lost inside the dispatch loop, never in a request",
    "split_unbalanced": "an invariant of the capture split orders computes, not of anything a client sends",
    "subscription_unexpected_state": "an invariant of memberships' state machine: every route checks the status "
                                     "first, under the subscription's row lock",
}
_LITERAL_CODE = re.compile(r'(?<![a-z_])code="([a-z_]+)"')


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    app = create_app(Settings(database_url="postgresql://unused/x", redis_url="redis://unused"), background=False)
    return build_openapi(app)


def _is_reference(schema: dict[str, Any]) -> bool:
    """A property that is another schema (or a list or an optional one): that schema documents the fields;
    the property itself needs its description only."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _is_reference(schema.get("items", {}))
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    return bool(branches) and all(_is_reference(b) for b in branches)


def _properties(name: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a schema, nested inline objects and array items included, by dotted path."""
    for field, prop in schema.get("properties", {}).items():
        yield f"{name}.{field}", prop
        for nested in (prop, prop.get("items", {}), *prop.get("anyOf", [])):
            if nested.get("type") == "object" and "properties" in nested:
                yield from _properties(f"{name}.{field}", {"properties": nested["properties"]})


def _gaps(what: str, item: dict[str, Any], schema: dict[str, Any], reference: bool) -> list[str]:
    gaps = []
    if not str(item.get("description", "")).strip():
        gaps.append(f"{what}: no description")
    if not reference and not schema.get("examples"):
        gaps.append(f"{what}: no example")
    return gaps


def test_every_operation_has_a_summary_and_a_description(doc: dict[str, Any]) -> None:
    missing = [f"{method.upper()} {path}" for path, methods in doc["paths"].items() for method, op in methods.items()
               if " " not in op.get("summary", "") or not op.get("description", "").strip()]
    assert missing == [], "\n".join(missing)


def test_every_parameter_has_a_description_and_an_example(doc: dict[str, Any]) -> None:
    gaps = [gap for path, methods in doc["paths"].items() for method, op in methods.items()
            for p in op.get("parameters", []) if p["name"] != "Idempotency-Key"
            for gap in _gaps(f"{method.upper()} {path} {p['in']} {p['name']}", p, p["schema"], False)]
    assert gaps == [], "\n".join(gaps)


def test_every_path_parameter_is_described_by_what_it_names(doc: dict[str, Any]) -> None:
    """Not the fallback (`The id`, example `x`) that openapi.py gives a name it does not know: a new
    `{id}` collection, or a new `{x_id}`, gets its description and an example id there."""
    fallbacks = [f"{method.upper()} {path} {p['name']}" for path, methods in doc["paths"].items()
                 for method, op in methods.items() for p in op.get("parameters", [])
                 if p["in"] == "path" and p["schema"].get("examples") == ["x"]]
    assert fallbacks == [], "\n".join(fallbacks)


def test_every_schema_property_has_a_description_and_an_example(doc: dict[str, Any]) -> None:
    gaps = [gap for name, schema in doc["components"]["schemas"].items()
            for path, prop in _properties(name, schema)
            for gap in _gaps(path, prop, prop, _is_reference(prop))]
    assert gaps == [], f"{len(gaps)} gaps:\n" + "\n".join(gaps)


def test_every_example_validates_against_its_schema(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    found: list[tuple[str, dict[str, Any]]] = [(path, prop) for name, schema in schemas.items()
                                                for path, prop in _properties(name, schema)]
    found += [(f"{m} {path} {p['name']}", p["schema"]) for path, methods in doc["paths"].items()
              for m, op in methods.items() for p in op.get("parameters", [])]
    wrong = []
    for where, schema in found:
        for example in schema.get("examples", []):
            validator = Draft202012Validator({**schema, "components": {"schemas": schemas}})
            wrong += [f"{where}: {example!r}: {error.message}" for error in validator.iter_errors(example)]
    assert wrong == [], "\n".join(wrong)


def test_every_error_answer_lists_the_codes_it_can_carry(doc: dict[str, Any]) -> None:
    bare = [f"{method.upper()} {path} {status}" for path, methods in doc["paths"].items()
            for method, op in methods.items() for status, answer in op["responses"].items()
            if int(status) >= 400 and not answer.get("x-error-codes")]
    assert bare == [], "\n".join(bare)
    checkout = doc["paths"]["/v1/orders"]["post"]["responses"]
    assert {"idempotency_key_reused", "idempotency_key_missing", "invalid_json"} <= set(
        checkout["400"]["x-error-codes"])
    assert "validation_error" in checkout["422"]["x-error-codes"]
    assert {"database_unavailable", "redis_unavailable"} <= set(checkout["503"]["x-error-codes"])


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_code_the_code_raises_is_documented_on_some_operation(doc: dict[str, Any]) -> None:
    """A new error type, or a code given at a raise site (`code="..."`), must be declared on the routes
    that answer with it (`endpoint(errors=...)`), or the document would not list it."""
    documented = {code for methods in doc["paths"].values() for op in methods.values()
                  for answer in op["responses"].values() for code in answer.get("x-error-codes", [])}
    for package in PACKAGES:
        if (ROOT / package / "errors.py").exists():
            importlib.import_module(f"{package}.errors")
    codes = {cls.code: f"{cls.__module__}.{cls.__name__}" for cls in _subclasses(DomainError)}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            codes.update({code: str(path.relative_to(ROOT)) for code in _LITERAL_CODE.findall(path.read_text())})
    undocumented = sorted(f"{code} ({where})" for code, where in codes.items()
                          if code not in documented and code not in NEVER_ANSWERED)
    assert undocumented == [], "\n".join(undocumented)
