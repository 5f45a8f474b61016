"""The client covers what the demo does, and says what the server says.

- Every operation of `fooddispatch.client` is a route of the real app with the very Structs its handler
  declared (body, query, answer) and its status; the courier socket is a websocket route.
- The demo's simulated apps build no request by hand: no session call and no API path in their code.
- Every client method the demo calls goes through one of those checked operations (or the courier socket).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from aiohttp import web

from fooddispatch.app import create_app
from fooddispatch.client import OPERATIONS, Client
from fooddispatch.client import operations as ops
from fooddispatch.config import Settings
from kernel.http import EndpointSpec, endpoint_spec

DEMO = Path(__file__).resolve().parents[2] / "fooddispatch" / "demo"
HTTP_CALLS = {"get", "post", "put", "patch", "delete", "head", "options", "request", "ws_connect"}


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[tuple[str, str], EndpointSpec | None]:
    """(method, path) -> the handler's declaration, from an app that is built but never started."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("coverage"), database_url="postgresql://unused/none",
                        redis_url="redis://unused", jwt_secret="x" * 40,
                        vault_key="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    app: web.Application = create_app(settings)
    found = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if path:
            found[(route.method, path)] = endpoint_spec(route.handler)
    return found


def test_every_client_operation_is_a_route_with_the_structs_its_handler_declared(routes) -> None:
    mismatched = []
    for name, op in OPERATIONS.items():
        spec = routes.get((op.method, op.path))
        if spec is None:
            mismatched.append((name, "no such route"))
            continue
        ours = (op.body, op.query, op.response, op.status)
        theirs = (spec.body, spec.query, spec.response, spec.status)
        if ours != theirs:
            mismatched.append((name, f"client {ours} != server {theirs}"))
    assert mismatched == []
    socket = routes.get(("GET", ops.COURIER_SOCKET_PATH))
    assert socket is not None and socket.websocket


def _demo_sources() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text(), str(path)) for path in sorted(DEMO.glob("*.py"))}


def test_the_demo_builds_no_request_by_hand() -> None:
    by_hand = []
    for name, tree in _demo_sources().items():
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in HTTP_CALLS
                    and "session" in ast.unparse(node.func.value)):
                by_hand.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                    and re.search(r"/v1/|\.json\b|/readyz|/metrics", node.value)):
                by_hand.append(f"{name}:{node.lineno} {node.value!r}")
    assert by_hand == []


def test_every_client_method_the_demo_calls_goes_through_a_checked_operation() -> None:
    methods = {name for name, _ in inspect.getmembers(Client, inspect.iscoroutinefunction)
               if not name.startswith("_")} | {"courier_socket"}
    used = {node.attr for tree in _demo_sources().values() for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in methods}
    # The demo's city, end to end: seeding, the customers' phones, the tablets, the couriers, the console.
    assert {"register", "login", "create_account", "create_tenant", "create_api_key", "create_store", "put_hours",
            "put_zones", "put_menu", "put_special_day", "add_payment_method", "discover", "customer_menu", "quote",
            "checkout", "confirm_payment_intent", "cancel_payment_intent", "get_order", "cancel_order", "tip_order",
            "store_orders", "accept_order", "reject_order", "ready_order", "courier_socket", "surge"} <= used
    checked = {id(op) for op in OPERATIONS.values()}
    unchecked = []
    for name in sorted(used - {"readiness", "metrics_text"}):
        source = inspect.getsource(getattr(Client, name))
        named = re.findall(r"\bops\.([A-Z_]+)\b", source)
        if not named or any(id(getattr(ops, n)) not in checked and n != "COURIER_SOCKET_PATH" for n in named):
            unchecked.append(name)
    assert unchecked == []
