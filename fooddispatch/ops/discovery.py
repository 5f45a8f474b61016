"""Find the packages' routes in the OpenAPI document by what they take and return.

The packages are built in parallel and name their paths as they see fit; what they agree on
is their wire types (`StoreCreate`, `QuoteRequest`, `AcceptRequest`...). So the ops console
looks an operation up by method plus request/response schema (and a path hint where two routes
share a type), and treats a missing one as "not there yet". Pure functions. (The demo's simulated
apps call the typed `fooddispatch.client` instead, whose routes tests/e2e/test_client_coverage.py checks.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # upper case
    path: str  # with {placeholders}
    idempotent: bool = False

    def url(self, *values: str, **named: str) -> str:
        """The path with its placeholders filled: by name where a given name is part of the
        placeholder's (`order` fills `{order_id}`), the rest in order from `values`."""
        path = self.path
        rest = list(values)
        for name in _placeholders(self.path):
            key = next((k for k in named if k == name or k in name), None)
            if key is not None:
                value = named[key]
            elif rest:
                value = rest.pop(0)
            else:
                raise ValueError(f"{self.path}: no value for {{{name}}}")
            path = re.sub(r"\{" + re.escape(name) + r"(:[^}]*)?\}", value, path, count=1)
        return path


@dataclass(frozen=True, slots=True)
class Want:
    """What an operation looks like: a method, and any of body / response / query schema names,
    a path fragment that must be in the path and one that must not."""

    method: str
    body: str | None = None
    response: str | None = None
    query: str | None = None
    path_has: tuple[str, ...] = ()
    path_lacks: tuple[str, ...] = ()
    placeholders: int | None = None


# The operations the console looks for, by the wire types the packages declared.
WANTS: dict[str, Want] = {
    "create_account": Want("POST", body="CreateAccount"),
    "login": Want("POST", body="Login"),
    "register": Want("POST", body="Register"),
    "create_api_key": Want("POST", body="CreateApiKey"),
    "create_tenant": Want("POST", body="TenantCreate"),
    "create_store": Want("POST", body="StoreCreate"),
    "put_hours": Want("PUT", body="HoursIn"),
    "add_special_day": Want("PUT", body="SpecialDayIn"),
    "put_zones": Want("PUT", body="ZonesIn"),
    "put_menu": Want("PUT", body="MenuIn"),
    "pause_store": Want("POST", body="PauseIn"),
    "list_stores": Want("GET", response="StorePage"),
    "get_store": Want("GET", response="StoreOut", placeholders=1),
    "open_store": Want("POST", path_has=("stores", "/open")),
    "discover": Want("GET", response="StoreCards"),
    "customer_menu": Want("GET", response="CustomerMenu"),
    "add_card": Want("POST", body="CreatePaymentMethod"),
    "quote": Want("POST", body="QuoteRequest"),
    "checkout": Want("POST", body="CheckoutRequest"),
    "get_order": Want("GET", response="OrderOut", path_lacks=("stores", "tenants", "restaurant")),
    "cancel_order": Want("POST", body="CancelRequest"),
    "assign_courier": Want("POST", body="AssignRequest"),
    "tip_order": Want("POST", body="TipRequest"),
    "rate_order": Want("POST", body="RatingRequest"),
    "restaurant_orders": Want("GET", response="OrderPage", path_has=("stores",)),
    "accept_order": Want("POST", body="AcceptRequest"),
    "reject_order": Want("POST", body="RejectRequest"),
    "ready_order": Want("POST", path_has=("ready",), path_lacks=("ws",)),
    "refund_order": Want("POST", body="RefundRequest"),
    "refund_payment": Want("POST", body="CreateRefund"),
    "courier_ws": Want("GET", path_has=("courier", "ws")),
    "courier_offline": Want("POST", path_has=("couriers", "offline")),
    "surge": Want("GET", response="SurgeMap"),
}


def _ref_name(schema: Any) -> str | None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return ref.rsplit("/", 1)[-1]
    return None


def _placeholders(path: str) -> list[str]:
    out, i = [], 0
    while (start := path.find("{", i)) >= 0:
        end = path.find("}", start)
        out.append(path[start + 1:end].split(":", 1)[0])
        i = end + 1
    return out


def _matches(want: Want, method: str, path: str, op: dict[str, Any]) -> bool:
    if method.upper() != want.method and not (want.method == "PUT" and method.upper() in {"PUT", "PATCH", "POST"}):
        return False
    if want.body is not None:
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if _ref_name(schema) != want.body:
            return False
    if want.response is not None:
        names = {_ref_name(r.get("content", {}).get("application/json", {}).get("schema"))
                 for code, r in op.get("responses", {}).items() if str(code).startswith("2")}
        if want.response not in names:
            return False
    lowered = path.lower()
    if any(fragment not in lowered for fragment in want.path_has):
        return False
    if any(fragment in lowered for fragment in want.path_lacks):
        return False
    return want.placeholders is None or len(_placeholders(path)) == want.placeholders


def find_routes(spec: dict[str, Any], wants: dict[str, Want] = WANTS) -> dict[str, Route]:
    """The operations present in `spec`, by name. The exact method wins over a PUT/PATCH/POST stand-in."""
    found: dict[str, Route] = {}
    for name, want in wants.items():
        best: tuple[int, Route] | None = None
        for path, methods in spec.get("paths", {}).items():
            for method, op in methods.items():
                if not isinstance(op, dict) or not _matches(want, method, path, op):
                    continue
                rank = (0 if method.upper() == want.method else 1) * 100 + len(path)
                route = Route(method.upper(), path, bool(op.get("x-idempotent")))
                if best is None or rank < best[0]:
                    best = (rank, route)
        if best is not None:
            found[name] = best[1]
    return found
