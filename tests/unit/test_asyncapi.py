"""The AsyncAPI document is self-consistent: every reference resolves, every message is tagged by the `type`
its frames carry, and the frames the e2e day does not produce (a reposition nudge, a forwarded ops message)
validate too when built from their types."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from dispatch.messages import RepositionFrame
from fooddispatch.asyncapi import SOCKETS, build_asyncapi
from fooddispatch.ops.messages import ConsoleLive, ConsoleSnapshot
from fooddispatch.ops.projection import Projection
from tests.unit.demo.test_demo_ops_views import T0, assigned, delivered, placed
from tracking import courier

# How tracking/courier.py refuses a frame: `self.error("code", ...)` or `self._garbage("code", ...)`.
REFUSAL = re.compile(r"(?:self\.error|self\._garbage|return self\._garbage)\(\s*\"([a-z_]+)\"")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_reference_of_the_document_resolves() -> None:
    doc = build_asyncapi()
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/") and _resolve(doc, ref) is not None, ref


def test_each_message_is_named_by_its_frame_type_and_each_socket_lists_its_close_codes() -> None:
    doc = build_asyncapi()
    for name, message in doc["components"]["messages"].items():
        schema = doc["components"]["schemas"][name]
        assert schema["properties"]["type"] == {"enum": [message["name"]]}, name
    assert {s.address for s in SOCKETS} == {c["address"] for c in doc["channels"].values()}
    courier = next(c for c in doc["channels"].values() if c["address"] == "/v1/courier/ws")
    assert {4401, 4403, 4409, 1008, 1009, 1011, 1013, 1001} <= {c["code"] for c in courier["x-close-codes"]}


def test_frames_built_from_their_types_validate_against_the_document() -> None:
    doc = build_asyncapi()
    frames = {
        "RepositionFrame": RepositionFrame(52.5, 13.4, "881f1d4a9bfffff", "orders_waiting",
                                           datetime(2026, 1, 1, tzinfo=UTC), "berlin"),
        "ConsoleLive": ConsoleLive({"type": "courier_position", "courier_id": "cou_1", "lat": 52.5, "lng": 13.4}),
    }
    for name, frame in frames.items():
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        jsonschema.validate(msgspec.json.decode(msgspec.json.encode(frame)), schema)
        wrong = {**msgspec.to_builtins(frame), "type": "nope"}
        assert not jsonschema.Draft202012Validator(schema).is_valid(wrong)


def test_every_error_code_the_courier_socket_refuses_a_frame_with_is_documented() -> None:
    used = set(REFUSAL.findall(Path(courier.__file__).read_text()))
    assert {"malformed_frame", "invalid_frame", "rate_limited", "point_rejected"} <= used  # the scan finds them
    channel = build_asyncapi()["channels"]["courier"]
    assert used <= {c["code"] for c in channel["x-error-codes"]}


def test_the_console_snapshot_is_its_documented_type_and_refuses_a_field_it_does_not_declare() -> None:
    p = Projection(time_scale=10)
    placed(p, "o1", T0, 2400)
    placed(p, "o2", T0 + 5, 2400)  # waits for a courier: a heat cell
    assigned(p, "c1", "o1", T0 + 60)
    p.position("c1", 52.52, 13.40, "online", "bicycle")
    p.position("c2", 52.52, 13.41, "online", "car")
    delivered(p, "o1", T0 + 900, "c1")
    frame = p.frame(T0 + 1000, "berlin")
    assert frame.orders and frame.couriers and frame.stores and frame.heat and frame.orders[0].total is not None
    doc = build_asyncapi()
    schema = {"$ref": "#/components/schemas/ConsoleSnapshot", "components": doc["components"]}
    jsonschema.validate(msgspec.json.decode(msgspec.json.encode(frame)), schema)
    grown = {**p.snapshot(T0 + 1000), "region": "berlin", "weather": "rain"}  # a field added, undocumented
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(grown, ConsoleSnapshot)
    assert not jsonschema.Draft202012Validator(schema).is_valid(grown)


def test_the_document_keeps_asyncapi_3s_shape() -> None:
    """What AsyncAPI 3.0 asks beyond resolving references: an operation's messages are its channel's, every
    `{parameter}` of an address is declared, and the payloads use no JSON Schema keyword newer than draft 7
    (an AsyncAPI schema is a superset of draft 7)."""
    doc = build_asyncapi()
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] and doc["info"]["version"]
    for operation in doc["operations"].values():
        assert operation["action"] in {"send", "receive"}
        channel_ref = operation["channel"]["$ref"]
        assert all(m["$ref"].startswith(channel_ref + "/messages/") for m in operation["messages"]), operation
    for channel in doc["channels"].values():
        assert set(re.findall(r"{([^}]+)}", channel["address"])) == set(channel.get("parameters", {}))
    payloads = str(doc["components"]["schemas"])
    assert not [k for k in ("prefixItems", "$defs", "unevaluated", "dependentRequired", "$anchor") if k in payloads]
